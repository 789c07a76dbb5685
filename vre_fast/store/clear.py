"""`--exists overwrite` (VRE's `output_dir_exists_mode`): empty a representation's folder before a run, carefully.

Only what vre-fast or VRE put there is deleted (the format folders npz/ npy/ png/ jpg/, the metadata and its
journals), only in a folder that carries their metadata, only inside an output directory that carries their
housekeeping (.source.json or .logs/), never through a link, and never while another run writes the folder.
The metadata goes first, so a kill half-way leaves frames that no longer count as done (recomputed), never a
frame recorded without its files.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from .._cfg import OUTPUT_FORMATS
from ..errors import StoreError
from .atomic import locked
from .dataset import SOURCES
from .metadata import JOURNALS, LOCK, METADATA, _owner_is_gone

__all__ = ["clear_representation"]

logger = logging.getLogger("vre_fast")

VRE_METADATA = ".repr_metadata.json"  # VRE 1.18.6's per-representation metadata
_OURS = {METADATA, JOURNALS, LOCK, VRE_METADATA, *OUTPUT_FORMATS}


def clear_representation(out_dir: Path, name: str) -> int:
    """Deletes what OUT/<name> holds; returns how many files went. Anything else in the folder (the user's own
    files) is kept, with a warning. A StoreError, before anything is deleted, where the folder is not plainly a
    vre-fast / VRE representation of this output directory."""
    folder = out_dir / name
    if not folder.exists() and not folder.is_symlink():
        return 0
    refusing = f"--exists overwrite: refusing to delete anything in {folder}:"
    if not (out_dir / SOURCES).is_file() and not (out_dir / ".logs").is_dir():
        raise StoreError(f"--exists overwrite: {out_dir} is not a vre-fast or VRE output directory (no {SOURCES} "
                         f"or .logs/); refusing to delete anything in it")
    if folder.is_symlink() or not folder.is_dir() or folder.resolve().parent != out_dir.resolve():
        raise StoreError(f"{refusing} it is a link or a file, not a representation folder of {out_dir}")
    entries = {p.name for p in folder.iterdir()}
    if not entries & {METADATA, VRE_METADATA}:
        other = _not_a_frame(folder) if entries <= _OURS else f"{sorted(entries - _OURS)[0]} (not vre-fast's)"
        if other is not None:
            raise StoreError(f"{refusing} it holds no vre-fast or VRE metadata and {other}, so it may not be a "
                             f"representation's")
    removed = 0
    with locked(folder / LOCK):
        journals = sorted((folder / JOURNALS).glob("*.jsonl"))
        busy = [j for j in journals if not _owner_is_gone(j)]
        if busy:
            raise StoreError(f"{refusing} a run is writing it now (journal {busy[0].name}); wait for it to end")
        for meta in (METADATA, VRE_METADATA):  # first: from here on no frame counts as done
            if (folder / meta).is_file():
                (folder / meta).unlink()
                removed += 1
        for entry in (JOURNALS, *OUTPUT_FORMATS):  # a dead run's journal records frames too: before the files
            removed += _remove(folder / entry)
    kept = sorted(entries - _OURS)
    if kept:
        logger.warning("%s: kept %s (not vre-fast's); the frames were deleted", folder, ", ".join(kept))
    return removed


def _not_a_frame(folder: Path) -> str | None:
    """Without metadata a folder counts as a representation's only if its format folders hold frame files alone
    (`<frame>.<format>`, or a writer's hidden temporary): the first other entry, or None."""
    for fmt in OUTPUT_FORMATS:
        if (folder / fmt).is_dir() and not (folder / fmt).is_symlink():
            for entry in sorted((folder / fmt).iterdir()):
                frame = entry.suffix == f".{fmt}" and entry.stem.isascii() and entry.stem.isdigit()
                temporary = entry.name.startswith(".") and entry.suffix == ".tmp"
                if entry.is_symlink() or not entry.is_file() or not (frame or temporary):
                    return f"{fmt}/{entry.name} (not a frame file)"
    return None


def _remove(path: Path) -> int:
    """A folder and what it holds (a link: the link, not what it points to); how many files went."""
    if path.is_symlink():
        path.unlink()
        return 1
    if not path.is_dir():
        return 0
    count = sum(1 for p in path.rglob("*") if not p.is_dir())
    shutil.rmtree(path)
    return count
