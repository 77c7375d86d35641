"""Gaussian and Laplacian pyramids exactly as LPNet's authors build them (Fu et al., TNNLS 2019, Sec. III-A).

The kernel is the outer product of [.0625, .25, .375, .25, .0625], applied to each channel alone.
Downsampling is a stride-2 convolution with TensorFlow's 'SAME' padding (on an even size one row before
and two after); upsampling is the transposed convolution of that same operation with the kernel ×4, cut
back to the finer level's size. ``L_n = G_n − up(G_{n+1})`` (paper eq. 1).
"""

from __future__ import annotations

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
