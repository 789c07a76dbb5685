"""Where a dataset's arrays come from. The reader, `vre-fast info` and `export-shards` see one interface,
`DatasetStore`; three kinds implement it:

- `VreFastStore`: a `vre-fast run` output directory (per representation `.metadata.json`, npz/npy files);
- `VreStore`: a directory written by the original VRE 1.18.6 (`<repr>/npz/<frame>.npz` or `npy/`, per
  representation `.repr_metadata.json`, run records `.logs/run_metadata-*.json`);
- `ShardStore` (shards.py): WebDataset tar shards written by `vre-fast export-shards`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._cfg import BINARY_FORMATS
from ..errors import StoreError
from ..store import DatasetSources, FrameFiles, RepresentationMetadata, representation_dirs

__all__ = ["DatasetStore", "FrameEntry", "StoredRepresentation", "VreFastStore", "VreStore", "open_store"]

VRE_METADATA = ".repr_metadata.json"  # VRE 1.18.6's per-representation metadata
VRE_RUN_RECORDS = "run_metadata-*.json"


@dataclass(frozen=True)
class FrameEntry:
    """One stored frame of a representation, as its metadata records it."""

    run_id: str
    formats: tuple[str, ...]
    stamp: str  # tells this write of the frame from a later one (the time it was recorded)


@dataclass(frozen=True)
class StoredRepresentation:
    name: str
    definition: dict[str, Any]  # the vre-fast definition its arrays decode by (collage's rebuild)
    frames: dict[int, FrameEntry]  # every frame the metadata counts as done
    failed: dict[int, str]  # frame -> error
    readable: frozenset[int]  # the frames whose array this store can read (npz / npy, or a shard member)


class DatasetStore(ABC):
    kind: str  # "vre-fast", "vre 1.18.6", "shards"

    def __init__(self, root: Path, representations: dict[str, StoredRepresentation]):
        self.root = root
        self.representations = representations

    @abstractmethod
    def read(self, name: str, frame: int) -> np.ndarray:
        """The stored array of `name` at `frame` (as written: decode it with the representation's `decode`).
        Called by the reader per item, from several threads or processes at once."""

    @property
    @abstractmethod
    def video_stem(self) -> str:
        """The source video's file name without its suffix (the shards' sample keys start with it)."""

    def sources(self) -> list[dict[str, Any]]:
        """The source video(s), as recorded."""
        return []

    def runs(self) -> list[dict[str, Any]]:
        """The run records: id, status, start and end, frames asked and done."""
        return []

    def num_frames(self) -> int | None:
        """The source video's frame count, where recorded."""
        return None

    def location(self, name: str) -> Path:
        """Where `name`'s files are (for messages)."""
        return self.root / name


class VreFastStore(DatasetStore):
    kind = "vre-fast"

    def __init__(self, root: Path):
        reps = {}
        for directory in representation_dirs(root):
            meta = RepresentationMetadata.read(directory)
            if not meta.definition:
                raise StoreError(f"{directory / '.metadata.json'} records no definition, so its arrays cannot be "
                                 f"decoded; run `vre-fast metadata rebuild {root} --config CFG`")
            frames = {f: FrameEntry(e["run_id"], tuple(e["formats"]), str(e["time"])) for f, e in meta.frames.items()}
            reps[directory.name] = StoredRepresentation(
                directory.name, meta.definition, frames, {f: e.get("error", "") for f, e in meta.failed.items()},
                frozenset(f for f, e in frames.items() if set(e.formats) & set(BINARY_FORMATS)))
        for directory in sorted(d for d in root.iterdir() if (d / VRE_METADATA).is_file() and d.name not in reps):
            reps[directory.name] = _vre_representation(directory, None)  # VRE wrote it, vre-fast resumed others
        super().__init__(root, reps)
        self._files = {name: FrameFiles(root / name) for name in reps}
        self._sources = DatasetSources(root).recorded()

    def read(self, name: str, frame: int) -> np.ndarray:
        return self._files[name].read(frame)

    @property
    def video_stem(self) -> str:
        return Path(self._sources[0].path).stem if self._sources else self.root.name

    def sources(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self._sources]

    def num_frames(self) -> int | None:
        return self._sources[0].num_frames if self._sources else None

    def runs(self) -> list[dict[str, Any]]:
        keys = ("run_id", "status", "started_iso", "ended_iso", "frames_requested", "frames_done", "frames_failed",
                "error")
        return [{k: record.get(k) for k in keys} for record in _json_files(self.root / ".logs", "run-*.json")]


class VreStore(DatasetStore):
    """A dataset written by VRE 1.18.6. VRE records no definition (type, parameters) of a representation, so
    each is read as the `external` type (the arrays as stored, float16 widened to float32, which is also what
    VRE's own `load_from_disk` does); `classes` names the class-map ones ({name: class names or a count})."""

    kind = "vre 1.18.6"

    def __init__(self, root: Path, classes: Mapping[str, Sequence[str] | int] | None = None):
        classes = dict(classes or {})
        reps = {}
        for directory in sorted(d for d in root.iterdir() if (d / VRE_METADATA).is_file()):
            reps[directory.name] = _vre_representation(directory, classes.pop(directory.name, None))
        if classes:
            raise StoreError(f"classes: {sorted(classes)} not among the representations of {root} ({sorted(reps)})")
        super().__init__(root, reps)
        self._files = {name: FrameFiles(root / name) for name in reps}
        self._records = _json_files(root / ".logs", VRE_RUN_RECORDS)

    def read(self, name: str, frame: int) -> np.ndarray:
        return self._files[name].read(frame)

    @property
    def video_stem(self) -> str:
        path = next((r.get("runtime_args", {}).get("video_path") for r in self._records), None)
        return Path(path).stem if path and path != "in memory" else self.root.name

    def sources(self) -> list[dict[str, Any]]:
        seen = {}
        for record in self._records:
            args = record.get("runtime_args", {})
            seen.setdefault(args.get("video_path"), {"path": args.get("video_path"), "shape": args.get("video_shape"),
                                                     "fps": args.get("video_fps")})
        return list(seen.values())

    def num_frames(self) -> int | None:
        lengths = {len(_read_vre_metadata(self.root / name)["run_stats"]) for name in self.representations}
        return lengths.pop() if len(lengths) == 1 else None

    def runs(self) -> list[dict[str, Any]]:
        runs = []
        for record in self._records:
            args, total = record.get("runtime_args", {}), record.get("total", {})
            runs.append({"run_id": record.get("id"), "status": None, "frames_requested": args.get("frames"),
                         "frames_done": total.get("n_computed"), "frames_failed": total.get("n_failed"),
                         "representations": args.get("representations")})
        return runs


def _vre_representation(directory: Path, classes: Sequence[str] | int | None) -> StoredRepresentation:
    frames, failed = {}, {}
    for key, entry in _read_vre_metadata(directory)["run_stats"].items():
        if entry is None:
            continue  # never computed
        if entry.get("duration") is None:
            failed[int(key)] = f"failed in VRE run {entry.get('run_id')}"
        else:
            frames[int(key)] = FrameEntry(str(entry.get("run_id")), tuple(entry.get("formats", ())),
                                          str(entry["duration"]))
    names = [str(c) for c in range(classes)] if isinstance(classes, int) else classes
    definition = {"type": "external", "parameters": {"path": str(directory), "classes": names}, "inputs": {}}
    return StoredRepresentation(directory.name, definition, frames, failed,
                                frozenset(f for f, e in frames.items() if set(e.formats) & set(BINARY_FORMATS)))


def _read_vre_metadata(directory: Path) -> dict[str, Any]:
    path = directory / VRE_METADATA
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data.get("run_stats"), dict):
            raise ValueError("no 'run_stats' object")
        return data
    except (OSError, ValueError, AttributeError) as exc:
        raise StoreError(f"{path} is not VRE representation metadata ({type(exc).__name__}: {exc})") from None


def _json_files(folder: Path, pattern: str) -> list[dict[str, Any]]:
    """Each readable JSON object in `folder` matching `pattern`, oldest first by name; unreadable ones are left
    out (a run record is informative, never needed to read the data)."""
    found = []
    for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append(data)
    return found


def open_store(path: Path | str, classes: Mapping[str, Sequence[str] | int] | None = None) -> DatasetStore:
    """The store of a dataset directory, told apart by what it holds: shards (`export.json`), vre-fast's
    `<repr>/.metadata.json`, or VRE 1.18.6's `<repr>/.repr_metadata.json`."""
    from .shards import EXPORT_RECORD, ShardStore

    root = Path(path)
    if not root.is_dir():
        raise StoreError(f"{root}: no such dataset directory")
    if (root / EXPORT_RECORD).is_file():
        if classes:
            raise StoreError("classes: only for datasets made by VRE (shards record their definitions)")
        return ShardStore(root)
    if representation_dirs(root):
        if classes:
            raise StoreError(f"classes: only for datasets made by VRE ({root} records each representation's "
                             f"definition, classes included)")
        return VreFastStore(root)
    if any((d / VRE_METADATA).is_file() for d in root.iterdir()):
        return VreStore(root, classes)
    raise StoreError(f"{root} is not a dataset: no representation folder with a .metadata.json (vre-fast) or a "
                     f"{VRE_METADATA} (VRE), and no {EXPORT_RECORD} (shards)")
