"""float32 -> float16 rounding on bit patterns, for numba CPU kernels that store float16 directly.

numba has no float16 type on the CPU; this is NumPy's own rounding (`npy_floatbits_to_halfbits`: to
nearest, ties to even, overflow to infinity, subnormals, NaN kept NaN), so a kernel using it writes
exactly what `astype(np.float16)` of its float32 result would.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["half_bits"]


@njit(inline="always")
def half_bits(f: np.uint32) -> np.uint16:
    """The float16 bit pattern nearest to the float32 whose bit pattern is `f`."""
    sign = np.uint32((f & np.uint32(0x80000000)) >> np.uint32(16))
    exp = f & np.uint32(0x7F800000)
    if exp >= np.uint32(0x47800000):  # overflow, infinity or NaN
        sig = f & np.uint32(0x007FFFFF)
        if exp == np.uint32(0x7F800000) and sig != 0:
            nan = np.uint32(0x7C00) + (sig >> np.uint32(13))
            return np.uint16(sign + (nan if nan != np.uint32(0x7C00) else np.uint32(0x7C01)))
        return np.uint16(sign + np.uint32(0x7C00))
    if exp <= np.uint32(0x38000000):  # a float16 subnormal, or zero
        if exp < np.uint32(0x33000000):
            return np.uint16(sign)
        sig = (np.uint32(0x00800000) + (f & np.uint32(0x007FFFFF))) >> (np.uint32(113) - (exp >> np.uint32(23)))
        if (sig & np.uint32(0x3FFF)) != np.uint32(0x1000) or (f & np.uint32(0x7FF)) != 0:
            sig += np.uint32(0x1000)
        return np.uint16(sign + (sig >> np.uint32(13)))
    sig = f & np.uint32(0x007FFFFF)
    if (sig & np.uint32(0x3FFF)) != np.uint32(0x1000):
        sig += np.uint32(0x1000)
    # a carry out of the significand bumps the exponent: the right result, up to infinity
    return np.uint16((sign + ((exp - np.uint32(0x38000000)) >> np.uint32(13)) + (sig >> np.uint32(13))) & 0xFFFF)
