"""Colour conversions with MATLAB's conventions (the deraining papers' evaluation protocol)."""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 as in MATLAB rgb2ycbcr for an RGB image in [0, 1]: Y in [16, 235].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], np.float64)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr(...)(:,:,1)`` for float RGB in [0, 1]; returns Y in [16, 235] as float64."""
    return 16.0 + np.asarray(rgb, np.float64) @ _Y_WEIGHTS


def quantize8(rgb: np.ndarray) -> np.ndarray:
    """Round a float image in [0, 1] to 8 bits and back to [0, 1] (how outputs are saved before scoring)."""
    return np.clip(np.round(np.asarray(rgb, np.float64) * 255.0), 0, 255) / 255.0
