"""A ROS 2 bag in, a dataset out: writes a tiny rosbag2 (MCAP) of camera images, runs `vre-fast run` on its image
topic, then plays the same bag through `vre-fast stream` at its recorded times. Offline, no ROS installation
(the pure-Python `rosbags` package of vre-fast's `ros` extra writes and reads the bag).

    python examples/rosbag_example.py [-o examples/out_rosbag]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from vre_fast.cli import main
from vre_fast.sources.synthetic import drifting_texture, write_image_bag

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "/camera/image_raw"


def run_example(out: Path) -> int:
    bag = out / "flight"
    shutil.rmtree(bag, ignore_errors=True)  # a bag is written once: a new one each time
    out.mkdir(parents=True, exist_ok=True)
    frames = list(drifting_texture(30, 120, 160))  # 30 frames at 20 Hz, as a camera driver publishes them (BGR)
    write_image_bag(bag, {TOPIC: frames}, storage="mcap", encoding="bgr8", period_ns=50_000_000)
    print(f"wrote {bag}/ (rosbag2, MCAP): {len(frames)} sensor_msgs/Image messages on {TOPIC}")

    dataset = out / "dataset"
    code = main(["run", str(bag), "--topic", TOPIC, "--config", str(ROOT / "configs" / "procedural.yaml"),
                 "-o", str(dataset), "--no-progress"])
    if code:
        return code
    (source,) = json.loads((dataset / ".source.json").read_text())["sources"]
    print(f"{dataset}/.source.json: {source['path']}, topic {source['topic']}, {source['num_frames']} frames of "
          f"{source['width']}x{source['height']}")
    record = json.loads(max((dataset / ".logs").glob("run-*.json")).read_text())
    log_ns, stamp_ns = record["frame_times"]["29"]
    print(f"frame 29 was logged at {log_ns} ns, its header stamp is {stamp_ns} ns (in the run record)")

    print("streaming the bag at its recorded pace (1.5 s) through hsv + edges:")
    return main(["stream", "--config", str(ROOT / "configs" / "procedural.yaml"), "--source", str(bag),
                 "--topic", TOPIC, "--representations", "hsv,edges", "--pace", "--policy", "all", "--sink", "null"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "examples" / "out_rosbag")
    sys.exit(run_example(parser.parse_args().out))
