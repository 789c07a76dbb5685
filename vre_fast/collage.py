"""`vre-fast collage`: every representation of an output directory side by side, as a video or pictures.

Pictures come from the stored arrays through each representation's own `make_image` (the
representation is rebuilt from the definition its metadata records), so nothing has to have been
exported as png/jpg.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np

from ._builder import build_params
from ._registry import get_representation_class
from .errors import StoreError
from .representation import Representation
from .store import FrameFiles, RepresentationMetadata

__all__ = ["make_collage", "representation_from_definition"]

logger = logging.getLogger("vre_fast")

TITLE_HEIGHT = 24


def representation_from_definition(name: str, definition: dict[str, Any]) -> Representation:
    """The representation a metadata file describes, dependencies included (for decode / make_image)."""
    cls = get_representation_class(definition["type"])
    deps = {role: representation_from_definition(f"{name}.{role}", d) for role, d in definition["inputs"].items()}
    return cls(name, build_params(cls, definition["parameters"], f"{name}.parameters"), deps,
               output_dtype=definition.get("output_dtype"))


def _tile(pictures: list[tuple[str, np.ndarray]], height: int, width: int) -> np.ndarray:
    cols = math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / cols)
    canvas = np.zeros((rows * (height + TITLE_HEIGHT), cols * width, 3), np.uint8)
    for i, (title, picture) in enumerate(pictures):
        y, x = (i // cols) * (height + TITLE_HEIGHT), (i % cols) * width
        cv2.putText(canvas, title, (x + 4, y + TITLE_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                    cv2.LINE_AA)
        canvas[y + TITLE_HEIGHT: y + TITLE_HEIGHT + height, x: x + width] = cv2.resize(picture, (width, height))
    return canvas


def make_collage(out_dir: Path, target: Path, fps: float = 10.0, size: tuple[int, int] = (270, 480),
                 on_error: Literal["stop", "skip"] = "stop") -> int:
    """Writes the frames every representation has (as npz) into `target` (.mp4/.mkv, or a folder of png);
    returns how many frames were written.

    The output is built beside `target` and moved into place only when complete, so a failure (a damaged
    stored file with on_error="stop", a full disk) leaves no partial video behind; with on_error="skip"
    frames with an unreadable file are left out, each with a warning."""
    reps, files = [], []
    for directory in sorted(d for d in out_dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
        meta = RepresentationMetadata.read(directory)
        reps.append(representation_from_definition(directory.name, meta.definition))
        files.append(FrameFiles(directory))
    if not reps:
        raise StoreError(f"{out_dir}: no representations to draw")
    frames = sorted(set.intersection(*(f.stored_frames() for f in files)))
    if not frames:
        raise StoreError(f"{out_dir}: no frame is stored (npz or npy) by every representation")
    height, width = size
    writer = _Writer(target, fps)
    written = 0
    try:
        for frame in frames:
            try:
                pictures = [(rep.name, rep.make_image(rep.decode(f.read(frame))[None])[0])
                            for rep, f in zip(reps, files)]
            except StoreError as exc:
                if on_error == "stop":
                    raise
                logger.warning("collage: frame %d left out: %s", frame, exc)
                continue
            writer.write(frame, _tile(pictures, height, width))
            written += 1
        writer.finish()
    finally:
        writer.discard()  # no-op once finished
    return written


class _Writer:
    """Writes into a hidden temp path beside the target; `finish` moves it into place."""

    def __init__(self, target: Path, fps: float):
        self.target, self.fps = target, Fraction(fps).limit_denominator(1000)
        self.is_video = target.suffix.lower() in (".mp4", ".mkv", ".avi", ".mov")
        self.tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp{target.suffix if self.is_video else ''}")
        self.container: Any = None
        self.stream: Any = None
        if not self.is_video:
            self.tmp.mkdir(parents=True)

    def write(self, frame: int, picture: np.ndarray) -> None:
        if not self.is_video:
            ok, encoded = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            if not ok:
                raise StoreError(f"cannot encode collage frame {frame} as png")
            (self.tmp / f"{frame}.png").write_bytes(encoded.tobytes())
            return
        if self.container is None:
            self.container = av.open(str(self.tmp), "w")
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            self.stream = self.container.add_stream(codec, rate=self.fps)
            self.stream.height, self.stream.width = picture.shape[0] // 2 * 2, picture.shape[1] // 2 * 2
            self.stream.pix_fmt = "yuv420p"
        picture = np.ascontiguousarray(picture[: self.stream.height, : self.stream.width])
        self.container.mux(self.stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))

    def finish(self) -> None:
        if not self.is_video:
            self.target.mkdir(parents=True, exist_ok=True)
            for picture in self.tmp.iterdir():
                os.replace(picture, self.target / picture.name)
            self.tmp.rmdir()
            return
        if self.container is None:
            raise StoreError(f"no frame could be drawn: {self.target} not written")
        self.container.mux(self.stream.encode())
        self.container.close()
        self.container = None
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)
