"""Resuming an output directory written by VRE 1.18.6 (`<repr>/.repr_metadata.json`, `.logs/run_metadata-*.json`).

VRE records no type or parameters of a representation: per frame only its run, duration and formats, and per
run (`data_writers`) the storage: binary and image format, compress, dtype and output size. So a VRE-written
representation is adopted by `vre-fast run` (its frames count as done, only the rest is computed) when
  - its vre-fast type is marked `resumable` in the table (the array vre-fast stores was checked equal to VRE's:
    bench/vre_parity.py), so the files of both tools hold the same thing;
  - what VRE recorded equals the node's storage after mapping: the dtype and the output size (formats and
    compress only change which files and how many bytes; frames lacking one of the node's formats are computed),
    and no output size was set (VRE resizes with its own interpolation: its frames would differ from vre-fast's);
  - a stored array has that dtype and size;
  - VRE's recorded video has the run's shape (frames, height, width), unless --allow-other-source.
Anything else is refused, naming every difference, as a vre-fast directory of another definition is. The
first run records vre-fast's metadata beside VRE's (which is left as it is).
"""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from ..reader._stores import VRE_METADATA, VRE_RUN_RECORDS, _json_files, _read_vre_metadata
from ..store import FrameFiles
from ..store.dataset import SourceIdentity
from ..store.metadata import METADATA
from .table import VRE_TYPES

__all__ = ["adopt_vre_outputs", "is_vre_written"]


def is_vre_written(directory: Path) -> bool:
    """A representation folder VRE wrote and vre-fast has not recorded yet."""
    return (directory / VRE_METADATA).is_file() and not (directory / METADATA).is_file()


def adopt_vre_outputs(out_dir: Path, nodes: list[Any], source: SourceIdentity,
                      allow_other_source: bool) -> dict[str, dict[str, Any]]:
    """{name: the metadata state to start from} for each stored node (a NodeBinding) whose folder VRE wrote;
    one StoreError listing every reason when any cannot be adopted."""
    vre_nodes = [b for b in nodes if is_vre_written(out_dir / b.name)]
    if not vre_nodes:
        return {}
    records = _json_files(out_dir / ".logs", VRE_RUN_RECORDS)
    problems = [] if allow_other_source else _source_problems(out_dir, records, source)
    states = {}
    for b in vre_nodes:
        found = _node_problems(out_dir / b.name, b, records)
        if found:
            problems += [f"'{b.name}': {p}" for p in found]
        else:
            states[b.name] = _state(out_dir / b.name, b, _recorded_runs(records, b.name))
    if problems:
        raise StoreError(f"{out_dir} was written by VRE 1.18.6 and cannot be resumed by this config: "
                         + "; ".join(problems) + ". Write to another output directory, rename the representation, "
                         "or delete its folder")
    return states


def _source_problems(out_dir: Path, records: list[dict[str, Any]], source: SourceIdentity) -> list[str]:
    """VRE's runs name their video's shape; checked even where vre-fast has run here before (.source.json), since
    VRE may have written its folders afterwards, from another video."""
    ours = (source.num_frames, source.height, source.width, 3)
    shapes = {str(r.get("runtime_args", {}).get("video_shape")) for r in records} - {"None"}
    other = [s for s in shapes if _shape(s) != ours]
    return [f"VRE's run records name a video of shape {s}, this one is {ours} ({source.path}); pass "
            f"--allow-other-source to add its frames anyway" for s in sorted(other)]


def _node_problems(directory: Path, b: Any, records: list[dict[str, Any]]) -> list[str]:
    our_type = b.node.cfg.type
    checked = [vre for vre, entry in VRE_TYPES.items() if entry.ours == our_type and entry.resumable]
    if not checked:
        why = "; ".join(e.why for e in VRE_TYPES.values() if e.ours == our_type and e.why)
        return [f"vre-fast's '{our_type}' output is not checked equal to what VRE stores{f' ({why})' if why else ''}"
                f"; resumable types: {sorted({e.ours for e in VRE_TYPES.values() if e.resumable})}"]
    dtype = np.dtype(b.representation.storage_dtype).name
    size = list(b.node.cfg.output_size) if b.node.cfg.output_size else None
    problems = []
    writers = [r["data_writers"][b.name] for r in records
               if isinstance(r.get("data_writers"), dict) and isinstance(r["data_writers"].get(b.name), dict)]
    if not writers:
        problems.append("no VRE run record (.logs/run_metadata-*.json) says how it was stored")
    for w in writers:
        if _dtype_name(w.get("dtype")) != dtype:
            problems.append(f"VRE stored it as {_dtype_name(w.get('dtype'))}, this config as {dtype} (output_dtype)")
        if (list(w["size"]) if w.get("size") else None) != size:
            problems.append(f"VRE stored it at output_size {w.get('size')}, this config at {size}")
        elif size is not None:  # VRE's resize and vre-fast's differ (a mean of 7 levels on tests/data's clip)
            problems.append(f"VRE resized it to output_size {size} with its own interpolation, which is not checked "
                            f"equal to vre-fast's; only frames stored at the video's size are adopted")
    files = FrameFiles(directory)
    stored = sorted(files.stored_frames())
    if stored and not problems:
        array = files.read(stored[0])
        height, width = size or (b.output_size[0], b.output_size[1])
        if array.dtype.name != dtype or array.shape[:2] != (height, width):
            problems.append(f"its frame {stored[0]} holds {array.dtype.name} {list(array.shape)}, this config "
                            f"stores {dtype} at {height}x{width}")
    return sorted(set(problems), key=problems.index)


def _recorded_runs(records: list[dict[str, Any]], name: str) -> set[str]:
    """VRE's runs whose record says how `name` was stored (checked above). A killed VRE run writes no record,
    though its frames are in `.repr_metadata.json`: they may have been stored otherwise (another dtype)."""
    return {str(r.get("id")) for r in records
            if isinstance(r.get("data_writers"), dict) and isinstance(r["data_writers"].get(name), dict)}


def _state(directory: Path, b: Any, runs: set[str]) -> dict[str, Any]:
    """The vre-fast metadata of VRE's done frames (by a recorded run, whose array file is there and whole),
    under the node's definition."""
    when = (directory / VRE_METADATA).stat().st_mtime
    files = FrameFiles(directory)
    on_disk = {**files.frames_on_disk("npy"), **files.frames_on_disk("npz")}
    frames = {}
    for key, entry in _read_vre_metadata(directory)["run_stats"].items():
        if (entry is None or entry.get("duration") is None or str(entry.get("run_id")) not in runs
                or int(key) not in on_disk or not _whole(on_disk[int(key)])):
            continue  # never computed, failed, by an unrecorded run, or its file is gone or cut: computed again
        frames[str(int(key))] = {"run_id": f"vre-{entry.get('run_id')}", "duration": entry["duration"],
                                 "formats": list(entry.get("formats", [])), "time": when}
    return {"name": b.name, "definition": b.representation.definition(), "frames": frames, "failed": {}}


def _whole(path: Path) -> bool:
    """The array file is complete, read cheaply: an npz's zip directory (at its end), an npy's header and size.
    VRE writes in place, from threads when `n_threads_data_storer` > 0, recording a frame before its file is
    written: a killed VRE run can leave a cut file recorded as done."""
    try:
        if path.suffix == ".npy":
            np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with zipfile.ZipFile(path) as archive:
                archive.getinfo("arr_0.npy")
        return True
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return False


def _dtype_name(recorded: Any) -> str:
    """VRE's recorded dtype: "float16", or "<class 'numpy.float32'>" where it kept its default (np.float32)."""
    text = str(recorded)
    return text.removeprefix("<class 'numpy.").removesuffix("'>")


def _shape(text: str) -> tuple[int, ...] | None:
    try:
        value = ast.literal_eval(text)
        return tuple(int(v) for v in value)
    except (ValueError, SyntaxError, TypeError):
        return None
