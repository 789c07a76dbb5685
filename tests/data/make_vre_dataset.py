"""Writes tests/data/vre_1_18_6/: a tiny dataset made by the original VRE (PyPI video-representations-extractor
1.18.6) itself, for tests/test_reader_vre.py to check that `vre_fast.reader` reads VRE's layout.

Run in the side venv the benchmarks make (bench/_venvs.py: `python -c "import sys; sys.path.insert(0, 'bench');
import _venvs; _venvs.vre_venv()"` creates it once), from the repository root:

    bench/.vre-venv/bin/python tests/data/make_vre_dataset.py tests/data/vre_1_18_6

What it holds (6 frames of 32x24 of a numpy video, so no ffmpeg is needed), written by VRE's own DataWriter:
  rgb       color/rgb, npz compressed (np.savez_compressed), all 6 frames
  hsv       color/hsv of rgb, npz as float16 (VRE's output_dtype), frames 0-3 only (a second run): 4-5 are missing
  semantic  a SemanticRepresentation (VRE's class) of 4 brightness classes, stored argmaxed as uint8, npz
  depth     a DepthRepresentation of a tilted plane, npy (np.save)
  normals   normals/depth-svd (VRE's DepthNormalsSVD) of depth, npz, stored VRE's way: (n + 1) / 2
and, per representation, VRE's .repr_metadata.json, and its run records in .logs/.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
from vre import ReprOut, VideoRepresentationsExtractor
from vre.utils import MemoryData
from vre_repository.color.hsv import HSV
from vre_repository.color.rgb import RGB
from vre_repository.depth.depth_representation import DepthRepresentation
from vre_repository.normals.depth_svd import DepthNormalsSVD
from vre_repository.semantic_segmentation.semantic_representation import SemanticRepresentation
from vre_video import VREVideo

FRAMES, HEIGHT, WIDTH = 6, 24, 32


class BrightnessClasses(SemanticRepresentation):
    """Four classes by the frame's brightness quartile: a class map computed without weights."""

    def compute(self, video, ixs, dep_data=None):
        gray = video[ixs].mean(-1)
        classes = np.clip((gray / 64).astype(np.int64), 0, 3)
        return ReprOut(frames=video[ixs], output=MemoryData(np.eye(4, dtype=np.float32)[classes]), key=ixs)


class PlaneDepth(DepthRepresentation):
    """A plane tilted towards the bottom of the picture, further away frame by frame."""

    def compute(self, video, ixs, dep_data=None):
        rows = np.linspace(1, 2, HEIGHT, dtype=np.float32)[:, None].repeat(WIDTH, 1)
        depth = np.stack([(10 + i) / rows for i in ixs])[..., None]
        return ReprOut(frames=video[ixs], output=MemoryData(depth), key=ixs)

    @property
    def n_channels(self):
        return 1


def video() -> VREVideo:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = np.stack([np.stack([(x * 8 + 20 * i) % 256, (y * 10) % 256, (x * y + 30 * i) % 256], -1)
                       for i in range(FRAMES)]).astype(np.uint8)
    return VREVideo(frames, fps=10)


def main(out_dir: Path) -> None:
    shutil.rmtree(out_dir, ignore_errors=True)
    rgb = RGB("rgb")
    hsv = HSV("hsv", dependencies=[rgb])
    semantic = BrightnessClasses("semantic", classes=["dark", "dim", "bright", "light"],
                                 color_map=[(0, 0, 0), (85, 85, 85), (170, 170, 170), (255, 255, 255)],
                                 disk_data_argmax=True)
    depth = PlaneDepth("depth", min_depth=0, max_depth=100)
    normals = DepthNormalsSVD(name="normals", dependencies=[depth], sensor_fov=75, sensor_size=(3840, 2160),
                              window_size=5)
    io = {"binary_format": "npz", "image_format": "not-set", "compress": False}
    rgb.set_io_params(**{**io, "compress": True})
    semantic.set_io_params(**io)
    depth.set_io_params(**{**io, "binary_format": "npy"})
    normals.set_io_params(**io)
    hsv.set_io_params(**io, output_dtype="float16")
    VideoRepresentationsExtractor(video(), [rgb, semantic, depth, normals]).run(out_dir, frames=list(range(FRAMES)))
    VideoRepresentationsExtractor(video(), [rgb, hsv]).run(out_dir, frames=[0, 1, 2, 3],
                                                           subset_exported_representations=["hsv"],
                                                           output_dir_exists_mode="skip_computed")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
