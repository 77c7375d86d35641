"""How intermediate maps are stored in 16-bit image files: their value range mapped linearly onto 0…65535.

A sidecar JSON records the range so that ``value = lo + code / 65535 · (hi − lo)`` recovers the values
(exact to (hi − lo)/65535); the ``.npy`` beside it keeps them exactly.
"""

from __future__ import annotations

import numpy as np


def encode_u16(arr: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Map ``value_range`` linearly onto 0…65535 (values outside are clipped)."""
    lo, hi = value_range
    scaled = (np.asarray(arr, np.float64) - lo) * (65535.0 / max(hi - lo, 1e-12))
    return np.clip(np.rint(scaled), 0, 65535).astype(np.uint16)


def decode_u16(arr: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """The inverse of :func:`encode_u16`."""
    lo, hi = value_range
    return (arr.astype(np.float32) * np.float32((hi - lo) / 65535.0) + np.float32(lo)).astype(np.float32)
