"""RGB -> HSV with every channel in [0, 1] (hue as a fraction of the turn), as VRE defines it."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["hsv_numpy", "hsv_opencv"]


def hsv_numpy(rgb: np.ndarray) -> np.ndarray:
    """Reference: the textbook hexcone formula in float64, returned as float32."""
    x = rgb.astype(np.float64) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(axis=-1)
    delta = v - x.min(axis=-1)
    safe = np.where(delta > 0, delta, 1.0)
    s = np.where(v > 0, delta / np.where(v > 0, v, 1.0), 0.0)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], axis=-1).astype(np.float32)


def hsv_opencv(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's float path (hue in degrees) rescaled; agrees with `hsv_numpy` to 1e-5."""
    flat = rgb.reshape(-1, *rgb.shape[-3:]) if rgb.ndim == 4 else rgb[None]
    out = np.empty(flat.shape, np.float32)
    for i, frame in enumerate(flat):
        hsv = cv2.cvtColor(frame.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2HSV)
        hsv[..., 0] *= np.float32(1 / 360)
        hsv[..., 0][hsv[..., 0] >= 1] -= 1
        out[i] = hsv
    return out.reshape(rgb.shape)
