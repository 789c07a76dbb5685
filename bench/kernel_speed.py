"""NumPy reference vs numba CPU (vs CUDA when a GPU is present), per kernel, measured side by side.

    python bench/kernel_speed.py [--sizes 960x540,1920x1080] [--repeats 5]

Prints one table: median milliseconds per frame of each implementation and the speed-up over the NumPy
reference, plus the peak memory of the normals kernels (each measured in a fresh process: peak RSS
while computing minus peak RSS before). JIT compilation happens before timing (and is cached on disk).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

from vre_fast.backends import cuda_available
from vre_fast.kernels import colormaps, hsv, lookup, normals_svd, safe_landing

WINDOW = 11


def scene(h: int, w: int) -> dict[str, object]:
    """Inputs of every kernel at one size: a frame, a two-plane depth map with holes, classes, normals."""
    rng = np.random.default_rng(0)
    intr = normals_svd.intrinsics_from_fov(75, (3840, 2160), (w, h))
    fx, fy, cx, cy = intr
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones((h, w))], -1)
    ground, wall = np.array([0.0, 0.8, 0.6]), np.array([0.6, -0.2, 0.77])
    depth = np.where(u < w // 2, 10 / np.abs(rays @ ground), 20 / np.abs(rays @ wall))
    depth = (depth * (1 + rng.normal(0, 1e-3, (h, w)))).astype(np.float32)
    depth[h // 4: h // 4 + 20, w // 4: w // 4 + 40] = 0
    classes = rng.integers(0, 20, (h, w), dtype=np.uint8)
    normals = normals_svd.normals_svd_numba(depth, intr, WINDOW)
    return {"rgb": rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "depth": depth, "intr": intr,
            "classes": classes, "normals": normals, "lut": rng.integers(0, 255, 256, dtype=np.uint8),
            "table": (np.arange(20) % 3 == 0).astype(np.uint8)}


def cases(s: dict) -> dict[str, dict[str, Callable[[], object]]]:
    """kernel -> {implementation: thunk}."""
    return {
        "hsv": {"numpy": lambda: hsv.hsv_numpy(s["rgb"]), "numba": lambda: hsv.hsv_numba(s["rgb"])},
        "hsv to float16 (the stored form)": {"numpy": lambda: hsv.hsv_numpy(s["rgb"], np.float16),
                                             "numba": lambda: hsv.hsv_numba(s["rgb"], np.float16)},
        f"normals_svd w{WINDOW}": {
            "numpy": lambda: normals_svd.normals_svd_numpy(s["depth"], s["intr"], WINDOW),
            "numba": lambda: normals_svd.normals_svd_numba(s["depth"], s["intr"], WINDOW)},
        f"normals_cross w{WINDOW}": {
            "numpy": lambda: normals_svd.normals_cross_numpy(s["depth"], s["intr"], WINDOW),
            "numba": lambda: normals_svd.normals_cross_numba(s["depth"], s["intr"], WINDOW)},
        "lut (semantic_mapper, binary_mask)": {
            "numpy": lambda: lookup.lut_numpy(s["classes"], s["lut"]),
            "numba": lambda: lookup.lut_numba(s["classes"], s["lut"])},
        "safe_landing (+classes)": {
            "numpy": lambda: safe_landing.safe_landing(s["normals"], (0, 1, 0), 30, s["classes"], s["table"],
                                                       backend="numpy"),
            "numba": lambda: safe_landing.safe_landing(s["normals"], (0, 1, 0), 30, s["classes"], s["table"],
                                                       backend="numba")},
        "normals_image": {"numpy": lambda: colormaps.normals_image_numpy(s["normals"][None]),
                          "numba": lambda: colormaps.normals_image_numba(s["normals"][None])},
    }


def cuda_cases(s: dict) -> dict[str, Callable[[], object]]:
    """kernel -> thunk on device arrays (inputs copied once, outputs left on the device, then synchronised)."""
    from numba import cuda

    d = {k: cuda.to_device(v) for k, v in s.items() if isinstance(v, np.ndarray)}

    def synced(fn: Callable[[], object]) -> Callable[[], object]:
        return lambda: (fn(), cuda.synchronize())

    return {
        "hsv": synced(lambda: hsv.hsv_cuda(d["rgb"])),
        "hsv to float16 (the stored form)": synced(lambda: hsv.hsv_cuda(d["rgb"], np.float16)),
        f"normals_svd w{WINDOW}": synced(lambda: normals_svd.normals_svd_cuda(d["depth"], s["intr"], WINDOW)),
        f"normals_cross w{WINDOW}": synced(lambda: normals_svd.normals_cross_cuda(d["depth"], s["intr"], WINDOW)),
        "lut (semantic_mapper, binary_mask)": synced(lambda: lookup.lut_cuda(d["classes"], s["lut"])),
        "safe_landing (+classes)": synced(lambda: safe_landing.safe_landing(d["normals"], (0, 1, 0), 30, d["classes"],
                                                                            s["table"], backend="cuda")),
    }


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: JIT compile / load from cache, first-touch allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def peak_mib(impl: str, depth: np.ndarray, intr: tuple) -> float:
    """Extra peak RSS of one normals_svd call, in a fresh process that holds nothing else."""
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        np.save(f.name, depth)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent
        code = ("import numpy as np; from vre_fast.kernels import normals_svd as n; "
                "hwm = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]); "
                f"d = np.load({f.name!r}); n.normals_svd_{impl}(d[:16, :16], {intr}, {WINDOW}); "
                f"before = hwm(); n.normals_svd_{impl}(d, {intr}, {WINDOW}); print((hwm() - before) / 1024)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def startup_seconds() -> tuple[float, float]:
    """Wall time of a fresh process that calls every CPU kernel once: with an empty JIT cache, then cached."""
    code = ("import numpy as np; from vre_fast.kernels import colormaps as c, hsv, lookup, normals_svd as n, "
            "safe_landing as s; d = np.ones((8, 8), np.float32); hsv.hsv_numba(np.zeros((8, 8, 3), np.uint8)); "
            "m = n.normals_svd_numba(d, (8., 8., 4., 4.), 3); n.normals_cross_numba(d, (8., 8., 4., 4.), 3); "
            "lookup.lut_numba(np.zeros((8, 8), np.uint8), np.zeros(4, np.uint8)); c.normals_image_numba(m); "
            "s.safe_landing(m, (0, 1, 0), 30, backend='numba')")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            times.append(time.perf_counter() - start)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="960x540,1920x1080")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"numba threads: {os.environ.get('NUMBA_NUM_THREADS', os.cpu_count())}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '<unset>')}")
    gpu = cuda_available()
    print(f"{'kernel':<36} {'size':>10} {'numpy ms':>10} {'numba ms':>10} {'speed-up':>9}"
          + (f" {'cuda ms':>10} {'speed-up':>9}" if gpu else "   (no CUDA device: no CUDA column)"))
    for size in args.sizes.split(","):
        w, h = map(int, size.split("x"))
        s = scene(h, w)
        on_gpu = cuda_cases(s) if gpu else {}
        for name, impls in cases(s).items():
            ref, fast = median_ms(impls["numpy"], args.repeats), median_ms(impls["numba"], args.repeats)
            row = f"{name:<36} {size:>10} {ref:>10.2f} {fast:>10.2f} {ref / fast:>8.1f}x"
            if name in on_gpu:
                dev = median_ms(on_gpu[name], args.repeats)
                row += f" {dev:>10.3f} {ref / dev:>8.1f}x"
            print(row)
    w, h = map(int, args.sizes.split(",")[0].split("x"))
    s = scene(h, w)
    cold, warm = startup_seconds()
    print(f"\nstart-up of a process calling every CPU kernel once: {cold:.1f} s with an empty JIT cache, "
          f"{warm:.1f} s cached")
    print(f"peak extra memory of one normals_svd call at {w}x{h}: "
          f"numpy {peak_mib('numpy', s['depth'], s['intr']):.0f} MiB, "
          f"numba {peak_mib('numba', s['depth'], s['intr']):.0f} MiB")


if __name__ == "__main__":
    main()
