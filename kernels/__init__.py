"""Compute kernels, one file per modality; they import nothing from the vre_fast runtime.

Each operation has a NumPy reference (`<op>_numpy`) that the fast paths (`<op>_numba` on the CPU,
`<op>_cuda` on device arrays) are tested against; `_dispatch` picks one by where the data lives.
"""

from . import colormaps, hsv, lookup, normals_svd, safe_landing

__all__ = ["colormaps", "hsv", "lookup", "normals_svd", "safe_landing"]
