"""Gaussian and Laplacian pyramids exactly as LPNet's authors build them (Fu et al., TNNLS 2019, Sec. III-A).

The kernel is the outer product of [.0625, .25, .375, .25, .0625], applied to each channel alone.
Downsampling is a stride-2 convolution with TensorFlow's 'SAME' padding (on an even size one row before
and two after); upsampling is the transposed convolution of that same operation with the kernel ×4, cut
back to the finer level's size. ``L_n = G_n − up(G_{n+1})`` (paper eq. 1).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_TAPS = (0.0625, 0.25, 0.375, 0.25, 0.0625)


def gaussian_kernel(
    channels: int, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The 5×5 binomial kernel as a depthwise weight of shape ``channels×1×5×5``."""
    taps = torch.tensor(_TAPS, dtype=torch.float64)
    k = torch.outer(taps, taps)
    k = (k / k.sum()).to(dtype=dtype or torch.float32, device=device)
    return k.expand(channels, 1, 5, 5).contiguous()


def same_padding(size: int, kernel: int = 5, stride: int = 2) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one dimension.

    Plain arithmetic, no ``max``: with ``kernel ≥ stride`` the total is never negative, and a traced size (an
    ONNX export) stays symbolic, so the exported graph pads by each input's own parity."""
    if kernel < stride:
        raise ValueError("same_padding needs kernel ≥ stride")
    out = (size + stride - 1) // stride  # ceil, on positive numbers only (an export's integer division truncates)
    total = (out - 1) * stride + kernel - size
    return total // 2, total - total // 2


def downsample(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Blur and decimate by 2 (TF ``conv2d(x, k, stride 2, 'SAME')``)."""
    top, bottom = same_padding(x.shape[-2])
    left, right = same_padding(x.shape[-1])
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, kernel.to(x.dtype), stride=2, groups=x.shape[1])


def upsample(x: torch.Tensor, kernel: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The adjoint of :func:`downsample` for an output of ``size``, with the kernel ×4.

    Equal to TF ``conv2d_transpose(x, 4k, output_shape=size, stride 2, 'SAME')``.
    """
    h, w = size
    top, _ = same_padding(h)
    left, _ = same_padding(w)
    full = F.conv_transpose2d(x, 4 * kernel.to(x.dtype), stride=2, groups=x.shape[1])
    # The transposed convolution covers (n−1)·2 + 5 samples; it may fall one short of the SAME extent.
    need_h, need_w = top + h - full.shape[-2], left + w - full.shape[-1]
    if need_h > 0 or need_w > 0:
        full = F.pad(full, (0, max(need_w, 0), 0, max(need_h, 0)))
    return full[..., top : top + h, left : left + w]


def laplacian_pyramid(x: torch.Tensor, levels: int, kernel: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The Laplacian pyramid, coarsest first: ``[G_{L-1}, L_{L-2}, ..., L_0]`` (``levels`` entries)."""
    if kernel is None:
        kernel = gaussian_kernel(x.shape[1], x.device, x.dtype)
    highs: list[torch.Tensor] = []
    cur = x
    for _ in range(levels - 1):
        low = downsample(cur, kernel)
        highs.append(cur - upsample(low, kernel, (cur.shape[-2], cur.shape[-1])))
        cur = low
    return [cur, *reversed(highs)]


def gaussian_pyramid(x: torch.Tensor, levels: int, kernel: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The Gaussian pyramid, coarsest first: ``[G_{L-1}, ..., G_0 = x]`` (``levels`` entries)."""
    if kernel is None:
        kernel = gaussian_kernel(x.shape[1], x.device, x.dtype)
    out = [x]
    for _ in range(levels - 1):
        out.append(downsample(out[-1], kernel))
    return out[::-1]


# --- The same two operations on H×W×C float32 arrays (OpenCV), for an engine that runs the pyramid outside the
# network: a 12 MP photo's downsample takes ~0.05 s here against ~0.5 s for torch's grouped convolution, and
# :func:`upsample_region_planes` gives any window of the upsampled image from a window of the coarse one, so a tile
# never needs the whole upsampled picture in memory.


def _taps(scale: float = 1.0) -> np.ndarray:
    return (np.asarray(_TAPS, np.float64) / sum(_TAPS) * scale).astype(np.float32)


def _filter(x: np.ndarray, scale: float) -> np.ndarray:
    """The separable 5-tap blur (each axis ×``scale``), zeros beyond the border, output sample i centred on input i."""
    import cv2

    k = _taps(scale)
    return cv2.sepFilter2D(x, cv2.CV_32F, k, k, borderType=cv2.BORDER_CONSTANT)


def downsample_array(x: np.ndarray) -> np.ndarray:
    """:func:`downsample` of an H×W×C float32 array: TF 'SAME' output sample i is centred on input 2i + 2 − pad_before
    (2i + 1 on an even size, 2i on an odd one), with zeros beyond the border."""
    h, w = x.shape[:2]
    oy, ox = 2 - same_padding(h)[0], 2 - same_padding(w)[0]
    return np.ascontiguousarray(_filter(np.ascontiguousarray(x, np.float32), 1.0)[oy::2, ox::2])


def upsample_region_planes(
    g: np.ndarray, size: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]
) -> np.ndarray:
    """Rows ``rows`` and columns ``cols`` (half-open) of :func:`upsample` (``g``: the coarse level as planes, C×h×w
    float32; ``size``: the fine level's height and width), as planes (C×rows×cols), computed from the coarse samples
    that reach them alone.

    Fine sample p of the transposed convolution is Σ_i g[i] · 4k[p + pad_before − 2i]; putting g[i] at
    2i + 2 − pad_before of a zero grid and blurring with 2k per axis gives the same sum (the kernel is symmetric).
    """
    axes = []
    for (lo, hi), n, m in zip((rows, cols), size, g.shape[1:3]):
        shift = 2 - same_padding(n)[0]  # fine position of coarse sample i: 2i + shift
        first = max(0, (lo - 2 - shift + 1) // 2)  # coarse samples within two fine samples of [lo, hi)
        last = min(m, (hi + 1 - shift) // 2 + 1)
        axes.append((lo, hi, 2 * first + shift - (lo - 2), first, last))
    (y0, y1, ry, gy0, gy1), (x0, x1, rx, gx0, gx1) = axes
    out = np.empty((g.shape[0], y1 - y0, x1 - x0), np.float32)
    # per plane: a zero grid spanning fine [lo − 2, hi + 2), coarse samples at their positions, blurred
    grid = np.zeros((y1 - y0 + 4, x1 - x0 + 4), np.float32)
    for c in range(g.shape[0]):
        if gy1 > gy0 and gx1 > gx0:
            grid[ry : ry + 2 * (gy1 - gy0) : 2, rx : rx + 2 * (gx1 - gx0) : 2] = g[c, gy0:gy1, gx0:gx1]
        out[c] = _filter(grid, 2.0)[2:-2, 2:-2]
    return out
