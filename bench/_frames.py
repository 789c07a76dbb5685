"""Frames for the benchmarks: the example clip when present (examples/get_example_video.py fetches it),
else a synthetic one; resized to the benchmark's size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vre_fast.sources import VideoSource
from vre_fast.sources.synthetic import drifting_texture

EXAMPLE = Path(__file__).parents[1] / "examples" / "bikes.mp4"


def example_frames(video: Path, n: int, width: int, height: int) -> list[np.ndarray]:
    """n frames (the clip repeats if shorter) at width x height."""
    if video.exists():
        with VideoSource(video) as src:
            frames = list(src.head(n))
    else:
        frames = list(drifting_texture(n, height, width))
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
    return (frames * (n // len(frames) + 1))[:n]


def describe(video: Path) -> str:
    return f"real footage: {video.name}" if video.exists() else "synthetic frames"
