"""Runs a graph on a CUDA device through `vre-fast run`'s engine and checks where the arrays went; exits
non-zero on a mismatch. Run by tests/test_engine.py under numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1,
set before numba is imported) when there is no GPU: the simulator's device arrays are distinct objects that
must be copied explicitly, so every copy the runtime makes is one it counted.

The graph: class maps from disk (host) -> semantic_mapper (cuda) -> binary_mask (cuda), the mapper not
stored. The mapper's input goes to the device once per batch; its output feeds the mask on the device with
no copy; only the mask's output comes back, for storage. The stored masks equal a CPU run's bit for bit.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from vre_fast import RunOptions, parse_config, run
from vre_fast.sources.synthetic import drifting_texture, write_video

FRAMES, HEIGHT, WIDTH, BATCH = 6, 8, 12, 3


def graph(classes: Path, device: str) -> dict:
    return {"batch_size": BATCH, "device": device, "representations": {
        "semantic": {"type": "external", "parameters": {"path": str(classes), "classes": ["a", "b", "c", "d"]},
                     "output_formats": [], "device": "cpu"},
        "mapped": {"type": "semantic_mapper", "dependencies": ["semantic"], "output_formats": [],
                   "parameters": {"mapping": {"land": ["a", "b"], "water": ["c"], "air": ["d"]}}},
        "mask": {"type": "binary_mask", "dependencies": ["mapped"], "parameters": {"classes": ["water"]}},
    }}


def main() -> None:
    root = Path(tempfile.mkdtemp())
    video = write_video(root / "v.mp4", list(drifting_texture(FRAMES, HEIGHT, WIDTH)))
    (root / "classes").mkdir()
    rng = np.random.default_rng(0)
    for f in range(FRAMES):
        cv2.imwrite(str(root / "classes" / f"{f}.png"), rng.integers(0, 4, (HEIGHT, WIDTH), np.uint8))
    on_gpu = run(video, parse_config(graph(root / "classes", "cuda")), root / "gpu", RunOptions(progress=False))
    run(video, parse_config(graph(root / "classes", "cpu")), root / "cpu", RunOptions(progress=False))
    record = json.loads((root / "gpu" / ".logs" / f"run-{on_gpu.run_id}.json").read_text())["representations"]
    batches = FRAMES // BATCH
    copies = {name: (record[name]["copies_to_device"], record[name]["copies_to_host"]) for name in record}
    expected = {"semantic": (0, 0), "mapped": (batches, 0), "mask": (0, batches)}
    if copies != expected:
        sys.exit(f"copies (to device, to host) {copies}, expected {expected}")
    for f in range(FRAMES):
        gpu, cpu = (np.load(root / side / "mask" / "npz" / f"{f}.npz")["arr_0"] for side in ("gpu", "cpu"))
        if gpu.dtype != cpu.dtype or not np.array_equal(gpu, cpu):
            sys.exit(f"frame {f}: the CUDA run's mask differs from the CPU run's")
    print(f"copies {copies}; masks equal the CPU run's")


if __name__ == "__main__":
    main()
