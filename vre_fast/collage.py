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
from .h264 import add_h264_stream
from .representation import Representation
from .store import FrameFiles, RepresentationMetadata, representation_dirs

__all__ = ["make_collage", "representation_from_definition", "stored_representations"]

logger = logging.getLogger("vre_fast")

TITLE_HEIGHT = 24


def representation_from_definition(name: str, definition: dict[str, Any]) -> Representation:
    """The representation a metadata file describes, dependencies included (for decode / make_image)."""
    try:
        cls = get_representation_class(definition["type"])
        deps = {role: representation_from_definition(f"{name}.{role}", d) for role, d in definition["inputs"].items()}
        params = build_params(cls, definition["parameters"], f"{name}.parameters", definition["type"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"the metadata of '{name}' holds an incomplete definition ({type(exc).__name__}: {exc}); "
                         f"rebuild it with `vre-fast metadata rebuild OUT --config CFG --relabel`") from None
    return cls(name, params, deps, output_dtype=definition.get("output_dtype"), type_name=definition["type"])


def stored_representations(out_dir: Path) -> list[tuple[Representation, FrameFiles]]:
    """Every representation of `out_dir`, rebuilt from its metadata's definition, with its files: what `collage`
    and `view` read the stored arrays through (`rep.decode(files.read(frame))`)."""
    from .reader._stores import VRE_METADATA, open_store

    if not any((d / VRE_METADATA).is_file() for d in (out_dir.iterdir() if out_dir.is_dir() else ())):
        found = [(representation_from_definition(d.name, RepresentationMetadata.read(d).definition), FrameFiles(d))
                 for d in representation_dirs(out_dir)]
    else:  # VRE 1.18.6 wrote some of it: its folders read as stored (VRE records no definition)
        store = open_store(out_dir)
        found = [(representation_from_definition(name, r.definition), FrameFiles(store.location(name)))
                 for name, r in store.representations.items()]
    if not found:
        raise StoreError(f"{out_dir}: no representations to draw")
    return found


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
    if not (math.isfinite(fps) and fps > 0):
        raise StoreError(f"--fps {fps:g}: give a positive frame rate")
    reps, files = zip(*stored_representations(out_dir))
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


_VIDEO_FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".mov": "mov"}  # suffix -> FFmpeg muxer


class _Writer:
    """Writes into a hidden temp path beside the target (`.<name>.<pid>.tmp`); `finish` moves it into place."""

    def __init__(self, target: Path, fps: float):
        self.target, self.fps = target, Fraction(fps).limit_denominator(1000)
        self.muxer = _VIDEO_FORMATS.get(target.suffix.lower())
        if target.name in ("", ".", ".."):
            raise StoreError(f"-o {str(target)!r}: name a video file (.mp4, .mkv, .avi, .mov) or a folder")
        if self.muxer is not None and target.is_dir():
            raise StoreError(f"-o {target}: is a folder; give a video file name, or a folder without a video "
                             f"suffix for pictures")
        if self.muxer is None and target.suffix and not target.is_dir():
            raise StoreError(f"-o {target}: {target.suffix} is not a video format vre-fast writes "
                             f"({', '.join(_VIDEO_FORMATS)}); for png pictures give a folder name without a suffix")
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        self.container: Any = None
        self.stream: Any = None
        self.written: list[str] = []
        if self.muxer is None:
            self.tmp.mkdir()

    def write(self, frame: int, picture: np.ndarray) -> None:
        if self.muxer is None:
            ok, encoded = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            if not ok:
                raise StoreError(f"cannot encode collage frame {frame} as png")
            (self.tmp / f"{frame}.png").write_bytes(encoded.tobytes())
            self.written.append(f"{frame}.png")
            return
        if self.container is None:
            self.container = av.open(str(self.tmp), "w", format=self.muxer)
            self.stream = add_h264_stream(self.container, self.fps, *picture.shape[:2])
        picture = np.ascontiguousarray(picture[: self.stream.height, : self.stream.width])
        self.container.mux(self.stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        self.written.append(str(frame))

    def finish(self) -> None:
        if not self.written:
            raise StoreError(f"no frame could be drawn: {self.target} not written")
        if self.muxer is None:
            self.target.mkdir(exist_ok=True)
            stale = {p.name for p in self.target.glob("*.png") if p.stem.isdigit()} - set(self.written)
            for name in stale:  # a previous collage's frames that this one does not have
                (self.target / name).unlink()
            for name in self.written:
                os.replace(self.tmp / name, self.target / name)
            self.tmp.rmdir()
            return
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
