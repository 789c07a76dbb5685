"""`decoder: torchcodec` beside PyAV: the option's plumbing (always), torchcodec's frames against PyAV's
(where torchcodec loads), NVDEC's frames on the device (where a CUDA GPU is).

Tolerances, stated: on the CPU both decoders run FFmpeg's H.264 decoder and swscale's BT.601 conversion, so
frames may differ only by rounding: at most 2 levels anywhere (CPU_MAX_LEVELS). NVDEC's frames go through
NPP's conversion (other chroma upsampling), so there only the mean is bounded (CUDA_MEAN_LEVELS) and frame
exactness is checked by identity: each frame must be the best match of PyAV's frame of the same index among
its neighbours (the frames carry their index drawn as bars).

PyPI's torchcodec is built against a CUDA build of torch and loads FFmpeg 4-9's shared libraries: on a
machine with a CPU build of torch (this project's CI) it cannot load, and those tests skip saying why.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_video

from vre_fast import VideoError
from vre_fast.runner import RunOptions, run
from vre_fast.sources import open_input
from vre_fast.sources.torchcodec_video import TorchCodecSource, torchcodec_unavailable

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from decoders import frame_differences, seek_pattern  # noqa: E402

CPU_MAX_LEVELS = 2
CUDA_MEAN_LEVELS = 3.0
UNAVAILABLE = torchcodec_unavailable()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_unknown_decoder_and_decoder_for_a_folder_are_errors(video: Path, tmp_path: Path):
    with pytest.raises(VideoError, match=r"--decoder opencv: unknown decoder; known: pyav, torchcodec"):
        open_input(video, decoder="opencv")
    (tmp_path / "frames").mkdir()
    with pytest.raises(VideoError, match=r"--decoder torchcodec: .*frames is a folder of frames; a decoder is chosen "
                                         r"for video files only"):
        open_input(tmp_path / "frames", decoder="torchcodec")


@pytest.mark.skipif(UNAVAILABLE is None, reason="torchcodec loads here: the refusal is not reachable")
def test_torchcodec_that_cannot_load_is_one_error_saying_why(video: Path, tmp_path: Path):
    from vre_fast import parse_config

    assert UNAVAILABLE.startswith("decoder torchcodec: ") and "\n" not in UNAVAILABLE
    with pytest.raises(VideoError, match=r"^decoder torchcodec: "):
        open_input(video, decoder="torchcodec")
    cfg = parse_config({"representations": {"rgb": {"type": "rgb"}}})
    with pytest.raises(VideoError, match=r"^decoder torchcodec: "):
        run(video, cfg, tmp_path / "out", RunOptions(decoder="torchcodec"))
    assert not (tmp_path / "out" / "rgb").exists()


def test_seek_pattern_crosses_keyframes():
    assert seek_pattern(120) == [0, 1, 29, 30, 31, 60, 67, 119]


def test_frame_differences_find_a_frame_that_landed_elsewhere():
    ref = {i: np.full((4, 4, 3), 10 * i, np.uint8) for i in range(6)}
    same = frame_differences({2: ref[2].copy(), 3: ref[3] + 1}, ref)
    assert same == {"max_abs_levels": 1, "mean_abs_levels": 0.5, "frames_compared": 2, "misplaced_frames": []}
    assert frame_differences({2: ref[3]}, ref)["misplaced_frames"] == [2]


@pytest.mark.skipif(UNAVAILABLE is not None, reason=f"{UNAVAILABLE}")
def test_torchcodec_on_cpu_matches_pyav_on_seeks(decoded_reference):
    path, frames = decoded_reference  # 90 frames, keyframe every 25
    wanted = [0, 1, 24, 25, 26, 50, 49, 89, 7]
    with TorchCodecSource(path, "cpu") as tc:
        got = dict(tc.read(wanted))
        assert (tc.num_frames, tc.height, tc.width) == (90, 48, 64)
    stats = frame_differences(got, dict(enumerate(frames)))
    assert stats["misplaced_frames"] == [] and stats["max_abs_levels"] <= CPU_MAX_LEVELS, stats


@pytest.mark.skipif(UNAVAILABLE is not None, reason=f"{UNAVAILABLE}")
def test_torchcodec_keeps_the_video_identity(video: Path):
    with TorchCodecSource(video) as tc, open_input(video) as pyav:
        assert tc.fingerprint() == pyav.fingerprint()


@pytest.mark.skipif(UNAVAILABLE is not None or not _cuda(), reason=f"{UNAVAILABLE or 'no CUDA device'}")
def test_nvdec_frames_land_on_the_device(tmp_path: Path):
    path = make_video(tmp_path / "v.mp4", num_frames=40, height=96, width=128, gop=10)
    with open_input(path) as pyav:
        reference = dict(pyav.read(range(40)))
    with TorchCodecSource(path, "cuda") as tc:
        chunks = list(tc.read_tensors([3, 9, 10, 11, 39, 0]))
    assert all(data.device.type == "cuda" and tuple(data.shape[1:]) == (96, 128, 3) for _, data in chunks)
    got = {i: frame.cpu().numpy() for idx, data in chunks for i, frame in zip(idx, data)}
    stats = frame_differences(got, reference)
    assert stats["misplaced_frames"] == [] and stats["mean_abs_levels"] <= CUDA_MEAN_LEVELS, stats
