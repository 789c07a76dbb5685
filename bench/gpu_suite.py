"""vre-fast's GPU path in one run: every CUDA test and every GPU figure, in at most 8 minutes on one GPU.

    python bench/gpu_suite.py --out results.json [--budget 450] [--only a,b] [--dry-run]

Sections (each guarded: one that fails records its error and the rest still run; the JSON is rewritten after
every section, so a run cut short still brings back what it measured; each prints its time):

  environment      nvidia-smi; Python; which of torch (CUDA), TensorRT, onnxruntime (its providers), numba-cuda,
                   torchcodec, PyAV, NVML import, and why not.
  cuda_tests       the CUDA tests on the device, by pytest in a subprocess: the kernels against their NumPy
                   references (tests/test_kernels_cuda.py, tests/cuda_kernels_check.py), the engine's device
                   copies (tests/test_engine.py), NVDEC vs PyAV (tests/test_decoders.py), the backend choice.
  pinned_copy      host-to-device GB/s of a 1080p batch (8 frames) from pinned and from pageable memory (CUDA
                   events): the ceiling the run's copies are held to.
  experts          per expert (random-initialised real architectures: no weights can be downloaded there), torch
                   eager vs TensorRT FP16 (and ONNX Runtime's GPU providers where installed) frames/s at batch 1
                   and 8 on 960x540 frames, the runner alone on prepared input; TensorRT's output against torch's
                   (mean and max |difference| as a fraction of the output's scale; FP16 budget FP16_MEAN_TOLERANCE).
  decode           NVDEC (torchcodec on cuda) and torchcodec on the CPU vs PyAV on a 1080p H.264 video: frames/s,
                   frames on the device, |difference| in levels, frame-exact seeks (bench/decoders.py).
  realtime_run     a configs/realtime.yaml batch run (its two experts, batch 8) on a 1080p video through
                   `vre_fast.runner.run`, after a warm-up run: end-to-end frames/s; GPU busy fraction from NVML's
                   utilisation counter sampled every 20 ms during the run (nvmlDeviceGetUtilizationRates: the
                   share of time a kernel was running, over NVML's own sample period); pure-inference frames/s
                   (the same experts' runners back to back on prepared input) and their ratio; from a shorter
                   run under torch.profiler (CUPTI), the run's host-to-device copies: bytes / copy time in GB/s,
                   pageable or pinned, against pinned_copy's pinned ceiling.
  stream_latency   `vre-fast stream` with the realtime graph on the device (stdin/stdout, 960x540, one frame in
                   flight): added latency p50/p99 = client round trip - the compute time each result reports,
                   beside that model time (bench/stream_latency.py's measure).
  normals_svd      SVD normals at 1080p: the CUDA kernel vs numba on the CPU, ms per frame, and their max |diff|.

Targets (from the issue; judged only on figures measured on a GPU): TensorRT FP16 >= 3x torch eager for the depth
and segmentation experts; GPU busy >= 90%; end-to-end >= 0.9 x pure inference; run H2D >= 80% of pinned; added
stream latency <= 1 ms.

`--dry-run` (and any machine without a CUDA device) runs every section's plumbing on the CPU at tiny sizes and
stores what it computed under "cpu_dry_run", never under "figures": no CUDA device, no GPU figure.

The device command. The device machine (one H200, Python 3.12 with a CUDA torch, numba-cuda, nvidia-ml-py, onnx
and onnxruntime (CPU) installed; no TensorRT, no onnxruntime-gpu, no PyAV, no torchcodec, no network) gets
PyAV, torchcodec and diffusers as wheels carried from here (about 48 MiB of the 64 MiB a call may carry; TensorRT's and
onnxruntime-gpu's wheels are GBs and cannot travel, so their rows say "not installed" unless the image has
them). Once, here, in the repository root:

    python bench/gpu_suite.py --fetch-wheels .whl

then one device call, carrying [".whl"], timeout_s 600:

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl; \\
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .; \\
    PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 bench/gpu_suite.py --out $OUT/gpu_suite.json \\
      --budget 450 2>&1 | tee $OUT/gpu_suite.log

(`;`, not `&&`: where an install step fails the suite still runs and its environment section says what is missing;
`pip install -e .` maps vre_fast.kernels and vre_fast.export onto kernels/ and export/, as on a developer's machine.)

torchcodec loads FFmpeg's shared libraries by their plain names (libavcodec.so.62 ...); the image has none, so
the suite links PyAV's bundled FFmpeg 8 under those names in a temporary folder and re-executes itself with
LD_LIBRARY_PATH set (`_ffmpeg_from_pyav`); the environment section says whether torchcodec then loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

FP16_MEAN_TOLERANCE = 0.01  # mean |TensorRT FP16 - torch FP32| accepted, as a fraction of the output's scale
BATCHES = (1, 8)
TARGETS = {"tensorrt_speedup_depth_segmentation": ">= 3", "gpu_busy_fraction": ">= 0.90",
           "end_to_end_over_pure_inference": ">= 0.9", "run_h2d_over_pinned": ">= 0.80",
           "stream_added_latency_ms_p50_p99": "<= 1"}
# (type, variant, target group); the realtime graph's two first, then the other exporting experts, heaviest last
EXPERTS = [("depth_anything", "small_random", "depth"), ("semantic_safeuav", "430k", "segmentation"),
           ("semantic_safeuav", "4M", "segmentation"), ("edges_hed", "random", None),
           ("depth_marigold", "lcm_test", None),  # the 7-channel engine (RGB + latent noise), on a tiny random
           # configuration: its weights cannot reach the device machine, so its speed is not Marigold's
           ("edges_dexined", "random", None), ("optical_flow_rife", "random", None),
           ("optical_flow_raft", "large_random", None), ("depth_dpt", "large_384_random", "depth"),
           ("semantic_mask2former", "swin_large_random", "segmentation")]
DRY_EXPERTS = [("semantic_safeuav", "430k", "segmentation")]
# what the device image lacks and can travel (about 48 MiB); torchcodec 0.16: documented for torch >= 2.11 (the
# device image has 2.11+cu130); diffusers (and its importlib_metadata) for Marigold
WHEELS = ["av==18.1.0", "torchcodec==0.16.0", "diffusers==0.42.1", "importlib-metadata==10.2.0"]
FFMPEG_SONAMES = {"libavutil": 60, "libavcodec": 62, "libavformat": 62, "libavdevice": 62, "libavfilter": 11,
                  "libswscale": 9, "libswresample": 6}  # PyAV 18's FFmpeg 8


class Context:
    """What every section gets: whether a GPU is used, the sizes, its deadline, the shared export cache."""

    def __init__(self, gpu: bool, tmp: Path):
        self.gpu = gpu
        self.device = "cuda" if gpu else "cpu"
        self.tmp = tmp
        self.full_hw = (1080, 1920) if gpu else (48, 64)
        self.expert_hw = (540, 960) if gpu else (48, 64)
        self.deadline = time.monotonic()

    def left(self) -> float:
        return self.deadline - time.monotonic()


# -- sections ---------------------------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def environment(ctx: Context) -> dict[str, Any]:
    env: dict[str, Any] = {"python": sys.version.split()[0], "executable": sys.executable,
                           "platform": platform.platform(), "cpus": os.cpu_count(),
                           "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", "")}
    try:
        env["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,pcie.link.gen.max,"
             "pcie.link.width.max", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        ).stdout.strip() or "no GPU listed"
    except (OSError, subprocess.TimeoutExpired) as exc:
        env["nvidia_smi"] = f"not run: {_first_line(exc)}"
    packages: dict[str, str] = {}
    for name in ("torch", "tensorrt", "onnxruntime", "numba", "av", "torchcodec", "pynvml", "cupy", "pycuda"):
        try:
            module = __import__(name)
            packages[name] = getattr(module, "__version__", "imported")
        except Exception as exc:  # a broken install raises anything: say what
            packages[name] = f"not importable: {_first_line(exc)}"
    env["packages"] = packages
    if "not importable" not in packages["torch"]:
        import torch

        env["torch_cuda"] = torch.version.cuda
        env["torch_sees_cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    if "not importable" not in packages["onnxruntime"]:
        import onnxruntime

        env["onnxruntime_providers"] = onnxruntime.get_available_providers()
    try:
        from numba import cuda

        env["numba_cuda"] = bool(cuda.is_available())
    except Exception as exc:
        env["numba_cuda"] = f"not usable: {_first_line(exc)}"
    from vre_fast.sources.torchcodec_video import torchcodec_unavailable

    env["torchcodec_decoder"] = torchcodec_unavailable() or "loads"
    try:
        import vre_fast.export  # noqa: F401
        import vre_fast.kernels  # noqa: F401

        env["vre_fast"] = "imports (kernels and export included)"
    except ImportError as exc:
        env["vre_fast"] = f"kernels/export not importable ({exc}): install it with pip install -e ."
    return env


def _pytest_summary(lines: list[str]) -> str:
    return next((line for line in reversed(lines) if " passed" in line or " failed" in line or " error" in line),
                lines[-1] if lines else "").strip("= ")


def _run_captured(cmd: list[str], timeout: float) -> tuple[int | str, list[str]]:
    """(exit status, or "timed out", and the output's lines): a subprocess cut short still says how far it got."""
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()
    except subprocess.TimeoutExpired as exc:
        partial = b"".join(x for x in (exc.stdout, exc.stderr) if isinstance(x, bytes)).decode(errors="replace")
        partial += "".join(x for x in (exc.stdout, exc.stderr) if isinstance(x, str))
        return f"timed out after {timeout:.0f} s", partial.strip().splitlines()


def cuda_tests(ctx: Context) -> dict[str, Any]:
    """On a GPU: pytest in a subprocess over the CUDA test files (the kernels on the device against their NumPy
    references, NVDEC vs PyAV, the backend choice; the simulator and PTX tests, slow ones, are left out: the
    device run supersedes them), then tests/cuda_engine_check.py on the device (the engine's copies between two
    CUDA representations). In a dry run only the fast PTX-signature test, for the plumbing."""
    tests = (["tests/test_kernels_cuda.py", "tests/test_decoders.py", "tests/test_backends.py"] if ctx.gpu
             else ["tests/test_kernels_cuda.py::test_every_launched_cuda_kernel_has_its_ptx_signatures"])
    cmd = [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", *tests]
    status, lines = _run_captured(cmd, max(ctx.left() - 30, 10))
    out: dict[str, Any] = {"pytest": {"command": " ".join(cmd[1:]), "returncode": status,
                                      "summary": _pytest_summary(lines),
                                      "skipped": [line for line in lines if line.startswith("SKIPPED")],
                                      "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))],
                                      "tail": lines[-40:] if status else []}}
    if ctx.gpu:
        status, lines = _run_captured([sys.executable, "tests/cuda_engine_check.py"], max(ctx.left(), 10))
        out["cuda_engine_check"] = {"returncode": status, "tail": lines[-15:]}
    out["passed"] = out["pytest"]["returncode"] == 0 and out.get("cuda_engine_check", {}).get("returncode", 0) == 0
    return out


def _cuda_seconds(fn: Callable[[], None], repeats: int) -> float:
    """Median seconds of `fn` by CUDA events, after one warm-up."""
    import torch

    fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return float(np.median(times))


def pinned_copy(ctx: Context) -> dict[str, Any]:
    import torch

    nbytes = 8 * ctx.full_hw[0] * ctx.full_hw[1] * 3
    if not ctx.gpu:  # the plumbing: the same copies between two host tensors
        src, dst = torch.empty(nbytes, dtype=torch.uint8), torch.empty(nbytes, dtype=torch.uint8)
        dst.copy_(src)
        return {"bytes": nbytes, "copied": True}
    dst = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    out = {"bytes": nbytes}
    for kind, src in (("pinned", torch.empty(nbytes, dtype=torch.uint8).pin_memory()),
                      ("pageable", torch.empty(nbytes, dtype=torch.uint8))):
        seconds = _cuda_seconds(lambda src=src: dst.copy_(src, non_blocking=True), 20)
        out[f"{kind}_h2d_gb_s"] = nbytes / seconds / 1e9
    return out


def _rep(type_name: str, variant: str, backend: str, device: str) -> Any:
    from vre_fast import parse_config
    from vre_fast._builder import build_graph

    cfg = {"representations": {"x": {"type": type_name, "device": device,
                                      "parameters": {"variant": variant, "backend": backend}}}}
    rep = build_graph(parse_config(cfg))["x"].representation
    rep.setup(device)
    return rep


def _batch(frames: np.ndarray) -> Any:
    from vre_fast.representation import ComputeBatch

    return ComputeBatch(list(range(len(frames))), frames, np.roll(frames, 3, axis=2), {})


def _frames(count: int, hw: tuple[int, int]) -> np.ndarray:
    from vre_fast.sources.synthetic import drifting_texture

    return np.stack(list(drifting_texture(count, *hw, step=8, seed=5)))


def _runner_seconds(runner: Any, x: np.ndarray, repeats: int) -> float:
    runner(x)  # warm-up (cuDNN / TensorRT tactics, lazy allocations)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(x)  # returns host arrays: the device is done
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _compared_backends(ctx: Context) -> tuple[list[str], list[str]]:
    """The backends timed beside torch eager, and why others are not."""
    from vre_fast.backends import available_backends, ort_gpu_providers

    if not ctx.gpu:
        return ["onnxruntime"], ["dry run: onnxruntime on the CPU stands in for TensorRT's plumbing"]
    chosen, why = [], []
    if "tensorrt" in available_backends("cuda"):
        chosen.append("tensorrt")
    else:
        why.append("tensorrt: not installed on this machine (its wheels are GBs: they cannot be carried)")
    if ort_gpu_providers():
        chosen.append("onnxruntime")
    else:
        why.append("onnxruntime: no CUDA or TensorRT execution provider (onnxruntime-gpu not installed)")
    return chosen, why


def experts(ctx: Context) -> dict[str, Any]:
    compared, not_compared = _compared_backends(ctx)
    frames = _frames(max(BATCHES), ctx.expert_hw)
    rows, not_run = [], []
    for type_name, variant, group in (EXPERTS if ctx.gpu else DRY_EXPERTS):
        if ctx.left() < (90 if "tensorrt" in compared else 30):  # an engine build cannot be cut short
            not_run.append(f"{type_name}.{variant}: the section's time ran out")
            continue
        row: dict[str, Any] = {"expert": f"{type_name}.{variant}", "target_group": group}
        try:
            reps = {b: _rep(type_name, variant, b, ctx.device) for b in ["torch", *compared]}
            inputs = {b: reps["torch"].network_input(_batch(frames[:b])) for b in BATCHES}
            row["input_shape"] = list(inputs[max(BATCHES)].shape[1:])
            runners = {name: rep.runner(_batch(frames[:1])) for name, rep in reps.items()}
            reference = runners["torch"](inputs[max(BATCHES)])[0]
            scale = reps["torch"].output_range or float(np.abs(reference).max()) or 1.0
            for name, runner in runners.items():
                for b in BATCHES:
                    row[f"{name}_fps_batch{b}"] = b / _runner_seconds(runner, inputs[b], 3)
                if name != "torch":
                    diff = np.abs(runner(inputs[max(BATCHES)])[0].astype(np.float64) - reference)
                    row[f"{name}_vs_torch"] = {"mean_abs_of_scale": float(diff.mean() / scale),
                                               "max_abs_of_scale": float(diff.max() / scale),
                                               "within_fp16_budget": bool(diff.mean() / scale <= FP16_MEAN_TOLERANCE)}
                    for b in BATCHES:
                        row[f"{name}_speedup_batch{b}"] = row[f"{name}_fps_batch{b}"] / row[f"torch_fps_batch{b}"]
            for rep in reps.values():
                rep.teardown()
        except Exception as exc:  # one expert that cannot build or export does not stop the others
            row["error"] = _first_line(exc)
        rows.append(row)
    return {"frames": f"{ctx.expert_hw[1]}x{ctx.expert_hw[0]}", "compared_with_torch": compared,
            "not_compared": not_compared, "experts": rows, "not_run": not_run}


def _write_video(path: Path, count: int, hw: tuple[int, int]) -> Path:
    from vre_fast.sources.synthetic import drifting_texture, write_video

    return write_video(path, drifting_texture(count, *hw, step=4, seed=3), fps=30, gop=30)


def decode(ctx: Context) -> dict[str, Any]:
    from decoders import GOP, compare, make_test_video

    video = make_test_video(ctx.tmp / "decode.mp4", 90 if ctx.gpu else 12, *ctx.full_hw[::-1])
    out = {"keyframe_every": GOP, "cpu": compare(video, "cpu")}
    if ctx.gpu:
        out["cuda"] = compare(video, "cuda")
    return out


class UtilisationSampler(threading.Thread):
    """NVML's GPU utilisation (percent of the last sample period in which a kernel ran) every `period` s."""

    def __init__(self, period: float = 0.02):
        super().__init__(daemon=True)
        import pynvml

        pynvml.nvmlInit()
        self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        self.period, self.samples, self._stop = period, [], threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
            time.sleep(self.period)

    def stop(self) -> list[int]:
        self._stop.set()
        self.join()
        return self.samples


def _realtime_cfg(device: str) -> dict[str, Any]:
    """configs/realtime.yaml as a batch run: batch 8, Depth-Anything's architecture randomly initialised (its
    weights come from a hub the device machine cannot reach; the speed is the same)."""
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "realtime.yaml").read_text())
    cfg.update(batch_size=8, device=device)
    cfg["representations"]["depth"]["parameters"]["variant"] = "small_random" if device != "cpu" else "test"
    return cfg


def _h2d_from_trace(trace: Path) -> dict[str, Any]:
    """Host-to-device copies in a torch.profiler (Kineto/CUPTI) trace: bytes, time on the copy engine, kinds."""
    events = json.loads(trace.read_text()).get("traceEvents", [])
    copies = [e for e in events if e.get("cat") == "gpu_memcpy" and "HtoD" in e.get("name", "")]
    nbytes = sum(int(e.get("args", {}).get("bytes", 0)) for e in copies)
    seconds = sum(float(e.get("dur", 0)) for e in copies) / 1e6
    kinds: dict[str, int] = {}
    for e in copies:
        kinds[e["name"]] = kinds.get(e["name"], 0) + 1
    return {"copies": len(copies), "bytes": nbytes, "copy_seconds": seconds,
            "gb_s": nbytes / seconds / 1e9 if seconds else None, "kinds": kinds}


def realtime_run(ctx: Context, pinned_gb_s: float | None) -> dict[str, Any]:
    from vre_fast import parse_config
    from vre_fast._builder import build_graph
    from vre_fast.runner import RunOptions, RunSession, run

    raw = _realtime_cfg(ctx.device)
    cfg = parse_config(raw)
    count = 160 if ctx.gpu else 16
    video = _write_video(ctx.tmp / "realtime.mp4", count, ctx.full_hw)
    with RunSession() as session:  # the experts load once, in the warm-up run (engines, kernels, caches)
        run(video, cfg, ctx.tmp / "rt_warm", RunOptions(frames=(0, 16)), session)
        sampler = UtilisationSampler() if ctx.gpu else None
        if sampler:
            sampler.start()
        start = time.perf_counter()
        result = run(video, cfg, ctx.tmp / "rt_main", RunOptions(frames=(0, count)), session)
        seconds = time.perf_counter() - start
        samples = sampler.stop() if sampler else []
        if ctx.gpu:  # the run's own host-to-device copies, from CUPTI, in a shorter run of the loaded graph
            import torch
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                run(video, cfg, ctx.tmp / "rt_prof", RunOptions(frames=(0, 48)), session)
                torch.cuda.synchronize()
            prof.export_chrome_trace(str(ctx.tmp / "trace.json"))
            h2d = _h2d_from_trace(ctx.tmp / "trace.json")
    out: dict[str, Any] = {"frames": result.computed_frames, "size": f"{ctx.full_hw[1]}x{ctx.full_hw[0]}",
                           "batch_size": raw["batch_size"], "end_to_end_fps": result.computed_frames / seconds,
                           "stage_line": result.report().splitlines()[0]}
    if samples:
        out.update(gpu_busy_fraction=float(np.mean(samples)) / 100, nvml_samples=len(samples),
                   gpu_busy_method="NVML nvmlDeviceGetUtilizationRates().gpu every 20 ms over the run() call "
                                   "(experts already loaded by the warm-up run)")
    graph = build_graph(cfg)
    batch = _batch(_frames(raw["batch_size"], ctx.full_hw))
    pure = 0.0
    for node in graph.nodes:
        rep = node.representation
        rep.setup(ctx.device)
        pure += _runner_seconds(rep.runner(batch), rep.network_input(batch), 3)
        rep.teardown()
    out["pure_inference_fps"] = raw["batch_size"] / pure
    out["end_to_end_over_pure_inference"] = out["end_to_end_fps"] / out["pure_inference_fps"]
    if ctx.gpu:
        out["run_h2d"] = h2d
        if pinned_gb_s and h2d["gb_s"]:
            out["run_h2d_over_pinned"] = h2d["gb_s"] / pinned_gb_s
    return out


def stream_latency(ctx: Context) -> dict[str, Any]:
    import yaml
    from stream_latency import OUTPUTS, ping_pong, stream_cmd

    from vre_fast.streaming import read_result

    raw = _realtime_cfg(ctx.device)
    raw["batch_size"] = 1
    cfg = ctx.tmp / "stream.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    OUTPUTS[:] = list(raw["representations"])
    h, w = ctx.expert_hw
    frames = list(_frames(60 if ctx.gpu else 8, (h, w)))
    stats = ctx.tmp / "stream_stats.json"
    proc = subprocess.Popen(stream_cmd(cfg, "stdin", "stdout:vre", f"{w}x{h}", stats), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, cwd=ROOT)
    watchdog = threading.Timer(max(ctx.left(), 5), proc.kill)  # a hung stream must not hang the suite
    watchdog.start()
    try:
        def send(i: int, frame: np.ndarray) -> None:
            proc.stdin.write(frame.data)
            proc.stdin.flush()

        added = ping_pong(send, lambda: read_result(proc.stdout), frames)
    finally:
        proc.stdin.close()
        proc.wait(60)
        watchdog.cancel()
    compute = json.loads(stats.read_text())["latency_ms"]["compute"]
    return {"frames": len(frames), "size": f"{w}x{h}", "outputs": list(OUTPUTS),
            "added_ms_p50": float(np.percentile(added, 50) * 1000),
            "added_ms_p99": float(np.percentile(added, 99) * 1000),
            "model_ms_p50": compute["p50"], "model_ms_p99": compute["p99"]}


def normals_svd(ctx: Context) -> dict[str, Any]:
    from vre_fast.kernels import normals_svd as ns

    h, w = ctx.full_hw
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (5 + 0.002 * xx + 0.003 * yy + rng.normal(0, 1e-3, (h, w))).astype(np.float32)
    intr = ns.intrinsics_from_fov(75, (3840, 2160), (w, h))
    host = ns.depth_to_normals(depth, intr, 11)  # numba: compiles on the first call
    start = time.perf_counter()
    for _ in range(3):
        host = ns.depth_to_normals(depth, intr, 11)
    out: dict[str, Any] = {"size": f"{w}x{h}", "window": 11, "numba_cpu_ms": (time.perf_counter() - start) / 3 * 1000,
                           "numba_threads": __import__("numba").get_num_threads()}
    if ctx.gpu:
        from numba import cuda

        d_depth = cuda.to_device(depth)
        ns.depth_to_normals(d_depth, intr, 11)
        cuda.synchronize()
        start = time.perf_counter()
        for _ in range(10):
            d_normals = ns.depth_to_normals(d_depth, intr, 11)
        cuda.synchronize()
        out["cuda_ms"] = (time.perf_counter() - start) / 10 * 1000
        out["cuda_speedup"] = out["numba_cpu_ms"] / out["cuda_ms"]
        out["max_abs_diff_cuda_vs_numba"] = float(np.abs(d_normals.copy_to_host() - host).max())
        out["within_2e-3"] = out["max_abs_diff_cuda_vs_numba"] <= 2e-3  # tests/cuda_kernels_check.py's tolerance
    else:
        reference = ns.normals_svd_numpy(depth, intr, 11)
        out["max_abs_diff_numba_vs_numpy"] = float(np.abs(host - reference).max())
    return out


# -- the run ----------------------------------------------------------------------------------------------------
SHARES = {"environment": 0.03, "cuda_tests": 0.25, "pinned_copy": 0.02, "experts": 0.30, "decode": 0.07,
          "realtime_run": 0.18, "stream_latency": 0.10, "normals_svd": 0.05}  # of the budget, each at most


def _write(path: Path, results: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(path)


def verdicts(sections: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets against the figures measured on a GPU (absent ones say so)."""
    fig = {name: s.get("figures") for name, s in sections.items()}
    out: dict[str, Any] = {}
    rows = (fig.get("experts") or {}).get("experts", [])
    speedups = {r["expert"]: r.get("tensorrt_speedup_batch8") for r in rows if r.get("target_group")}
    out["tensorrt_speedup_depth_segmentation"] = (
        {k: (v, v >= 3) for k, v in speedups.items() if v is not None} or "not measured")
    rt = fig.get("realtime_run") or {}
    for key, low in (("gpu_busy_fraction", 0.9), ("end_to_end_over_pure_inference", 0.9),
                     ("run_h2d_over_pinned", 0.8)):
        out[key] = (rt[key], rt[key] >= low) if key in rt else "not measured"
    st = fig.get("stream_latency") or {}
    out["stream_added_latency_ms_p50_p99"] = (
        ((st["added_ms_p50"], st["added_ms_p99"]), st["added_ms_p99"] <= 1) if st else "not measured")
    return out


def link_ffmpeg(libs: Path, folder: Path) -> Path:
    """Links to every library PyAV bundles (`libs`: auditwheel's names, libavcodec-5e6b81c2.so.62.28.102), and to
    its FFmpeg ones under their plain sonames too (libavcodec.so.62), in `folder`. One file under two names is
    loaded once: the loader knows a library by its file, whatever name found it."""
    for lib in libs.iterdir():
        (folder / lib.name).symlink_to(lib)
        stem = lib.name.split("-")[0]
        if stem in FFMPEG_SONAMES:
            (folder / f"{stem}.so.{FFMPEG_SONAMES[stem]}").symlink_to(lib)
    return folder


def _ffmpeg_from_pyav() -> None:
    """Where torchcodec is installed but finds no FFmpeg, give it PyAV's bundled FFmpeg 8 under the plain
    sonames it asks for (symbolic links, beside the bundled files' own names, so their $ORIGIN references
    resolve there too) and re-execute with LD_LIBRARY_PATH naming the folder (read only at a process's start)."""
    import importlib.util

    if os.environ.get("VRE_FAST_FFMPEG_LINKED") or importlib.util.find_spec("torchcodec") is None:
        return
    from vre_fast.sources.torchcodec_video import torchcodec_unavailable

    reason = torchcodec_unavailable()
    spec = importlib.util.find_spec("av")
    if reason is None or spec is None:
        return
    folder = link_ffmpeg(Path(spec.origin).parent.parent / "av.libs", Path(tempfile.mkdtemp(prefix="vre_ffmpeg_")))
    print(f"torchcodec found no FFmpeg ({reason}); re-running with PyAV's FFmpeg 8 linked in {folder}", flush=True)
    env = {**os.environ, "VRE_FAST_FFMPEG_LINKED": "1",
           "LD_LIBRARY_PATH": ":".join(p for p in (str(folder), os.environ.get("LD_LIBRARY_PATH")) if p)}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def fetch_wheels(folder: Path) -> None:
    """Here, with PyPI: the wheels the device machine lacks, for its Python 3.12 (see the module's docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform",
                    "manylinux_2_27_x86_64", "--platform", "manylinux_2_17_x86_64", "-d", str(folder), *WHEELS],
                   check=True)
    size = sum(p.stat().st_size for p in folder.glob("*.whl"))
    print(f"{folder}: {size / 2**20:.1f} MiB of wheels (a device call carries 64 MiB with the working tree)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_suite.json"))
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for the whole suite (default 450)")
    parser.add_argument("--only", help="comma separated sections to run (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: the plumbing, no GPU figure")
    parser.add_argument("--fetch-wheels", type=Path, metavar="DIR", help="download the device's wheels and exit")
    args = parser.parse_args(argv)
    if args.fetch_wheels:
        fetch_wheels(args.fetch_wheels)
        return {}
    if not args.dry_run:
        _ffmpeg_from_pyav()
    os.environ.setdefault("VRE_FAST_CACHE", tempfile.mkdtemp(prefix="vre_suite_cache_"))
    started = time.monotonic()
    chosen = args.only.split(",") if args.only else list(SHARES)
    unknown = set(chosen) - set(SHARES)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SHARES)}")
    gpu = False
    if not args.dry_run:
        try:
            import torch

            gpu = torch.cuda.is_available()
        except ImportError:
            pass
    note = ("figures measured on the GPU" if gpu else
            "no CUDA device: no GPU figure measured (each section's plumbing ran on the CPU at tiny sizes; what it "
            "computed is under cpu_dry_run, not figures)")
    print(f"vre-fast GPU suite: {note}; budget {args.budget:.0f} s", flush=True)
    results: dict[str, Any] = {"suite": "bench/gpu_suite.py", "gpu": gpu, "dry_run": not gpu, "note": note,
                               "budget_s": args.budget, "targets": TARGETS, "sections": {}}
    with tempfile.TemporaryDirectory(prefix="vre_suite_") as tmp:
        ctx = Context(gpu, Path(tmp))
        for name in chosen:
            left = args.budget - (time.monotonic() - started)
            entry: dict[str, Any] = {}
            if left < 5:
                entry = {"status": "not run: the suite's budget was spent"}
            else:
                ctx.deadline = time.monotonic() + min(left, max(SHARES[name] * args.budget, 20))
                t0 = time.monotonic()
                try:
                    if name == "realtime_run":
                        pinned = (results["sections"].get("pinned_copy", {}).get("figures") or {})
                        data = realtime_run(ctx, pinned.get("pinned_h2d_gb_s"))
                    else:
                        data = globals()[name](ctx)
                    entry["status"] = "ok"
                    entry["figures" if gpu and name != "environment" else
                          "found" if name == "environment" else "cpu_dry_run"] = data
                except Exception as exc:  # guarded: the section's error is its result
                    entry = {"status": "error", "error": _first_line(exc),
                             "traceback": traceback.format_exc().splitlines()[-12:]}
                entry["seconds"] = round(time.monotonic() - t0, 2)
            results["sections"][name] = entry
            results["elapsed_s"] = round(time.monotonic() - started, 2)
            results["verdicts"] = verdicts(results["sections"]) if gpu else "no CUDA device: nothing to judge"
            _write(args.out, results)
            shown = (entry.get("figures") if gpu else None) or entry.get("found")
            print(f"[{name}] {entry['status']} in {entry.get('seconds', 0):.1f} s"
                  + (f": {entry['error']}" if "error" in entry else "")
                  + (f"\n  {json.dumps(shown, default=str)[:3000]}" if shown else ""), flush=True)
    print(f"total {results['elapsed_s']:.1f} s; results in {args.out}"
          + ("" if gpu else "; no CUDA device: no GPU figure measured"), flush=True)
    if gpu:
        print(json.dumps(results["verdicts"], indent=1, default=str))
    return results


if __name__ == "__main__":
    main()
