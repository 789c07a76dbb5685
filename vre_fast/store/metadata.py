"""Per-representation metadata: the source of truth for which frames are done.

Layout in OUT/<name>/:
  .metadata.json            compacted state: definition + {frame: entry} + {frame: failure}
  .metadata.journal/<run>.jsonl  one append-only journal per run, held under an flock while it runs
  .metadata.lock            serialises compaction between processes

A run appends one line per finished frame to its own journal (after the frame's files are
renamed into place), so concurrent runs never overwrite each other's entries and a SIGKILL
loses at most frames whose files are then simply recomputed. Readers merge the json with
every journal; compaction folds in its own journal and those of dead runs (lock free).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._cfg import BINARY_FORMATS, OUTPUT_FORMATS
from .._registry import type_aliases
from ..errors import StoreError
from .atomic import atomic_write_bytes, locked, read_locked
from .frames import FrameFiles

__all__ = ["RepresentationMetadata", "rebuild_metadata"]

logger = logging.getLogger("vre_fast")

METADATA = ".metadata.json"
VRE_METADATA = ".repr_metadata.json"  # what VRE 1.18.6 writes instead (vre_compat reads it)
JOURNALS = ".metadata.journal"
LOCK = ".metadata.lock"


class RepresentationMetadata:
    def __init__(self, directory: Path, name: str, definition: dict[str, Any]):
        self.directory = directory
        self.name = name
        self.definition = json.loads(json.dumps(definition))  # as it reads back: tuples become lists
        self.frames: dict[int, dict[str, Any]] = {}
        self.failed: dict[int, dict[str, Any]] = {}
        self._journal: Any = None
        self._journal_lock = threading.Lock()
        self._adopted: dict[str, Any] | None = None

    def adopt(self, state: dict[str, Any] | None) -> None:
        """The state to start from when the folder has no metadata yet (frames another tool recorded, already
        checked against this definition: vre_compat.outputs for VRE's folders)."""
        self._adopted = state

    # -- lifecycle -------------------------------------------------------------------------------------
    def open(self, run_id: str) -> None:
        """Checks the definition against the one on disk (or records it) and starts this run's journal."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / JOURNALS).mkdir(exist_ok=True)
        with locked(self.directory / LOCK):
            state = self._read_json()
            if state is None:
                state = self._adopted or {"name": self.name, "definition": self.definition, "frames": {}, "failed": {}}
                self._write_json(state)
            self._check_definition(state)
            self._load(state)
            self._journal = open(self.directory / JOURNALS / f"{run_id}.jsonl", "ab", buffering=0)  # noqa: SIM115
            fcntl.flock(self._journal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.run_id = run_id

    def peek(self) -> None:
        """Loads which frames are done without writing anything (so a read-only or finished dataset needs no
        write access to be checked), refusing a different definition as `open` does."""
        if not (self.directory / METADATA).is_file():
            if self._adopted is not None:
                self._load(self._adopted)
            return
        with read_locked(self.directory / LOCK):
            state = self._read_json()
            if state is not None:
                self._check_definition(state)
                self._load(state)

    def _check_definition(self, state: dict[str, Any]) -> None:
        if not _same_definition(state.get("definition"), self.definition):
            raise StoreError(_definition_conflict(self.directory, self.definition, state.get("definition")))

    def close(self) -> None:
        """Fsyncs and folds this run's journal (and dead runs' journals) into the json."""
        if self._journal is None:
            return
        with locked(self.directory / LOCK):
            os.fsync(self._journal.fileno())
            own = Path(self._journal.name)
            self._journal.close()  # releases our journal lock; the metadata lock keeps others out
            self._journal = None
            state = self._read_json() or {"name": self.name, "definition": self.definition}
            merged = _Merged(state)
            for journal in sorted((self.directory / JOURNALS).glob("*.jsonl")):
                if journal == own or _owner_is_gone(journal):
                    merged.add_journal(journal)
                    merged.consumed.append(journal)
            self._write_json(merged.to_json())
            for journal in merged.consumed:
                journal.unlink(missing_ok=True)

    @classmethod
    def read(cls, directory: Path) -> RepresentationMetadata:
        """The merged view (json plus every journal) of an output directory's representation, read-only."""
        meta = cls(directory, directory.name, {})
        with read_locked(directory / LOCK):
            state = meta._read_json()
            if state is None:
                raise StoreError(f"{directory} has no metadata")
            meta.definition = state.get("definition", {})
            meta._load(state)
        return meta

    # -- queries ---------------------------------------------------------------------------------------
    def done(self, formats: tuple[str, ...]) -> set[int]:
        """Frames whose entry lists every one of `formats`."""
        wanted = set(formats)
        return {f for f, e in self.frames.items() if wanted <= set(e["formats"])}

    # -- updates (thread-safe; called by the write stage) ----------------------------------------------
    def record(self, frame: int, duration: float | None, formats: tuple[str, ...]) -> None:
        entry = {"run_id": self.run_id, "duration": duration, "formats": list(formats), "time": time.time()}
        self._append({"frame": frame, **entry})
        self.frames[frame] = entry
        self.failed.pop(frame, None)

    def record_failure(self, frame: int, error: str) -> None:
        entry = {"run_id": self.run_id, "error": error, "time": time.time()}
        self._append({"frame": frame, "failed": True, **entry})
        self.failed[frame] = entry

    def _append(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line) + "\n").encode()
        with self._journal_lock:
            os.write(self._journal.fileno(), data)  # one write() per line: a kill never tears a line

    # -- disk ------------------------------------------------------------------------------------------
    def _load(self, state: dict[str, Any]) -> None:
        merged = _Merged(state)
        for journal in (self.directory / JOURNALS).glob("*.jsonl"):
            merged.add_journal(journal)
        self.frames, self.failed = merged.frames, merged.failed

    def _read_json(self) -> dict[str, Any] | None:
        path = self.directory / METADATA
        try:
            state = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path} is unreadable ({exc}); run `vre-fast metadata rebuild "
                             f"{self.directory.parent}`") from None
        problem = _metadata_problem(state)
        if problem is not None:
            raise StoreError(f"{path} is not valid vre-fast metadata ({problem}); run `vre-fast metadata rebuild "
                             f"{self.directory.parent}`")
        return state

    def _write_json(self, state: dict[str, Any]) -> None:
        """Compact, not indented: the file is rewritten whole at every fold (each unit of a worker pool folds
        once), and Python's encoder takes about 5x longer with `indent` (38 vs 7.6 ms at 10,000 frames here);
        `python -m json.tool` shows it indented."""
        atomic_write_bytes(self.directory / METADATA, json.dumps(state).encode())


class _Merged:
    """Entries from the json plus journals; per frame the latest event (success or failure) wins."""

    def __init__(self, state: dict[str, Any]):
        self.header = {k: state[k] for k in ("name", "definition") if k in state}
        self.frames = {int(k): v for k, v in state.get("frames", {}).items()}
        self.failed = {int(k): v for k, v in state.get("failed", {}).items()}
        self.consumed: list[Path] = []

    def add_journal(self, path: Path) -> None:
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return  # compacted by another process meanwhile
        malformed = 0
        for raw in lines:
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a torn last line after a power loss
            if not _is_journal_line(line):
                malformed += 1
                continue
            frame = line.pop("frame")
            failed = line.pop("failed", False)
            latest = max((e["time"] for e in (self.frames.get(frame), self.failed.get(frame)) if e), default=-1)
            if line["time"] < latest:
                continue
            if failed:
                self.frames.pop(frame, None)
                self.failed[frame] = line
            else:
                self.failed.pop(frame, None)
                self.frames[frame] = line
        if malformed:
            logger.warning("%s: %d malformed line(s) ignored (those frames count as not done)", path, malformed)

    def to_json(self) -> dict[str, Any]:
        return {**self.header, "frames": {str(k): self.frames[k] for k in sorted(self.frames)},
                "failed": {str(k): self.failed[k] for k in sorted(self.failed)}}


def _is_entry(entry: Any, success: bool) -> bool:
    """A frame's record: its time, and for a success the formats written."""
    return (isinstance(entry, dict) and isinstance(entry.get("time"), (int, float))
            and (not success or (isinstance(entry.get("formats"), list)
                                 and all(isinstance(f, str) for f in entry["formats"]))))


def _is_journal_line(line: Any) -> bool:
    return (isinstance(line, dict) and isinstance(line.get("frame"), int) and not isinstance(line["frame"], bool)
            and line["frame"] >= 0 and _is_entry(line, success=not line.get("failed", False)))


def _metadata_problem(state: Any) -> str | None:
    """What is wrong with a .metadata.json's content, or None."""
    if not isinstance(state, dict):
        return f"a JSON {type(state).__name__}, not an object"
    if not isinstance(state.get("definition", {}), dict):
        return "'definition' is not an object"
    for key in ("frames", "failed"):
        entries = state.get(key, {})
        if not isinstance(entries, dict):
            return f"'{key}' is a JSON {type(entries).__name__}, not an object"
        for frame, entry in entries.items():
            if not (frame.isdigit() and _is_entry(entry, success=key == "frames")):
                return f"'{key}' has an invalid entry for frame {frame!r}"
    return None


def _owner_is_gone(journal: Path) -> bool:
    with open(journal, "ab") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return True


def _same_definition(recorded: Any, current: dict[str, Any]) -> bool:
    """Whether frames stored under `recorded` are outputs of `current`: equal, except that a node's `type` may be
    another name of the same class (an alias such as `external` / `from_disk` computes the same thing). Metadata
    written before nodes recorded their configured name says `from_disk` for `type: external`; those frames are
    not stale, and the recorded name is left as it is."""
    return recorded == current or _types_as_aliases(recorded) == _types_as_aliases(current)


def _types_as_aliases(definition: Any) -> Any:
    """`definition` with its node's `type`, and its inputs', replaced by every name of that type's class."""
    if not isinstance(definition, dict):
        return definition
    replaced = dict(definition)
    if isinstance(replaced.get("type"), str):
        replaced["type"] = type_aliases(replaced["type"])
    if isinstance(replaced.get("inputs"), dict):
        replaced["inputs"] = {role: _types_as_aliases(d) for role, d in replaced["inputs"].items()}
    return replaced


def _definition_conflict(directory: Path, ours: dict[str, Any], theirs: Any) -> str:
    diffs = _diff(theirs or {}, ours)
    shown = "; ".join(diffs[:5]) + (" ..." if len(diffs) > 5 else "")
    return (f"representation '{directory.name}' in {directory.parent} was computed with a different definition "
            f"({shown}). Refusing to mix outputs: write to another output directory, rename the "
            f"representation, or delete {directory}")


def _diff(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _diff(old.get(key, "<unset>"), new.get(key, "<unset>"), f"{path}.{key}" if path else key)
        return out
    return [] if old == new else [f"{path}: {old!r} on disk, {new!r} now"]


def rebuild_metadata(directory: Path, definition: dict[str, Any] | None, relabel: bool = False) -> dict[str, Any]:
    """Regenerates OUT/<name>/.metadata.json from the files on disk; unreadable npz files are left out.

    The files keep the definition that produced them (the one in the existing metadata): `definition`
    (from a config) is used only where none is left, and a different one is refused unless `relabel`,
    since recording it would make the next run accept the old files as outputs of the new definition.
    Returns a report {"frames": n, "unreadable": [paths], "definition": "kept" | "from config" | "relabelled"}.
    """
    files = FrameFiles(directory)
    definition = None if definition is None else json.loads(json.dumps(definition))
    with locked(directory / LOCK):
        meta = RepresentationMetadata(directory, directory.name, definition or {})
        try:
            old = meta._read_json()
        except StoreError:
            old = None  # the metadata itself is what is broken: only a config can give the definition back
        recorded = (old or {}).get("definition") or None
        if old is None and (directory / VRE_METADATA).is_file():
            raise StoreError(f"{directory}: written by VRE 1.18.6, which records no definition; `vre-fast run` "
                             f"with its config adopts its frames where they are checked to be vre-fast's outputs "
                             f"(rebuilding would label them without that check)")
        if recorded is None and definition is None:
            raise StoreError(f"{directory}: no metadata to take the definition from; pass --config so the "
                             f"definition of '{directory.name}' can be rebuilt")
        differs = recorded is not None and definition is not None and not _same_definition(recorded, definition)
        if differs and not relabel:
            diffs = _diff(recorded, definition)
            raise StoreError(f"{directory}: the config's definition of '{directory.name}' differs from the one that "
                             f"produced its files ({'; '.join(diffs[:5])}{' ...' if len(diffs) > 5 else ''}); "
                             f"rebuilding keeps the files' own definition: drop --config, or pass --relabel if the "
                             f"files really are outputs of the config's definition")
        relabelling = relabel and differs
        kept = recorded if recorded is not None and not relabelling else None
        how = "kept" if kept is not None else ("relabelled" if recorded is not None else "from config")
        formats: dict[int, list[str]] = {}
        unreadable = []
        for fmt in OUTPUT_FORMATS:
            for frame, path in files.frames_on_disk(fmt).items():
                if fmt in BINARY_FORMATS and not _array_ok(path):
                    unreadable.append(str(path))
                    continue
                formats.setdefault(frame, []).append(fmt)
        now = time.time()
        state = {"name": directory.name, "definition": kept if kept is not None else definition,
                 "frames": {str(f): {"run_id": "rebuilt", "duration": None, "formats": formats[f], "time": now}
                            for f in sorted(formats)}, "failed": {}}
        meta._write_json(state)
        for journal in (directory / JOURNALS).glob("*.jsonl"):
            if _owner_is_gone(journal):
                journal.unlink()
    return {"frames": len(formats), "unreadable": unreadable, "definition": how}


def _array_ok(path: Path) -> bool:
    try:
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)
            return True
        with np.load(path, allow_pickle=False) as data:
            data["arr_0"]
        return True
    except Exception:  # any failure to load means the file does not count
        return False
