"""Runs every CUDA kernel against its NumPy reference on tiny inputs; exits non-zero on a mismatch.

Run by tests/test_kernels_cuda.py, on a real GPU when there is one, otherwise under numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1, set before numba is imported), which executes the same kernel
code thread by thread on the CPU.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from vre_fast.kernels import hsv, lookup, normals_svd, safe_landing


def main() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    np.testing.assert_allclose(hsv.rgb_to_hsv(cuda.to_device(rgb)).copy_to_host(), hsv.hsv_numpy(rgb), atol=1e-6)
    half = hsv.rgb_to_hsv(cuda.to_device(rgb), dtype=np.float16).copy_to_host()
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), hsv.hsv_numpy(rgb), atol=5e-4)  # float16 rounding

    h, w = 9, 12
    intr = normals_svd.intrinsics_from_fov(75, (3840, 2160), (w, h))
    depth = (5 + 0.02 * np.arange(w)[None] + 0.03 * np.arange(h)[:, None] + rng.normal(0, 1e-3, (h, w)))
    depth = depth.astype(np.float32)
    depth[2, 3], depth[6, 8] = 0, np.nan
    for method, reference, kwargs in (("svd", normals_svd.normals_svd_numpy, {"min_valid": 3}),
                                      ("cross", normals_svd.normals_cross_numpy, {})):
        ref = reference(depth, intr, 3, **kwargs)
        got = normals_svd.depth_to_normals(cuda.to_device(depth), intr, 3, method).copy_to_host()
        assert np.array_equal(np.any(got != 0, -1), np.any(ref != 0, -1)), method
        np.testing.assert_allclose(got, ref, atol=2e-3, err_msg=method)
        # subsampled and turned towards the camera where the depth lives, as on the host
        fine = np.repeat(np.repeat(depth, 2, 0), 2, 1)
        host = normals_svd.depth_to_normals(fine, intr, 3, method, step=2, flip=True)
        got = normals_svd.depth_to_normals(cuda.to_device(fine), intr, 3, method, step=2, flip=True).copy_to_host()
        np.testing.assert_allclose(got, host, atol=2e-3, err_msg=f"{method}, step 2, flipped")

    classes = rng.integers(0, 6, (2, 4, 5), dtype=np.uint8)
    table = rng.integers(0, 255, (6, 3), dtype=np.uint8)
    assert np.array_equal(lookup.apply_lut(cuda.to_device(classes), table).copy_to_host(), table[classes])
    probabilities = rng.random((2, 4, 5, 7)).astype(np.float32)
    probabilities[0, 0, 0, 2:4] = 2  # a tie: the lowest id wins
    assert np.array_equal(lookup.class_argmax(cuda.to_device(probabilities)).copy_to_host(),
                          lookup.argmax_numpy(probabilities))

    normals = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    safe_table = np.array([1, 0, 1, 1], np.uint8)
    for cls, tab in ((None, None), (classes, safe_table)):
        ref = safe_landing.safe_landing(normals, (0, 1, 0), 50, cls, tab, backend="numpy")
        d_cls = None if cls is None else cuda.to_device(cls)
        got = safe_landing.safe_landing(cuda.to_device(normals), (0, 1, 0), 50, d_cls, tab).copy_to_host()
        assert np.array_equal(got, ref)
    print("cuda kernels: all match their references")


if __name__ == "__main__":
    main()
