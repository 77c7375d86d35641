"""PSNR and SSIM following the deraining papers' MATLAB protocol.

Both images are rounded to 8 bits; the score is taken on the Y channel of BT.601 YCbCr (MATLAB
``rgb2ycbcr``) or, labelled as such, on RGB. SSIM is Wang et al.'s (IEEE TIP 2004, eq. 13): 11×11 Gaussian
window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, over the 'valid' region of the window as MATLAB's
``ssim_index`` computes it, with no extra border crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from weatherstudio.core.color import quantize8, rgb_to_y

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_RADIUS = 5


def _gauss_valid(img: np.ndarray) -> np.ndarray:
    """Correlate with the 11×11 Gaussian (sigma 1.5) and keep the 'valid' part."""
    g = cv2.getGaussianKernel(2 * _RADIUS + 1, 1.5, cv2.CV_64F)
    out = cv2.sepFilter2D(img, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)
    return out[_RADIUS:-_RADIUS, _RADIUS:-_RADIUS]


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    if min(a.shape) < 2 * _RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least 11×11 pixels, got {a.shape[1]}×{a.shape[0]}")
    mu_a, mu_b = _gauss_valid(a), _gauss_valid(b)
    aa, bb, ab = _gauss_valid(a * a), _gauss_valid(b * b), _gauss_valid(a * b)
    va, vb, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a**2 + mu_b**2 + _C1) * (va + vb + _C2)
    return float(np.mean(num / den))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _prepare(restored: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if restored.shape != reference.shape:
        raise ValueError(f"image sizes differ: {restored.shape} vs {reference.shape}")
    return quantize8(restored), quantize8(reference)


def psnr_y(restored: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (dB) on the Y channel, both images rounded to 8 bits (RGB float in [0, 1])."""
    a, b = _prepare(restored, reference)
    return _psnr(rgb_to_y(a), rgb_to_y(b))


def ssim_y(restored: np.ndarray, reference: np.ndarray) -> float:
    a, b = _prepare(restored, reference)
    return _ssim_plane(rgb_to_y(a), rgb_to_y(b))


def psnr_rgb(restored: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (dB) over all three RGB channels in 8-bit units."""
    a, b = _prepare(restored, reference)
    return _psnr(a * 255.0, b * 255.0)


def ssim_rgb(restored: np.ndarray, reference: np.ndarray) -> float:
    """SSIM averaged over the R, G and B channels."""
    a, b = _prepare(restored, reference)
    return float(np.mean([_ssim_plane(a[..., c] * 255.0, b[..., c] * 255.0) for c in range(3)]))


def score_pair(restored: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """All four scores of one image pair."""
    return {
        "psnr_y": psnr_y(restored, reference),
        "ssim_y": ssim_y(restored, reference),
        "psnr_rgb": psnr_rgb(restored, reference),
        "ssim_rgb": ssim_rgb(restored, reference),
    }


def flicker(frames: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Temporal flicker of a clip: mean |Δ_t Y(out) − Δ_t Y(clean)| in 8-bit units, Δ_t the change from frame
    t − 1 to frame t (frames rounded to 8 bits, Y of BT.601 as for PSNR).

    The clean clip's own changes (the moving camera) cancel; what remains is change the restoration adds or
    fails to remove between frames: 0 for a perfect restoration, large for flickering streaks or a network
    that treats each frame differently. The rainy input's value is the baseline.
    """
    if len(frames) != len(reference):
        raise ValueError(f"{len(frames)} frames against {len(reference)} reference frames")
    if len(frames) < 2:
        return 0.0
    yo = [rgb_to_y(quantize8(f)) for f in frames]
    yc = [rgb_to_y(quantize8(f)) for f in reference]
    return float(np.mean([np.abs((yo[t] - yo[t - 1]) - (yc[t] - yc[t - 1])).mean() for t in range(1, len(yo))]))
