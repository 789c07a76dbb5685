"""Runs inside the original VRE's virtual environment (see vre_parity.py): VRE 1.18.6 itself on a VRE config.

    python _vre_parity_worker.py VIDEO CFG.yaml DEPTH_DIR OUT N

Builds the config's representations with VRE's own `build_representations_from_cfg` (its YAML loader, types and
io/compute defaults). A representation depending on `depth` (the normals) is built by VRE's own
`build_representation_from_cfg` too, over a DepthRepresentation that reads the depth maps of DEPTH_DIR (VRE has
no representation reading arrays from disk; vre-fast reads the same files with `external`). Then `VRE.run` writes
frames 0..N-1 into OUT, as the `vre` CLI does.
"""

import sys
from pathlib import Path

import numpy as np
from vre import VRE, ReprOut
from vre.representations import build_representations_from_cfg
from vre.representations.build_representations import build_representation_from_cfg
from vre.utils import MemoryData
from vre.utils.yaml import vre_yaml_load
from vre_repository import get_vre_repository
from vre_repository.depth.depth_representation import DepthRepresentation
from vre_video import VREVideo


class FileDepth(DepthRepresentation):
    """The depth maps vre-fast's `external` node reads: DEPTH_DIR/<frame>.npz (arr_0, H x W float32)."""

    folder = Path()

    def compute(self, video, ixs, dep_data=None):
        depth = np.stack([np.load(self.folder / f"{i}.npz")["arr_0"] for i in ixs])[..., None]
        return ReprOut(frames=video[ixs], output=MemoryData(depth), key=ixs)


def main(video_path: str, cfg_path: str, depth_dir: str, out: str, n: int) -> None:
    cfg = vre_yaml_load(cfg_path)
    on_depth = {k: v for k, v in cfg["representations"].items() if "depth" in v["dependencies"]}
    types = get_vre_repository()
    built = list(build_representations_from_cfg({**cfg, "representations": {
        k: v for k, v in cfg["representations"].items() if k not in on_depth}}, types))
    FileDepth.folder = Path(depth_dir)
    depth = FileDepth("depth", min_depth=0, max_depth=1e6)
    depth.set_io_params(binary_format="not-set", image_format="not-set")  # not stored, as vre-fast's
    for name, repr_cfg in on_depth.items():
        built.append(build_representation_from_cfg(
            repr_cfg, name, types, [*built, depth], cfg.get("default_compute_parameters", {}),
            cfg.get("default_learned_parameters", {}), cfg.get("default_io_parameters", {})))
    VRE(VREVideo(video_path), [*built, depth]).run(Path(out), frames=list(range(n)),
                                                   subset_exported_representations=list(cfg["representations"]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
