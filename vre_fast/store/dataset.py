"""The output directory as a whole: which video it was made from, and its housekeeping.

OUT/.source.json records the source video of the dataset (path, size, resolution, frame count, frame
rate and a fingerprint of its first frames), so a run on another video into the same directory is
refused instead of mixing frames of two videos under one set of indices.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._cfg import OUTPUT_FORMATS
from ..errors import StoreError
from .atomic import atomic_write_bytes, locked, remove_stale_temporaries
from .metadata import METADATA

__all__ = ["DatasetSources", "SourceIdentity", "representation_dirs", "sweep_temporaries"]

logger = logging.getLogger("vre_fast")

SOURCES = ".source.json"
SOURCES_LOCK = ".source.lock"


@dataclass(frozen=True)
class SourceIdentity:
    path: str  # resolved, as it was when recorded
    size_bytes: int
    height: int
    width: int
    num_frames: int
    fps: str  # a fraction, e.g. "30000/1001"
    fingerprint: str  # sha256 of the first frames' decoded pixels
    topic: str | None = None  # the image topic of a ROS bag source; None for a video

    def same_video(self, other: SourceIdentity) -> bool:
        """The decoded content decides, not the path: a moved or renamed file is the same video."""
        return (self.fingerprint, self.height, self.width, self.num_frames) == \
            (other.fingerprint, other.height, other.width, other.num_frames)

    def describe(self) -> str:
        topic = f", topic {self.topic}" if self.topic is not None else ""
        return (f"{self.path} ({self.width}x{self.height}, {self.num_frames} frames{topic}, "
                f"fingerprint {self.fingerprint[:12]})")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceIdentity:
        """Raises KeyError or TypeError for a record of the wrong shape (`topic` may be absent: older records)."""
        values = {k: data[k] for k in cls.__dataclass_fields__ if k != "topic" or k in data}
        wrong = [k for k, v in values.items() if not isinstance(v, _FIELD_TYPES[k]) or isinstance(v, bool)]
        if wrong:
            raise TypeError(f"field(s) {wrong} of the wrong type")
        return cls(**values)


_FIELD_TYPES = {"path": str, "size_bytes": int, "height": int, "width": int, "num_frames": int, "fps": str,
                "fingerprint": str, "topic": (str, type(None))}


class DatasetSources:
    """Reads and records OUT/.source.json. `check` only reads, so a finished or read-only dataset can be
    checked; `record` writes, under a lock, when a run is about to add frames."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.path = out_dir / SOURCES

    def recorded(self) -> list[SourceIdentity]:
        try:
            data = json.loads(self.path.read_bytes())
            return [SourceIdentity.from_json(s) for s in data["sources"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.path} is unreadable ({type(exc).__name__}: {exc}); it records which video "
                             f"this dataset was made from: restore it, or delete it to record the next run's "
                             f"video") from None

    def check(self, source: SourceIdentity, allow_other: bool) -> None:
        """Refuses a video other than the recorded one(s) unless `allow_other`."""
        recorded = self.recorded()
        if not recorded or any(r.same_video(source) for r in recorded) or allow_other:
            return
        raise StoreError(f"{self.out_dir} was made from {recorded[0].describe()}; {source.describe()} is a "
                         f"different video. Refusing to mix two videos in one dataset: write to another output "
                         f"directory, or pass --allow-other-source to add this video's frames anyway")

    def record(self, source: SourceIdentity, allow_other: bool) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with locked(self.out_dir / SOURCES_LOCK):
            recorded = self.recorded()
            if any(r.same_video(source) for r in recorded):
                return
            if recorded:
                self.check(source, allow_other)  # another run may have recorded a different video meanwhile
                logger.warning("%s: adding frames of %s to a dataset made from %s (--allow-other-source)",
                               self.out_dir, source.describe(), recorded[0].describe())
            elif representation_dirs(self.out_dir):
                logger.warning("%s records no source video (made by an older vre-fast); recording %s",
                               self.out_dir, source.describe())
            data = {"sources": [asdict(s) for s in (*recorded, source)]}
            atomic_write_bytes(self.path, json.dumps(data, indent=1).encode())


def representation_dirs(out_dir: Path, with_files_only: bool = False) -> list[Path]:
    """The representations of a dataset: folders with a .metadata.json (and, with `with_files_only`, folders
    that only have format folders left, for `metadata rebuild`). Anything else in OUT (a collage's
    pictures, the user's notes) is not one."""
    if not out_dir.is_dir():
        return []
    found = []
    for d in sorted(out_dir.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        if (d / METADATA).is_file() or (with_files_only and any((d / f).is_dir() for f in OUTPUT_FORMATS)):
            found.append(d)
    return found


def sweep_temporaries(out_dir: Path) -> int:
    """Removes killed writers' temp files anywhere in the dataset (each representation's folders, its
    metadata, the run records); best effort on a read-only dataset. Returns how many were removed."""
    if not out_dir.is_dir():
        return 0
    folders = [out_dir, out_dir / ".logs"]
    for rep in representation_dirs(out_dir, with_files_only=True):
        folders += [rep, *(rep / f for f in OUTPUT_FORMATS)]
    return sum(remove_stale_temporaries(f) for f in folders if f.is_dir())
