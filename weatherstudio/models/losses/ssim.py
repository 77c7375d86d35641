"""Differentiable SSIM and MS-SSIM for training losses.

SSIM follows Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to structural
similarity" (TIP 2004), eq. 13: local means, variances and covariance are taken under an 11×11 Gaussian
window with σ = 1.5, computed per channel with *valid* filtering (no padding, as the authors' MATLAB code
does), with C1 = (0.01·L)², C2 = (0.03·L)² for a data range L.

MS-SSIM follows Wang, Simoncelli, Bovik, "Multi-scale structural similarity for image quality assessment"
(Asilomar 2003), eq. 7: the contrast-structure term cs_j at scales 1..M−1 and the full SSIM at the coarsest
scale M, combined as ∏ cs_j^{β_j} · ssim_M^{β_M} with the paper's weights
β = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); between scales the images are 2×2 average-pooled (an odd
last row or column is dropped).

Small images (training crops): five scales need the coarsest scale to be at least one window wide, i.e. a
smaller side ≥ 11·2⁴ = 176 px. On smaller images :func:`ms_ssim` uses as many scales as fit
(``M = 1 + ⌊log2(min_side / 11)⌋``, at most 5) and renormalises the first M weights to sum to 1; below one
window (min side < 11) both functions shrink the window to the largest odd size that fits, with the same σ.
So a 64×64 crop is scored on 3 scales, a 32×32 crop on 2, and nothing crashes.

The per-scale terms are averaged over the image first, clamped below at a small positive value (a negative
cs raised to a fractional power is undefined), then combined: the value is per image and channel, and the
reductions average those.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents β_j of MS-SSIM, finest first (Wang et al. 2003)."""

_EPS = 1e-6


def gaussian_window(
    size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``size`` taps (the 2-D window is its outer product)."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _fit_window(size: int, height: int, width: int) -> int:
    """The window actually used: ``size``, or the largest odd size ≤ the smaller image side."""
    side = min(height, width)
    if side >= size:
        return size
    return max(1, side - 1 if side % 2 == 0 else side)


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable valid Gaussian filtering of each channel of ``x`` (N×C×H×W)."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def _ssim_terms(
    x: torch.Tensor, y: torch.Tensor, data_range: float, window_size: int, sigma: float, k1: float, k2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel (N×C): the mean SSIM and the mean contrast-structure term (TIP 2004, eq. 13)."""
    size = _fit_window(window_size, x.shape[-2], x.shape[-1])
    g = gaussian_window(size, sigma, x.dtype, x.device)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    mu_x = _filter(x, g)
    mu_y = _filter(y, g)
    sxx = _filter(x * x, g) - mu_x * mu_x
    syy = _filter(y * y, g) - mu_y * mu_y
    sxy = _filter(x * y, g) - mu_x * mu_y
    cs_map = (2.0 * sxy + c2) / (sxx + syy + c2)
    lum_map = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return (lum_map * cs_map).mean(dim=(-2, -1)), cs_map.mean(dim=(-2, -1))


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"SSIM needs two N×C×H×W tensors of the same shape, got {tuple(x.shape)}, {tuple(y.shape)}")


def _reduce(v: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return v.mean()
    if reduction == "none":  # one value per image (mean over channels)
        return v.mean(dim=1)
    raise ValueError(f"reduction must be 'mean' or 'none', not {reduction!r}")


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: str = "mean",
) -> torch.Tensor:
    """Mean SSIM of ``x`` against ``y`` (N×C×H×W), each channel scored alone, then averaged.

    ``reduction="none"`` returns one value per image (N,).
    """
    _check(x, y)
    value, _ = _ssim_terms(x, y, data_range, window_size, sigma, k1, k2)
    return _reduce(value, reduction)


def ms_ssim_scales(height: int, width: int, window_size: int = 11, max_scales: int = 5) -> int:
    """How many MS-SSIM scales fit an image: the coarsest must still be one window wide (at least 1)."""
    side = min(height, width)
    if side < 2 * window_size:
        return 1
    return min(max_scales, 1 + int(math.floor(math.log2(side / window_size))))


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-scale SSIM (Asilomar 2003, eq. 7), with fewer scales on small images (see the module docstring)."""
    _check(x, y)
    scales = min(len(weights), ms_ssim_scales(x.shape[-2], x.shape[-1], window_size, len(weights)))
    w = torch.tensor(weights[:scales], dtype=x.dtype, device=x.device)
    w = w / w.sum()
    value = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
    for j in range(scales):
        s, cs = _ssim_terms(x, y, data_range, window_size, sigma, k1, k2)
        term = s if j == scales - 1 else cs
        value = value * term.clamp_min(_EPS) ** w[j]
        if j < scales - 1:
            x = F.avg_pool2d(x, 2)
            y = F.avg_pool2d(y, 2)
    return _reduce(value, reduction)


class SSIMLoss(nn.Module):
    """``1 − SSIM`` (``scale=0.5`` gives LPNet's ``(1 − SSIM)/2``)."""

    def __init__(self, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5, scale: float = 1.0) -> None:
        super().__init__()
        self.data_range, self.window_size, self.sigma, self.scale = data_range, window_size, sigma, scale

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.scale * (1.0 - ssim(x, y, self.data_range, self.window_size, self.sigma))


class MSSSIMLoss(nn.Module):
    """``1 − MS-SSIM``."""

    def __init__(self, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        self.data_range, self.window_size, self.sigma = data_range, window_size, sigma

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 1.0 - ms_ssim(x, y, self.data_range, self.window_size, self.sigma)
