"""Compute kernels, one file per modality; they import nothing from the vre_fast runtime.

Each operation has a NumPy reference (`<op>_numpy`) that the fast paths (`<op>_numba` on the CPU,
`<op>_cuda` on device arrays) are tested against; `_dispatch` picks one by where the data lives.
"""

import os

# numba's OpenMP workers spin between parallel kernels by default, taking the cores that decode and
# writing threads need; sleeping costs a few microseconds per launch. Read when the OpenMP runtime starts
# (the first parallel kernel), so a user's own OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import colormaps, halftone, hsv, lookup, normals_svd, safe_landing, soft_segmentation  # noqa: E402

__all__ = ["colormaps", "halftone", "hsv", "lookup", "normals_svd", "safe_landing", "soft_segmentation"]
