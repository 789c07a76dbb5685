"""vre-fast's RAFT against torchvision's own RAFT, with the same weights, on the same frames.

    python bench/raft_vs_torchvision.py [--frames 3] [--size 960x540] [--iterations 12]

torchvision's wheel is unpacked (no dependencies) into bench/.torchvision on first use: it cannot be
installed beside the CPU torch build, whose missing compiled ops it only needs for its meta registrations,
which are skipped here. With torchvision's released checkpoint in torch hub's cache both run it; without,
both run the same random initialisation. Prints the largest flow difference in pixels per variant.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from _frames import EXAMPLE, describe, example_frames

from vre_fast import parse_config
from vre_fast._builder import build_graph
from vre_fast._pretrained import _torch_hub_file

TORCHVISION = Path(__file__).parent / ".torchvision"


def torchvision_raft() -> types.ModuleType:
    if not (TORCHVISION / "torchvision").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(TORCHVISION),
                        "torchvision==0.28.0"], check=True)
    sys.path.insert(0, str(TORCHVISION))
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    from torchvision.models.optical_flow import raft

    return raft


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--iterations", type=int, default=12)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    frames = np.stack(example_frames(EXAMPLE, args.frames + 1, width, height))
    raft = torchvision_raft()
    print(f"{args.frames} frame pairs at {args.size} ({describe(EXAMPLE)}), {args.iterations} iterations")
    for variant, builder in (("large", raft.raft_large), ("small", raft.raft_small)):
        params = {"variant": variant, "backend": "torch", "iterations": args.iterations}
        rep = build_graph(parse_config({"representations": {"f": {"type": "optical_flow_raft",
                                                                  "parameters": params}}}))["f"].representation
        weights = _torch_hub_file(rep.pretrained_cfg.filename)
        if not weights.exists():
            rep = build_graph(parse_config({"representations": {"f": {"type": "optical_flow_raft", "parameters": {
                **params, "variant": f"{variant}_random"}}}}))["f"].representation
        ours = rep.load_model()
        theirs = builder().eval()
        theirs.load_state_dict(ours.state_dict())
        x = torch.from_numpy(rep.model_input(frames))
        with torch.inference_mode():
            a = ours(torch.cat([x[:-1], x[1:]], 1))
            b = theirs(x[:-1], x[1:], num_flow_updates=args.iterations)[-1]
        diff = (a - b).abs()
        print(f"  raft_{variant} ({'released weights' if weights.exists() else 'random weights'}): max |diff| "
              f"{diff.max():.2e} px, mean {diff.mean():.2e} px; flow magnitude up to {b.abs().max():.2f} px")


if __name__ == "__main__":
    main()
