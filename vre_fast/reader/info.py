"""`vre-fast info OUT`: what a dataset holds, per representation (VRE's `vre_dir_analysis`, with more in it).

Frames complete / failed / missing (of the source video's frames where recorded, else of the frames any
representation has), formats, bytes on disk, the stored dtype and shape, the runs that wrote it, and the
source video. Reads only: a read-only dataset is described as any other.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ._stores import DatasetStore, open_store

__all__ = ["dataset_info", "format_info"]

# a pool (`--workers`, `--ray`) makes a run per unit: past these, the table says how many, not which
MAX_RUNS_SHOWN = 3  # run ids in a representation's "runs" cell
MAX_RUNS_LISTED = 10  # runs listed one a line; more are summed by status


def dataset_info(path: Path | str) -> dict[str, Any]:
    """A JSON-able description of the dataset at `path` (a vre-fast or VRE 1.18.6 output directory)."""
    store = open_store(path)
    if store.kind == "shards":
        raise StoreError(f"{path} holds shards: `vre-fast info` describes an output directory (the shards' "
                         f"export.json lists what they hold)")
    counted = set().union(*(set(r.frames) | set(r.failed) for r in store.representations.values()))
    total = store.num_frames() or (max(counted) + 1 if counted else 0)
    return {"path": str(store.root), "kind": store.kind, "sources": store.sources(), "frames": total,
            "representations": {name: _representation_info(store, name, total) for name in store.representations},
            "runs": store.runs()}


def _representation_info(store: DatasetStore, name: str, total: int) -> dict[str, Any]:
    rep = store.representations[name]
    formats = Counter(fmt for entry in rep.frames.values() for fmt in entry.formats)
    first = min(rep.readable, default=None)
    stored = None if first is None else store.read(name, first)
    runs = Counter(entry.run_id for entry in rep.frames.values())
    return {"type": rep.definition.get("type"), "complete": len(rep.frames), "failed": len(rep.failed),
            "missing": max(0, total - len(rep.frames) - len(rep.failed)), "failed_frames": sorted(rep.failed)[:20],
            "formats": dict(sorted(formats.items())), "bytes": _bytes_under(store.location(name)),
            "dtype": None if stored is None else stored.dtype.name,
            "shape": None if stored is None else list(stored.shape), "runs": dict(runs)}


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def format_info(info: dict[str, Any]) -> str:
    """The description as a table for a terminal."""
    lines = [f"{info['path']} ({info['kind']}): {info['frames']} frames"]
    for source in info["sources"]:
        size = f"{source['width']}x{source['height']}, " if "width" in source else ""
        topic = f", topic {source['topic']}" if source.get("topic") else ""  # a ROS bag's
        lines.append(f"  source: {source.get('path')} ({size}{source.get('num_frames', '?')} frames{topic})"
                     if "num_frames" in source or "width" in source else f"  source: {source.get('path')}")
    header = ("representation", "type", "complete", "failed", "missing", "formats", "MiB", "dtype", "shape", "runs")
    rows = [header]
    for name, r in info["representations"].items():
        rows.append((name, str(r["type"]), str(r["complete"]), str(r["failed"]), str(r["missing"]),
                     ",".join(f"{k}:{v}" for k, v in r["formats"].items()), f"{r['bytes'] / 2**20:.2f}",
                     str(r["dtype"]), "x".join(map(str, r["shape"] or [])),
                     ",".join(r["runs"]) if len(r["runs"]) <= MAX_RUNS_SHOWN else f"{len(r['runs'])} runs"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    runs = info["runs"]
    if len(runs) > MAX_RUNS_LISTED:  # a pool's run: a run per unit; summed by status (--json lists each)
        for status in sorted({str(run.get("status")) for run in runs}):
            these = [run for run in runs if str(run.get("status")) == status]
            starts = sorted(run["started_iso"] for run in these if run.get("started_iso"))
            ends = sorted(run["ended_iso"] for run in these if run.get("ended_iso"))
            when = f" {starts[0]} .. {ends[-1] if ends else ''}" if starts else ""
            lines.append(f"  {len(these)} runs {status}{when} frames done "
                         f"{sum(run.get('frames_done') or 0 for run in these)}, failed "
                         f"{sum(run.get('frames_failed') or 0 for run in these)}")
        return "\n".join(lines)
    for run in runs:
        when = f" {run['started_iso']} .. {run.get('ended_iso') or ''}" if run.get("started_iso") else ""
        status = f" {run['status']}" if run.get("status") else ""
        lines.append(f"  run {run['run_id']}:{status}{when} frames done {run.get('frames_done')}, failed "
                     f"{run.get('frames_failed')}")
    return "\n".join(lines)
