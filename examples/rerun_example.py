"""A dataset as a Rerun recording, offline: `python examples/rerun_example.py` (needs the `rerun` extra).

It makes a small dataset from examples/bikes.mp4 (or, when that is absent, a synthetic clip: nothing is
downloaded): RGB, HSV, Canny edges, optical flow and a class map with names (the hue of each pixel binned
into six colours, grey where unsaturated, written as npz files and read through `external`, as an expert's
stored outputs would be). Then `vre-fast view` writes every representation, frame by frame, into
examples/out_rerun/recording.rrd, and the script says how to open it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import numpy as np
import yaml

from vre_fast.cli import main

FRAMES = 30
CLASSES = ["red", "yellow", "green", "cyan", "blue", "magenta", "grey"]


def hue_classes(frame: np.ndarray) -> np.ndarray:
    """Each pixel's hue binned into CLASSES[:6] (60 degrees each, red centred on 0), grey below 25% saturation."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)  # hue in 0..179 (2-degree steps)
    classes = (((hsv[..., 0].astype(np.int32) + 15) // 30) % 6).astype(np.uint8)
    classes[hsv[..., 1] < 64] = CLASSES.index("grey")
    return classes


def main_example(root: Path) -> int:
    work = root / "out_rerun"
    classes_dir = work / "hue_classes"
    classes_dir.mkdir(parents=True, exist_ok=True)
    video = root / "bikes.mp4"
    if not video.exists():
        from vre_fast.sources.synthetic import drifting_texture, write_video

        video = write_video(work / "synthetic.mp4", drifting_texture(FRAMES, 272, 480, step=4))
        print(f"{root / 'bikes.mp4'} is absent (examples/get_example_video.py fetches it): using {video}")
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == FRAMES:
                break
            np.savez(classes_dir / f"{i}.npz", hue_classes(frame.to_ndarray(format="rgb24")))
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump({"representations": {
        "rgb": {"type": "rgb"},
        "hsv": {"type": "hsv"},
        "edges": {"type": "edges_canny", "parameters": {"threshold1": 100, "threshold2": 200}},
        "flow": {"type": "optical_flow_classical", "parameters": {"method": "dis", "dis_preset": "medium"}},
        "colours": {"type": "external", "parameters": {"path": str(classes_dir), "classes": CLASSES}},
    }}, sort_keys=False))
    code = main(["run", str(video), "-c", str(cfg), "-o", str(work / "dataset"), "--frames", f"0..{FRAMES}",
                 "--no-progress"])
    if code != 0:
        return code
    recording = work / "recording.rrd"
    code = main(["view", str(work / "dataset"), "-o", str(recording)])
    if code == 0:
        print(f"open it with:  rerun {recording}\n"
              f"(or send it to a running viewer: vre-fast view {work / 'dataset'} -o rerun://127.0.0.1:9876)")
    return code


if __name__ == "__main__":
    sys.exit(main_example(Path(__file__).resolve().parent))
