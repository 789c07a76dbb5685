"""Compute kernels, one file per modality; they import nothing from the vre_fast runtime.

Each operation has a NumPy reference (`<op>_numpy`) that fast paths are tested against.
"""

from . import colormaps, hsv, normals_svd

__all__ = ["colormaps", "hsv", "normals_svd"]
