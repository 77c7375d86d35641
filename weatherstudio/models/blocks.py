"""Building blocks shared by WeatherStudio's networks, and receptive-field bookkeeping.

Every block here is a plain ``nn.Module``. :func:`receptive_growth` walks a stride-1 module tree and adds
up how many pixels of context it needs (per axis), so a network's ``receptive_field`` is computed from its
actual layers instead of being typed in by hand.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

Size2 = int | tuple[int, int]


def _pair(v: Size2) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) + BatchNorm + ReLU, 'same' padding, stride 1 — Inception-V4's basic unit."""

    def __init__(self, cin: int, cout: int, kernel: Size2, dilation: int = 1, bn_eps: float = 1e-3) -> None:
        kh, kw = _pair(kernel)
        padding = ((kh - 1) // 2 * dilation, (kw - 1) // 2 * dilation)
        super().__init__(
            nn.Conv2d(cin, cout, (kh, kw), padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout, eps=bn_eps),
            nn.ReLU(inplace=True),
        )


class Branches(nn.ModuleList):
    """Run every branch on the same input and merge the results.

    ``mode``: ``"cat"`` concatenates along channels (an Inception block), ``"max"`` takes the element-wise
    maximum (DesnowNet's pyramid maxout, eq. 4), ``"sum"`` adds them (DesnowNet's RG recovery, eq. 6).
    """

    def __init__(self, branches: Iterable[nn.Module], mode: str = "cat") -> None:
        super().__init__(branches)
        if mode not in ("cat", "max", "sum"):
            raise ValueError(f"unknown merge mode {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self]
        if self.mode == "cat":
            return torch.cat(outs, dim=1)
        merged = outs[0]
        for out in outs[1:]:
            merged = torch.maximum(merged, out) if self.mode == "max" else merged + out
        return merged

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


_POINTWISE = (
    nn.BatchNorm2d,
    nn.InstanceNorm2d,
    nn.ReLU,
    nn.PReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.Dropout,
)


def conv2d_by_phases(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, padding: int = 0
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1, zero padding) as one stride-2 convolution giving its
    2×2 output phases as 4× the channels, then put back in place (``pixel_shuffle``).

    Phase (p, q) of the output is the kernel shifted by (p, q) inside a kernel one larger, applied every second
    pixel: the same sums. A convolution to 1–3 channels leaves a CPU's blocked kernels (16 channels wide) mostly
    idle; with 4× the channels at a quarter of the pixels resdesnow's final 16→3 7×7 convolution ran 2.2× faster
    (torch, 512², 2 threads).
    """
    cout, cin, kh, kw = weight.shape
    out_h, out_w = x.shape[-2] + 2 * padding - kh + 1, x.shape[-1] + 2 * padding - kw + 1
    # an odd output gets one more row/column, cropped below
    x = F.pad(x, (padding, padding + out_w % 2, padding, padding + out_h % 2))
    row, col = weight.new_zeros(cout, cin, 1, kw), weight.new_zeros(cout, cin, kh + 1, 1)
    blocks = []
    for p in range(2):  # the kernel shifted by (p, q): zero blocks concatenated, which an export folds to weights
        shifted = torch.cat([row, weight] if p else [weight, row], 2)
        blocks += [torch.cat([col, shifted] if q else [shifted, col], 3) for q in range(2)]
    phased = torch.stack(blocks, 1).reshape(4 * cout, cin, kh + 1, kw + 1)  # channel o·4 + p·2 + q
    bias = None if bias is None else bias.repeat_interleave(4)
    phases = F.conv2d(x, phased, bias, stride=2)
    return F.pixel_shuffle(phases, 2)[..., :out_h, :out_w]


def receptive_growth(module: nn.Module) -> tuple[int, int]:
    """Extra pixels of context (height, width) a stride-1 module tree needs: receptive field − 1.

    Convolutions and pools add ``(kernel − 1)·dilation``; a :class:`nn.Sequential` adds its children's
    growths; :class:`Branches` takes the per-axis maximum; point-wise layers add nothing. Any other module
    (or a stride other than 1) raises, so that a receptive field is never silently wrong.
    """
    if isinstance(module, nn.Conv2d):
        if _pair(module.stride) != (1, 1):
            raise ValueError("receptive_growth only handles stride-1 convolutions")
        (kh, kw), (dh, dw) = _pair(module.kernel_size), _pair(module.dilation)
        return (kh - 1) * dh, (kw - 1) * dw
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        stride = module.stride if module.stride is not None else module.kernel_size
        if _pair(stride) != (1, 1):
            raise ValueError("receptive_growth only handles stride-1 pools")
        kh, kw = _pair(module.kernel_size)
        return kh - 1, kw - 1
    if isinstance(module, Branches):
        growths = [receptive_growth(b) for b in module]
        return max(g[0] for g in growths), max(g[1] for g in growths)
    if isinstance(module, nn.Sequential):
        h = w = 0
        for child in module:
            gh, gw = receptive_growth(child)
            h, w = h + gh, w + gw
        return h, w
    if isinstance(module, _POINTWISE):
        return 0, 0
    raise TypeError(f"receptive_growth does not know {type(module).__name__}")


def chain_receptive_field(layers: Iterable[tuple[int, int, bool]]) -> int:
    """Receptive field (pixels, one axis) of a chain of ``(kernel, stride, transposed)`` layers.

    A convolution adds ``(k − 1)·j`` input pixels and multiplies the jump ``j`` by its stride; a transposed
    convolution with stride ``s`` reads at most ``ceil(k / s)`` coarse positions, adding ``(ceil(k/s) − 1)·j``
    and dividing the jump by ``s``. Dilated kernels should be passed with their effective size.
    """
    rf, jump = 1.0, 1.0
    for kernel, stride, transposed in layers:
        if transposed:
            rf += (-(-kernel // stride) - 1) * jump
            jump /= stride
        else:
            rf += (kernel - 1) * jump
            jump *= stride
    return int(round(rf))


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 1) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right to a multiple of ``multiple`` (and at least ``min_size``) by reflection, or by
    replication where the image is too small to reflect.

    Returns the padded tensor and the original ``(H, W)`` to crop back to.
    """
    h, w = x.shape[-2:]
    ph, pw = max(h, min_size) - h, max(w, min_size) - w
    ph, pw = ph + (-(h + ph)) % multiple, pw + (-(w + pw)) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


class ResidualBlockIN(nn.Module):
    """Residual block of the ResNet image-to-image generator: reflect-pad, 3×3 conv, IN, ReLU, reflect-pad,
    3×3 conv, IN, plus the skip. The convs have no bias because instance normalisation removes it anyway."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
