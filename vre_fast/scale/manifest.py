"""Many videos in one run: the videos on the command line (each into OUT/<its name>) or a manifest file, a list of
`video, output dir, frames` rows as text (one `video [output [frames]]` a line, `#` comments), CSV (columns
video, output, frames; a header row) or JSON (a list of {"video", "output", "frames"}). Relative paths are
relative to the manifest's folder; frames are `--frames` text (`A..B`, or a list `5 8 22`)."""

from __future__ import annotations

import csv
import io
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..frame_range import parse_frame_list, parse_frames

__all__ = ["Job", "jobs_for_videos", "read_manifest"]


@dataclass(frozen=True)
class Job:
    video: Path
    out_dir: Path
    frames: tuple[int | None, int | None] = (None, None)
    frame_list: tuple[int, ...] | None = None


def jobs_for_videos(videos: list[Path], out_dir: Path, frames: tuple[int | None, int | None],
                    frame_list: tuple[int, ...] | None) -> list[Job]:
    """One video: OUT itself, as `vre-fast run` always did; several: OUT/<video name> each (names must differ)."""
    if len(videos) == 1:
        return [Job(videos[0], out_dir, frames, frame_list)]
    names = [v.name if v.is_dir() else v.stem for v in videos]  # a folder of frames, a rosbag2 directory: its name
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"videos {', '.join(twice)}: several videos of that name would share OUT/{twice[0]}; "
                          f"give a manifest with one output directory each")
    return [Job(v, out_dir / n, frames, frame_list) for v, n in zip(videos, names)]


def read_manifest(path: Path, default_out: Path | None = None) -> list[Job]:
    """The manifest's rows as jobs; a row without an output goes to `default_out`/<video name>."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV starts with a byte-order mark
    except OSError as exc:
        raise ConfigError(f"--manifest {path}: {exc.strerror or exc}") from None
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--manifest {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "video" in r for r in rows):
            raise ConfigError(f"--manifest {path}: expected a list of {{\"video\": ..., \"output\": ..., "
                              f"\"frames\": ...}} objects")
        items = [(i + 1, r["video"], r.get("output"), r.get("frames")) for i, r in enumerate(rows)]
    elif path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or "video" not in reader.fieldnames:
            raise ConfigError(f"--manifest {path}: a CSV manifest needs a header row with a 'video' column "
                              f"(and optionally 'output', 'frames')")
        items = [(i + 2, r["video"], r.get("output") or None, r.get("frames") or None) for i, r in enumerate(reader)]
    else:
        items = []
        for i, line in enumerate(text.splitlines()):
            try:
                fields = shlex.split(line, comments=True)
            except ValueError as exc:  # an unclosed quote
                raise ConfigError(f"--manifest {path} line {i + 1}: {exc} (quote a path with spaces: "
                                  f"\"my video.mp4\")") from None
            if fields:
                items.append((i + 1, fields[0], fields[1] if len(fields) > 1 else None,
                              " ".join(fields[2:]) or None))
    if not items:
        raise ConfigError(f"--manifest {path}: no videos in it")
    jobs = [_job(path, *item, default_out) for item in items]
    outs = [j.out_dir.resolve() for j in jobs]
    twice = sorted({str(o) for o in outs if outs.count(o) > 1})
    if twice:
        raise ConfigError(f"--manifest {path}: output {twice[0]} is given to several videos; one output directory "
                          f"each")
    return jobs


def _job(manifest: Path, line: int, video: object, out: object, frames: object, default_out: Path | None) -> Job:
    where = f"--manifest {manifest} line {line}"
    if not isinstance(video, str) or not video.strip():
        raise ConfigError(f"{where}: an empty video path" if isinstance(video, str) or video is None
                          else f"{where}: the video {video!r} is not a path (text)")
    video_path = manifest.parent / video
    if out is None:
        if default_out is None:
            raise ConfigError(f"{where}: no output directory for {video}; give one in the manifest or -o")
        out_path = default_out / (video_path.name if video_path.is_dir() else video_path.stem)
    else:
        out_path = manifest.parent / str(out)
    if frames is None:
        return Job(video_path, out_path)
    if isinstance(frames, list):  # JSON: [5, 8, 22] as well as "5 8 22"
        frames = " ".join(map(str, frames))
    items = str(frames).replace(",", " ").split()
    try:
        if len(items) == 1:
            return Job(video_path, out_path, frames=parse_frames(items[0]))
        return Job(video_path, out_path, frame_list=parse_frame_list(items))
    except ValueError as exc:
        raise ConfigError(f"{where}: frames {frames!r}: {exc}") from None
