"""Frames/s of the two video decoders, PyAV and torchcodec (CPU, and NVDEC on a CUDA device), on the same frames.

    python bench/decoders.py [--size 1920x1080] [--frames 120] [--device cpu|cuda]

Writes an H.264 video of a drifting texture (keyframe every 30 frames) and decodes it with both: every
frame in order, then a scattered set of seeks. Each decoder's frames are compared with PyAV's (the reference):
the largest and mean |difference| in levels, and whether each frame is the best match of the PyAV frame of
the same index among its neighbours (frame-exact seeking, whatever the colour conversion). torchcodec needs
its FFmpeg shared libraries and a matching torch (see vre_fast/sources/torchcodec_video.py); where it cannot
load, its row says why.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vre_fast.sources import VideoSource
from vre_fast.sources.synthetic import drifting_texture, write_video
from vre_fast.sources.torchcodec_video import TorchCodecSource, torchcodec_unavailable

GOP = 30


def make_test_video(path: Path, frames: int, width: int, height: int) -> Path:
    return write_video(path, drifting_texture(frames, height, width, step=4, seed=3), fps=30, gop=GOP)


def seek_pattern(num_frames: int) -> list[int]:
    """Frames far apart, across keyframes, right after and right before one, and the last."""
    picks = {0, 1, GOP - 1, GOP, GOP + 1, num_frames // 2, num_frames // 2 + 7, num_frames - 1}
    return sorted(i for i in picks if 0 <= i < num_frames)


def _timed_read(source: Any, indices: list[int]) -> tuple[float, dict[int, np.ndarray]]:
    start = time.perf_counter()
    frames = dict(source.read(indices))
    return time.perf_counter() - start, frames


def _timed_device_read(source: TorchCodecSource, indices: list[int]) -> tuple[float, dict[int, Any], str]:
    """NVDEC: frames left on the device (the time includes a synchronize); returns them and their device."""
    import torch

    start = time.perf_counter()
    out: dict[int, Any] = {}
    for chunk, data in source.read_tensors(indices):
        out.update(zip(chunk, data))
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return seconds, out, str(next(iter(out.values())).device)


def frame_differences(test: dict[int, np.ndarray], reference: dict[int, np.ndarray]) -> dict[str, Any]:
    """max and mean |test - reference| in levels over the frames both have, and the frames whose best match
    among the reference's frames i-2..i+2 is not frame i (a seek that landed on another frame)."""
    diffs = [np.abs(test[i].astype(np.int16) - reference[i].astype(np.int16)) for i in test]
    misplaced = []
    for i, frame in test.items():
        near = [j for j in range(i - 2, i + 3) if j in reference]
        best = min(near, key=lambda j: np.abs(frame.astype(np.int16) - reference[j].astype(np.int16)).mean())
        if best != i:
            misplaced.append(i)
    return {"max_abs_levels": int(max(d.max() for d in diffs)),
            "mean_abs_levels": float(np.mean([d.mean() for d in diffs])), "frames_compared": len(diffs),
            "misplaced_frames": misplaced}


def compare(video: Path, device: str = "cpu") -> dict[str, Any]:
    """PyAV vs torchcodec on `device`: frames/s sequential and seeking, and the frames' differences."""
    with VideoSource(video) as pyav:
        n = pyav.num_frames
        everything = list(range(n))
        seq_s, reference = _timed_read(pyav, everything)
        with pyav.reopen() as second:
            seek_s, _ = _timed_read(second, seek_pattern(n))
    result: dict[str, Any] = {"video": f"{pyav.width}x{pyav.height}, {n} frames, H.264, keyframe every {GOP}",
                              "pyav": {"sequential_fps": n / seq_s, "seek_fps": len(seek_pattern(n)) / seek_s}}
    reason = torchcodec_unavailable()
    if reason is not None:
        result["torchcodec"] = {"not_run": reason}
        return result
    with TorchCodecSource(video, device) as tc:
        if device.startswith("cuda"):
            seq_s, on_device, where = _timed_device_read(tc, everything)
            frames = {i: t.cpu().numpy() for i, t in on_device.items()}
            row: dict[str, Any] = {"frames_on": where, "cuda_backend": tc.cuda_backend}
        else:
            seq_s, frames = _timed_read(tc, everything)
            row = {"frames_on": "cpu"}
        with tc.reopen() as second:
            seek_s, seeked = _timed_read(second, seek_pattern(n))
    row.update(sequential_fps=n / seq_s, seek_fps=len(seeked) / seek_s, device=device,
               sequential_vs_pyav=frame_differences(frames, reference),
               seeks_vs_pyav=frame_differences(seeked, reference))
    result["torchcodec"] = row
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        video = make_test_video(Path(tmp) / "v.mp4", args.frames, width, height)
        result = compare(video, args.device)
    print(result["video"])
    for name in ("pyav", "torchcodec"):
        row = result[name]
        if "not_run" in row:
            print(f"{name:<11} not run: {row['not_run']}")
            continue
        extra = "" if name == "pyav" else (f"  vs PyAV: max {row['sequential_vs_pyav']['max_abs_levels']} levels, mean "
                                           f"{row['sequential_vs_pyav']['mean_abs_levels']:.3f}; misplaced seeks "
                                           f"{row['seeks_vs_pyav']['misplaced_frames']}; frames on {row['frames_on']}")
        print(f"{name:<11} {row['sequential_fps']:8.1f} frames/s in order, {row['seek_fps']:8.1f} frames/s seeking"
              + extra)


if __name__ == "__main__":
    main()
