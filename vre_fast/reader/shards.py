"""WebDataset tar shards of a dataset: `vre-fast export-shards OUT -o SHARDS/`, and `ShardStore` to read them.

Layout of SHARDS/:
  shard-000000.tar ...   one sample per frame, key `<video stem>_<frame:06d>` (dots in the stem become "_", as
                         WebDataset splits a member's name at its first dot): `<key>.<name>.npy` per
                         representation (the stored array, np.save's format), `<key>.<name>.png` instead where
                         the stored array is a picture (uint8 H x W x 3, lossless), and `<key>.json` (the frame,
                         the video, each array's dtype, shape and the run that wrote it)
  export.json            the completion record: what was exported (source, representations and their
                         definitions, limits) and each finished shard with its frames

A shard is written with the stdlib `tarfile` into a temporary file beside it and renamed into place when
complete; only then is it added to export.json (itself replaced atomically). A killed export leaves at most
a temporary file; run again with the same options, it resumes at the first unfinished shard. Samples go
into shards in frame order and a shard closes on --maxcount samples or before --maxsize bytes, so a resumed
export writes the same bytes as an uninterrupted one (member times are fixed at 0).
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .._cfg import stable_hash
from ..errors import StoreError
from ..store.atomic import atomic_write_bytes
from ._stores import DatasetStore, FrameEntry, StoredRepresentation, open_store

__all__ = ["EXPORT_RECORD", "ExportReport", "ShardStore", "export_shards", "sample_key"]

logger = logging.getLogger("vre_fast")

EXPORT_RECORD = "export.json"
FORMAT = "vre-fast-shards/1"
_BLOCK = tarfile.BLOCKSIZE
_END_OF_ARCHIVE = 2 * _BLOCK


def sample_key(video_stem: str, frame: int) -> str:
    """A frame's sample key: WebDataset takes a member's name up to its first dot as the key."""
    return f"{video_stem.replace('.', '_')}_{frame:06d}"


def _shard_name(number: int) -> str:
    return f"shard-{number:06d}.tar"


def _is_picture(stored: np.ndarray) -> bool:
    return stored.dtype == np.uint8 and stored.ndim == 3 and stored.shape[2] == 3


def _encode(stored: np.ndarray, name: str, frame: int) -> tuple[str, bytes]:
    """(extension, bytes) of one member."""
    if _is_picture(stored):
        ok, png = cv2.imencode(".png", cv2.cvtColor(stored, cv2.COLOR_RGB2BGR))
        if not ok:
            raise StoreError(f"cannot encode frame {frame} of '{name}' as png")
        return "png", png.tobytes()
    buffer = io.BytesIO()
    np.save(buffer, stored, allow_pickle=False)
    return "npy", buffer.getvalue()


def _tar_bytes(payload: int) -> int:
    """A member's bytes in the tar: its header block and its data padded to whole blocks."""
    return _BLOCK + -(-payload // _BLOCK) * _BLOCK


def _file_bytes(content: int) -> int:
    """The shard's size on disk: tarfile pads the archive to whole records."""
    return -(-content // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


@dataclass(frozen=True)
class ExportReport:
    shards: int  # in the export, finished before this call included
    written: int  # shards this call wrote
    samples: int  # frames in the export
    resumed_at: int | None  # the shard this call started at when it resumed an unfinished export


def export_shards(dataset: Path | str, target: Path | str, maxcount: int = 1000, maxsize: int = 1 << 30,
                  representations: Sequence[str] | None = None,
                  classes: Mapping[str, Sequence[str] | int] | None = None) -> ExportReport:
    """Writes WebDataset shards of `dataset` (every frame any chosen representation has; a sample holds the
    representations that have that frame) into `target`, resuming an unfinished export there."""
    if maxcount < 1 or maxsize < 1:
        raise StoreError(f"--maxcount {maxcount} / --maxsize {maxsize}: both must be positive")
    store = open_store(dataset, classes)
    names = list(representations or store.representations)
    unknown = [n for n in names if n not in store.representations]
    if unknown:
        raise StoreError(f"{store.root}: no representation(s) {unknown} to export; it has "
                         f"{sorted(store.representations)}")
    reps = {n: store.representations[n] for n in names}
    frames = sorted(set().union(*(r.readable for r in reps.values())))
    if not frames:
        raise StoreError(f"{store.root}: no stored frame of {names} to export")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    plan = {"format": FORMAT, "source": str(store.root.resolve()), "representations": names, "maxcount": maxcount,
            "maxsize": maxsize, "content": stable_hash({n: {f: r.frames[f].stamp for f in sorted(r.readable)}
                                                         for n, r in reps.items()})}
    record = _resume_record(target, plan) or {**plan, "kind": store.kind, "video_stem": store.video_stem,
                                              "sources": store.sources(), "frames": len(frames),
                                              "definitions": {n: r.definition for n, r in reps.items()},
                                              "shards": [], "complete": False}
    _remove_temporaries(target)
    done = {f for shard in record["shards"] for f in range(shard["first_frame"], shard["last_frame"] + 1)}
    pending = [f for f in frames if f not in done]
    resumed_at = len(record["shards"]) if record["shards"] and pending else None
    written = 0
    while pending:
        pending = _write_shard(store, reps, pending, target, record, maxcount, maxsize)
        written += 1
    record["complete"] = True
    atomic_write_bytes(target / EXPORT_RECORD, json.dumps(record, indent=1).encode(), durable=False)
    return ExportReport(len(record["shards"]), written, len(frames), resumed_at)


def _resume_record(target: Path, plan: dict[str, Any]) -> dict[str, Any] | None:
    path = target / EXPORT_RECORD
    if not path.exists():
        if any(target.glob("shard-*.tar")):
            raise StoreError(f"{target} holds shards without an {EXPORT_RECORD}; export into an empty folder")
        return None
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path} is unreadable ({exc}); delete {target} and export again") from None
    differs = [k for k in plan if record.get(k) != plan[k]]
    if differs:
        what = "the dataset changed since" if differs == ["content"] else f"other {', '.join(differs)}"
        raise StoreError(f"{target} holds an export of {record.get('source')} with {what}; export into another "
                         f"folder, or delete {target}")
    return record


def _remove_temporaries(target: Path) -> None:
    for tmp in target.glob(".shard-*.tmp"):
        tmp.unlink(missing_ok=True)


def _write_shard(store: DatasetStore, reps: dict[str, StoredRepresentation], pending: list[int], target: Path,
                 record: dict[str, Any], maxcount: int, maxsize: int) -> list[int]:
    """Writes the next shard from the start of `pending`; returns the frames still pending."""
    name = _shard_name(len(record["shards"]))
    tmp = target / f".{name}.{os.getpid()}.tmp"
    size, count = _END_OF_ARCHIVE, 0
    try:
        with open(tmp, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for frame in pending:
                members = _sample(store, reps, frame, record["video_stem"])
                sample_size = sum(_tar_bytes(len(data)) for _, data in members)
                if count and (count == maxcount or _file_bytes(size + sample_size) > maxsize):
                    break
                for member, data in members:
                    info = tarfile.TarInfo(member)
                    info.size, info.mode, info.mtime = len(data), 0o644, 0
                    tar.addfile(info, io.BytesIO(data))
                size, count = size + sample_size, count + 1
        os.replace(tmp, target / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    record["shards"].append({"name": name, "first_frame": pending[0], "last_frame": pending[count - 1],
                             "samples": count, "bytes": (target / name).stat().st_size})
    atomic_write_bytes(target / EXPORT_RECORD, json.dumps(record, indent=1).encode(), durable=False)
    return pending[count:]


def _sample(store: DatasetStore, reps: dict[str, StoredRepresentation], frame: int,
            video_stem: str) -> list[tuple[str, bytes]]:
    key = sample_key(video_stem, frame)
    members, described = [], {}
    for name, rep in reps.items():
        if frame not in rep.readable:
            continue
        stored = store.read(name, frame)
        ext, data = _encode(stored, name, frame)
        members.append((f"{key}.{name}.{ext}", data))
        entry = rep.frames[frame]
        described[name] = {"dtype": stored.dtype.name, "shape": list(stored.shape), "run_id": entry.run_id,
                           "stamp": entry.stamp}
    meta = {"frame": frame, "video": video_stem, "representations": described}
    return [*members, (f"{key}.json", json.dumps(meta, sort_keys=True).encode())]


class ShardStore(DatasetStore):
    """Reads an export's shards by random access: one pass over the tar headers (and the small json members)
    indexes where each member's bytes are; a read is then one seek and one read."""

    kind = "shards"

    def __init__(self, root: Path):
        path = root / EXPORT_RECORD
        try:
            record = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path} is unreadable ({exc})") from None
        if record.get("format") != FORMAT:
            raise StoreError(f"{path}: not a vre-fast shard export (format {record.get('format')!r})")
        if not record.get("complete"):
            raise StoreError(f"{root}: the export is unfinished ({len(record.get('shards', []))} shards so far); run "
                             f"`vre-fast export-shards {record.get('source')} -o {root}` again to finish it")
        self._record = record
        self._where: dict[tuple[str, int], tuple[Path, int, int, str]] = {}
        entries: dict[str, dict[int, FrameEntry]] = {n: {} for n in record["definitions"]}
        for shard in record["shards"]:
            self._index(root / shard["name"], entries)
        reps = {n: StoredRepresentation(n, d, entries[n], {}, frozenset(entries[n]))
                for n, d in record["definitions"].items()}
        super().__init__(root, reps)

    def _index(self, shard: Path, entries: dict[str, dict[int, FrameEntry]]) -> None:
        try:
            with tarfile.open(shard, "r:") as tar:
                for member in tar:
                    key, _, rest = member.name.partition(".")
                    frame = int(key.rsplit("_", 1)[1])
                    if rest == "json":
                        described = json.loads(tar.extractfile(member).read())["representations"]
                        for name, d in described.items():
                            entries[name][frame] = FrameEntry(d["run_id"], (self._where[(name, frame)][3],),
                                                              d["stamp"])
                        continue
                    name, _, ext = rest.rpartition(".")
                    self._where[(name, frame)] = (shard, member.offset_data, member.size, ext)
        except (OSError, tarfile.TarError, ValueError, KeyError, IndexError) as exc:
            raise StoreError(f"{shard} is not a readable shard of this export ({type(exc).__name__}: {exc}); "
                             f"export again into an empty folder") from None

    def read(self, name: str, frame: int) -> np.ndarray:
        shard, offset, size, ext = self._where[(name, frame)]
        try:
            with open(shard, "rb") as f:
                f.seek(offset)
                data = f.read(size)
            if ext == "png":
                picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                if picture is None:
                    raise ValueError("not a png")
                return cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise StoreError(f"cannot read frame {frame} of '{name}' from {shard} ({type(exc).__name__}: {exc})") \
                from None

    @property
    def video_stem(self) -> str:
        return self._record["video_stem"]

    def sources(self) -> list[dict[str, Any]]:
        return self._record.get("sources", [])
