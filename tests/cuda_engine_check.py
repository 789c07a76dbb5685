"""Runs a graph on a CUDA device through `vre-fast run`'s engine and checks where the arrays went; exits
non-zero on a mismatch. Run by tests/test_engine.py under numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1,
set before numba is imported) when there is no GPU: the simulator's device arrays are distinct objects that
must be copied explicitly, so every copy the runtime makes is one it counted.

The graph: class maps from disk (host) -> semantic_mapper (cuda) -> binary_mask (cuda), the mapper not
stored, and hsv (cuda) on the frames. The mapper's input goes to the device once per batch; its output feeds
the mask on the device with no copy; only the mask's output comes back, for storage; hsv's frames go over
from the frame ring and its output comes back. The stored masks equal a CPU run's bit for bit, hsv's within
float16 rounding (the CUDA and CPU kernels may round the last bit differently).

The copies and events go through the device's CUDA streams (vre_fast/execution/streams.py), counted here by
a subclass: every copy the operators counted is one queued on a stream, each host->device copy is waited on
by the compute stream, each device->host copy waits on the compute stream and is waited for by the host
before its output is encoded, and every kernel launch happens inside the compute stream's block. In the
simulator streams and events are synchronous (the counts, not the overlap, are checked); on a GPU the same
counts hold and the copies run asynchronously from the page-locked frame ring and output buffers.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from vre_fast import RunOptions, parse_config, run
from vre_fast.execution import streams
from vre_fast.sources.synthetic import drifting_texture, write_video

FRAMES, HEIGHT, WIDTH, BATCH = 6, 8, 12, 3


def graph(classes: Path, device: str) -> dict:
    return {"batch_size": BATCH, "device": device, "representations": {
        "semantic": {"type": "external", "parameters": {"path": str(classes), "classes": ["a", "b", "c", "d"]},
                     "output_formats": [], "device": "cpu"},
        "mapped": {"type": "semantic_mapper", "dependencies": ["semantic"], "output_formats": [],
                   "parameters": {"mapping": {"land": ["a", "b"], "water": ["c"], "air": ["d"]}}},
        "mask": {"type": "binary_mask", "dependencies": ["mapped"], "parameters": {"classes": ["water"]}},
        "hsv": {"type": "hsv"},
    }}


class CountingStreams(streams.CudaStreams):
    """The CUDA streams, each operation counted (installed before the run makes its streams)."""

    counts = {"to_device": 0, "to_host": 0, "record": 0, "wait": 0, "launching": 0, "synchronize": 0}

    def record(self, stream):  # noqa: ANN001, ANN201
        self.counts["record"] += 1
        event = super().record(stream)
        original = event.synchronize

        def synchronize() -> None:
            self.counts["synchronize"] += 1
            original()

        event.synchronize = synchronize
        return event

    def wait(self, stream, event):  # noqa: ANN001, ANN201
        self.counts["wait"] += 1
        assert stream is not None
        return super().wait(stream, event)

    def to_device(self, host, stream):  # noqa: ANN001, ANN201
        self.counts["to_device"] += 1
        assert stream is self.copy
        return super().to_device(host, stream)

    def to_host(self, array, stream):  # noqa: ANN001, ANN201
        self.counts["to_host"] += 1
        assert stream is self.copy
        return super().to_host(array, stream)

    def launching(self, stream):  # noqa: ANN001, ANN201
        self.counts["launching"] += 1
        assert stream is self.compute
        return super().launching(stream)


def main() -> None:
    streams.CudaStreams = CountingStreams  # what streams_for makes for a CUDA device from now on
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
    expected = {"semantic": (0, 0), "mapped": (batches, 0), "mask": (0, batches), "hsv": (batches, batches)}
    if copies != expected:
        sys.exit(f"copies (to device, to host) {copies}, expected {expected}")
    to_device, to_host = (sum(c[i] for c in copies.values()) for i in (0, 1))
    counts = CountingStreams.counts
    on_streams = {"to_device": to_device, "to_host": to_host, "record": to_device + 2 * to_host,
                  "wait": to_device + to_host, "launching": 3 * batches}
    if {k: counts[k] for k in on_streams} != on_streams or counts["synchronize"] < to_host + batches:
        sys.exit(f"stream operations {counts}, expected {on_streams} and at least {to_host + batches} "
                 f"host waits (each copy back, each frame slot read by a copy)")
    for f in range(FRAMES):
        gpu, cpu = (np.load(root / side / "mask" / "npz" / f"{f}.npz")["arr_0"] for side in ("gpu", "cpu"))
        if gpu.dtype != cpu.dtype or not np.array_equal(gpu, cpu):
            sys.exit(f"frame {f}: the CUDA run's mask differs from the CPU run's")
        gpu, cpu = (np.load(root / side / "hsv" / "npz" / f"{f}.npz")["arr_0"] for side in ("gpu", "cpu"))
        if gpu.dtype != cpu.dtype or not np.allclose(gpu, cpu, rtol=0, atol=2 ** -10):
            sys.exit(f"frame {f}: the CUDA run's hsv differs from the CPU run's by more than float16 rounding")
    print(f"copies {copies}; masks equal the CPU run's; hsv within float16 rounding")
    print(f"streams: {counts}")


if __name__ == "__main__":
    main()
