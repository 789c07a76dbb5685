"""Rerun recordings: a dataset (`vre-fast view`) or a live stream (`--sink out.rrd | rerun://HOST:PORT`).

Every representation is one entity on a "frame" sequence timeline (and a "video_time" one when the video's
frame rate is known, or for a ROS bag's topic a "bag_time" one: each message's log time), logged as what it
is, so Rerun's viewer can show it natively:

    class maps (a representation with `classes`)   SegmentationImage, with a static AnnotationContext of the
                                                   class ids, names and the colours its make_image draws
    output_kind "depth"                            DepthImage (the decoded values, so hovering shows them)
    output_kind "flow"                             Image of make_image's picture, and the raw flow as a Tensor
                                                   at `<name>/raw`
    anything else (rgb, hsv, normals, masks, ...)  Image of make_image's picture

A map that feeds another representation's `depth` input (an `external` depth read by `normals_svd`) is
logged as depth too. The values are the decoded arrays that `vre-fast collage` draws, read the same way
(collage.stored_representations); the Rerun SDK (PyPI `rerun-sdk`, the `rerun` extra) is imported only here.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np

from .errors import StoreError, VreError
from .kernels.colormaps import IGNORE_CLASS
from .kernels.lookup import class_argmax
from .representation import Representation

__all__ = ["RerunLog", "is_rerun_target", "write_recording"]

logger = logging.getLogger("vre_fast")

DEFAULT_PORT = 9876  # the Rerun viewer's gRPC port
_SCHEMES = ("rerun://", "rerun+http://", "rerun+https://")


def is_rerun_target(spec: str) -> bool:
    """A .rrd file or a Rerun viewer URL."""
    return spec.startswith(_SCHEMES) or Path(spec).suffix == ".rrd"


def grpc_url(spec: str, option: str) -> tuple[str, str, int]:
    """(Rerun's URL, host, port) of a viewer target. `rerun://HOST:PORT` is plain gRPC to a viewer (what the
    `rerun` command starts: unencrypted, on 9876 unless told otherwise), unlike Rerun's own `rerun://`, which
    means TLS; `rerun+http://` and `rerun+https://` URLs are passed on as Rerun reads them."""
    try:
        url = urlsplit(spec)
        port = url.port or DEFAULT_PORT
    except ValueError as exc:  # a port that is not a number, or out of 0..65535
        raise VreError(f"{option} {spec}: {exc}") from None
    host = url.hostname or "127.0.0.1"
    if url.path not in ("", "/", "/proxy"):
        raise VreError(f"{option} {spec}: a Rerun viewer is reached at rerun://HOST:PORT (its path is /proxy)")
    scheme = "rerun+http" if url.scheme == "rerun" else url.scheme
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}:{port}/proxy", host, port


def _import_rerun() -> Any:
    try:
        import rerun
    except ImportError:
        raise VreError("Rerun recordings need the Rerun SDK: pip install 'vre-fast[rerun]' (PyPI rerun-sdk, "
                       "Python >= 3.11)") from None
    return rerun


Kind = Literal["image", "classes", "depth", "flow"]


def _kinds(representations: Sequence[Representation]) -> dict[str, Kind]:
    """How each representation is logged (see the module docstring)."""
    depth_inputs = [d.definition() for d in _dependencies(representations, role="depth")]
    kinds: dict[str, Kind] = {}
    for rep in representations:
        if rep.classes is not None:
            kinds[rep.name] = "classes"
        elif rep.output_kind == "depth" or rep.definition() in depth_inputs:
            kinds[rep.name] = "depth"
        elif rep.output_kind == "flow":
            kinds[rep.name] = "flow"
        else:
            kinds[rep.name] = "image"
    return kinds


def _dependencies(representations: Iterable[Representation], role: str) -> list[Representation]:
    """Every representation that fills `role` somewhere in the dependency trees of `representations`."""
    found, todo = [], list(representations)
    while todo:
        rep = todo.pop()
        for dep_role, dep in rep.dependencies.items():
            if dep_role == role:
                found.append(dep)
            todo.append(dep)
    return found


def _annotation(rr: Any, rep: Representation) -> Any:
    """The class ids, names and colours of a class map, the colours taken from the representation's own
    make_image (so the viewer colours the map as the collage does); unmapped pixels (255) are named too. A map
    of class probabilities is drawn from one-hot scores (its argmax is never 255)."""
    names = list(rep.classes or ())
    ids = list(range(len(names)))
    if rep.class_probabilities:
        ramp = np.eye(len(names), dtype=np.float32).reshape(1, 1, len(names), len(names))
    else:
        if len(names) < IGNORE_CLASS:
            ids.append(IGNORE_CLASS)
        ramp = np.array(ids, np.uint8 if len(names) <= IGNORE_CLASS else np.int64).reshape(1, 1, -1)
    colours = rep.make_image(ramp)[0, 0]
    labels = [*names, "unmapped"][: len(ids)]
    return rr.AnnotationContext([rr.ClassDescription(info=(i, label, tuple(int(c) for c in colour)))
                                 for i, label, colour in zip(ids, labels, colours)])


class RerunLog:
    """A Rerun recording of some representations: to a .rrd file or to a viewer over gRPC.

    `atomic`: the file is written beside the target and moved into place by `close` (a dataset's recording:
    a failure leaves no partial file behind); without it the file grows as frames come and is readable up to
    its last written chunk if the process dies (a live stream's). `fps`: the video's frame rate, for a
    "video_time" timeline; `times`: frame -> log time (ns since the epoch) of a ROS bag's messages, for a
    "bag_time" timeline. `log_time`: Rerun's wall-clock timeline of when each frame was logged (a live
    stream's clock; meaningless for a stored dataset)."""

    def __init__(self, target: str, representations: Sequence[Representation], *, option: str,
                 atomic: bool = False, fps: Fraction | None = None, times: dict[int, int] | None = None,
                 log_time: bool = True):
        rr = self._rr = _import_rerun()
        import rerun.blueprint as rrb

        self.name = target
        self._reps = list(representations)
        self._kinds = _kinds(self._reps)
        self._paths = {rep.name: rr.escape_entity_path_part(rep.name) for rep in self._reps}
        self._fps, self._times = fps, times or {}
        self._target: Path | None = None
        self._tmp: Path | None = None
        url = None
        if target.startswith(_SCHEMES):
            url, host, port = grpc_url(target, option)
            try:  # the SDK would only say so after its own time-out, at the end of the stream
                socket.create_connection((host, port), timeout=5).close()
            except OSError as exc:
                raise VreError(f"{option} {target}: no Rerun viewer there ({exc}); start one with "
                               f"`rerun --port {port}`") from None
        else:
            self._target = Path(target)
            if self._target.is_dir():
                raise VreError(f"{option} {target}: is a folder; give a .rrd file name")
            self._target.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = self._target.with_name(f".{self._target.name}.{os.getpid()}.tmp") if atomic else None
            (self._tmp or self._target).open("wb").close()  # an OSError naming the file, before the SDK starts
        blueprint = rrb.Blueprint(rrb.Grid(*(rrb.Spatial2DView(origin=f"/{self._paths[rep.name]}", name=rep.name)
                                             for rep in self._reps)))
        self.rec = rr.RecordingStream("vre-fast", recording_id=uuid.uuid4())
        self.rec.set_log_time_enabled(log_time)
        if url is not None:
            self.rec.connect_grpc(url, default_blueprint=blueprint)
        else:
            self.rec.save(self._tmp or self._target, default_blueprint=blueprint)
        for rep in self._reps:
            if self._kinds[rep.name] == "classes":
                self.rec.log(self._paths[rep.name], _annotation(rr, rep), static=True)

    def log(self, frame: int, decoded: dict[str, np.ndarray]) -> None:
        """Logs the decoded outputs (name -> (H, W[, C]) array, as `decode` returns them) of `frame`."""
        rr = self._rr
        self.rec.reset_time()  # no timeline keeps the previous frame's value (a frame without a bag time)
        self.rec.set_time("frame", sequence=frame)
        if frame in self._times:
            self.rec.set_time("bag_time", timestamp=np.datetime64(self._times[frame], "ns"))
        if self._fps is not None:
            self.rec.set_time("video_time", duration=float(frame / self._fps))
        for rep in self._reps:
            if rep.name not in decoded:
                continue
            array, path, kind = decoded[rep.name], self._paths[rep.name], self._kinds[rep.name]
            if kind == "classes":  # ids (of any number type), or the argmax of class probabilities or scores
                scores = rep.class_probabilities or (array.ndim == 3 and array.shape[2] > 1)
                ids = class_argmax(array) if scores else array.reshape(array.shape[:2])
                self.rec.log(path, rr.SegmentationImage(ids if ids.dtype in (np.uint8, np.uint16)
                                                        else ids.astype(np.uint16)))
            elif kind == "depth":
                self.rec.log(path, rr.DepthImage(array.reshape(array.shape[:2]).astype(np.float32, copy=False)))
            else:
                self.rec.log(path, rr.Image(rep.make_image(array[None])[0]))
                if kind == "flow":
                    self.rec.log(f"{path}/raw", rr.Tensor(array, dim_names=("height", "width", "uv")))

    def close(self) -> None:
        """Flushes everything logged (to the file, or until the viewer has it) and, for an atomic file, moves
        it into place. A viewer that cannot be reached raises ConnectionError, a file that cannot be written
        OSError (what the stream runtime reports as a failed sink)."""
        try:
            self.rec.flush(timeout_sec=10.0)
        except RuntimeError as exc:  # the SDK's word for a viewer it could not reach or lost, or a failed write
            self.discard()
            raise (OSError if self._target is not None else ConnectionError)(f"{self.name}: {exc}") from None
        self.rec.disconnect()
        if self._tmp is not None and self._target is not None:
            os.replace(self._tmp, self._target)
            self._tmp = None

    def discard(self) -> None:
        """Stops the recording; an atomic file's partial copy is removed (no-op after `close`)."""
        self.rec.disconnect()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def write_recording(out_dir: Path, target: str, frames: tuple[int | None, int | None] = (None, None),
                    frame_list: Sequence[int] | None = None, on_error: Literal["stop", "skip"] = "stop") -> int:
    """`vre-fast view`: every stored representation of `out_dir`, frame by frame, into `target` (a .rrd file,
    written whole or not at all, or rerun://HOST:PORT); returns how many frames were logged. The frames are
    those of the range `frames`, or of `frame_list` when given. A frame is logged with whichever
    representations store it; with on_error="skip" an unreadable file is left out with a warning."""
    from .collage import stored_representations

    if not is_rerun_target(target):
        raise VreError(f"-o {target}: give a .rrd file or rerun://HOST:PORT (a running Rerun viewer)")
    stored = stored_representations(out_dir)
    start, stop = frames
    per_rep = [(rep, files, files.stored_frames()) for rep, files in stored]
    wanted = set(frame_list) if frame_list is not None else None
    chosen = sorted(f for f in set().union(*(have for _, _, have in per_rep))
                    if (f in wanted if wanted is not None else
                        (start is None or f >= start) and (stop is None or f < stop)))
    if not chosen:
        asked = (" ".join(map(str, frame_list)) if frame_list is not None else
                 f"{'' if start is None else start}..{'' if stop is None else stop}")
        raise StoreError(f"{out_dir}: no stored frame (npz or npy) in --frames {asked}")
    fps, times = _timing(out_dir)
    log = RerunLog(target, [rep for rep, _, _ in per_rep], option="-o", atomic=True, fps=fps, times=times,
                   log_time=False)
    try:
        for frame in chosen:
            decoded = {}
            for rep, files, have in per_rep:
                if frame not in have:
                    continue
                try:
                    decoded[rep.name] = rep.decode(files.read(frame))
                except StoreError as exc:
                    if on_error == "stop":
                        raise
                    logger.warning("view: frame %d of '%s' left out: %s", frame, rep.name, exc)
            log.log(frame, decoded)
        log.close()
    except BaseException:
        log.discard()
        raise
    return len(chosen)


def _timing(out_dir: Path) -> tuple[Fraction | None, dict[int, int]]:
    """(the frame rate OUT/.source.json records for the dataset's (first) video, if it records a usable one;
    frame -> log time in ns). A ROS bag has no frame rate (the recorded one is nominal, messages over the
    span): its frames' log times come from the run records (`frame_times`) of runs on the recorded topic."""
    import json

    from .store import DatasetSources

    sources = DatasetSources(out_dir).recorded()
    if sources and sources[0].topic is not None:
        times: dict[int, int] = {}
        for path in sorted((out_dir / ".logs").glob("run-*.json")):
            try:
                record = json.loads(path.read_bytes())
                if record.get("source", {}).get("topic") == sources[0].topic:
                    times.update((int(f), int(t[0])) for f, t in record.get("frame_times", {}).items())
            except (OSError, ValueError, TypeError, AttributeError, IndexError):
                logger.warning("view: %s: unreadable run record; its frames' log times are left out", path)
        return None, times
    try:
        fps = Fraction(sources[0].fps) if sources else None
    except (ValueError, ZeroDivisionError):
        return None, {}
    return (fps if fps is not None and fps > 0 else None), {}
