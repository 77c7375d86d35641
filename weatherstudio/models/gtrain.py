"""GT-RAIN's modified ResNet: Not Just Streaks: Towards Ground Truth for Single Image Deraining (Ba, Zhang, Yang,
Suzuki, Pfahl, Chandrappa, de Melo, You, Soatto, Wong, Kadambi; ECCV 2022), as described in the seed's Sec. 3.2.

The input is mapped to [−1, 1]. Encoder: reflection-padded 7×7 conv 3→64 and 3×3 conv 64→64, then two
stride-2 3×3 convs 64→128→256. Nine deformable residual blocks at 256 channels, each two *modulated*
deformable 3×3 convs (DCNv2: an offset conv → 18 channels and a modulator conv → 9 channels, both initialised
to zero, mask = 2·sigmoid(modulator), so every block starts as a plain residual block), each followed by
batch norm, with LeakyReLU(0.1) between and the skip around. Decoder: two blocks of bilinear ×2 upsampling +
3×3 conv, concatenation with the encoder features at that scale (U-Net skip), another 3×3 conv. Output: 3×3
conv 64→3, tanh, mapped back by ·0.5 + 0.5. Batch norm, LeakyReLU(0.1) and reflection padding throughout;
weights N(0, 0.02). 12.9 M parameters in ``paper``.

The seed's own variant (Mish in the residual blocks, Kaiming initialisation) is ``activation="mish"``,
``init="kaiming"``. The rain-robust loss needs the 2×2 average-pooled output of the residual blocks (1,024-d in
``paper``): :meth:`GTRainNet.encode` and :meth:`GTRainNet.forward_train`.

Deformable convolutions use ``torchvision.ops.deform_conv2d`` when torchvision's compiled ops load (except
when training on a CPU, where its backward is slow), and otherwise an equivalent pure-PyTorch version
(bilinear sampling with ``grid_sample``, zeros outside the padded input, then one matrix product), so the
model runs wherever PyTorch does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from weatherstudio.models.base import MapKind, MapSpec, ModelOutput, RestorationModel
from weatherstudio.models.registry import register

# ----------------------------------------------------------------------------------- deformable convolution


@functools.cache
def _torchvision_deform() -> Callable[..., torch.Tensor] | None:
    """torchvision's ``deform_conv2d`` if its compiled ops load here (a CUDA build on a CPU torch does not)."""
    try:
        from torchvision.ops import deform_conv2d
    except Exception:  # ImportError, or RuntimeError/OSError from a mismatched binary
        return None
    return deform_conv2d


def deform_conv2d_torch(
    x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor
) -> torch.Tensor:
    """Modulated deformable convolution (DCNv2; Zhu et al., CVPR 2019, eq. 3), stride 1, no padding.

    ``offset`` is N×2K×Ho×Wo with (dy, dx) pairs per kernel tap k = i·kw + j (torchvision's layout), ``mask`` is
    N×K×Ho×Wo. Samples are bilinear with zeros outside ``x``, exactly as torchvision's kernel.
    """
    n, c, h, w = x.shape
    cout, _, kh, kw = weight.shape
    k = kh * kw
    ho, wo = h - kh + 1, w - kw + 1
    dt, dev = x.dtype, x.device
    ti, tj = torch.meshgrid(torch.arange(kh, device=dev), torch.arange(kw, device=dev), indexing="ij")
    base_y = torch.arange(ho, device=dev, dtype=dt).view(1, 1, ho, 1) + ti.reshape(1, k, 1, 1).to(dt)
    base_x = torch.arange(wo, device=dev, dtype=dt).view(1, 1, 1, wo) + tj.reshape(1, k, 1, 1).to(dt)
    off = offset.view(n, k, 2, ho, wo)
    py = base_y + off[:, :, 0]
    px = base_x + off[:, :, 1]
    # grid_sample with align_corners=True maps −1 and 1 to the centres of the first and last pixels.
    gx = px * (2.0 / (w - 1)) - 1.0  # w, h ≥ 3: the input is padded around a 3×3 kernel
    gy = py * (2.0 / (h - 1)) - 1.0
    grid = torch.stack([gx, gy], -1).view(n, k * ho, wo, 2)
    cols = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    cols = cols.view(n, c, k, ho, wo) * mask.view(n, 1, k, ho, wo)
    # (c·k) × (h·w) as sampled: one matrix product, no transpose of the samples (an einsum exported one: ~30 %
    # of GT-RAIN's time in OpenVINO)
    out = torch.matmul(weight.reshape(cout, c * k), cols.view(n, c * k, ho * wo)).view(n, cout, ho, wo)
    if bias is not None:
        out = out + bias.view(1, cout, 1, 1)
    return out


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    use_torchvision: bool | None = None,
) -> torch.Tensor:
    """Deformable conv (stride 1, no padding) with torchvision when available (``use_torchvision=None``).

    By default a CPU pass that builds a graph (training) uses the PyTorch version: torchvision's CPU backward
    is about 6× slower than autograd through :func:`deform_conv2d_torch`; so does an ONNX export.
    """
    auto_cpu_training = use_torchvision is None and x.device.type == "cpu" and torch.is_grad_enabled()
    exporting = torch.onnx.is_in_onnx_export()  # ONNX has GridSample everywhere, DeformConv in few runtimes
    tv = _torchvision_deform() if use_torchvision in (None, True) and not (auto_cpu_training or exporting) else None
    if use_torchvision and tv is None:
        raise RuntimeError("torchvision.ops.deform_conv2d is not available in this environment")
    if tv is not None:
        return tv(x, offset, weight, bias, mask=mask)
    return deform_conv2d_torch(x, offset, weight, bias, mask)


class DeformConv(nn.Module):
    """Reflection-padded modulated deformable 3×3 conv; offsets and modulator start at zero (mask = 1)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3)  # holds the weight and bias
        self.offset = nn.Conv2d(cin, 18, 3)
        self.modulator = nn.Conv2d(cin, 9, 3)
        self.zero_offsets()

    def zero_offsets(self) -> None:
        for m in (self.offset, self.modulator):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The output and the offsets (N×18×H×W, in pixels of this layer)."""
        xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
        offset = self.offset(xp)
        mask = 2.0 * torch.sigmoid(self.modulator(xp))
        return modulated_deform_conv2d(xp, offset, self.conv.weight, self.conv.bias, mask), offset


def _activation(name: str) -> nn.Module:
    if name == "lrelu":
        return nn.LeakyReLU(0.1)
    if name == "mish":
        return nn.Mish()
    raise ValueError(f"activation must be 'lrelu' or 'mish', not {name!r}")


class DeformResBlock(nn.Module):
    """x + BN(DConv(act(BN(DConv(x)))))."""

    def __init__(self, channels: int, activation: str) -> None:
        super().__init__()
        self.dconv1 = DeformConv(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = _activation(activation)
        self.dconv2 = DeformConv(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        y, o1 = self.dconv1(x)
        y, o2 = self.dconv2(self.act(self.bn1(y)))
        return x + self.bn2(y), [o1, o2]


def _conv_block(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Reflection pad, conv, batch norm, LeakyReLU(0.1)."""
    return nn.Sequential(
        nn.ReflectionPad2d(kernel // 2),
        nn.Conv2d(cin, cout, kernel, stride=stride),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.1),
    )


class UpBlock(nn.Module):
    """Bilinear ×2, 3×3 conv cin→cout, concatenation with the skip (cout channels), 3×3 conv 2·cout→cout."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = _conv_block(cin, cout)
        self.fuse = _conv_block(2 * cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([self.up(x), skip], 1))


# ------------------------------------------------------------------------------------------------- network


@register(
    configs={
        "paper": {"widths": [64, 128, 256], "blocks": 9, "activation": "lrelu", "init": "normal"},
        "lite": {"widths": [32, 64, 128], "blocks": 3, "activation": "lrelu", "init": "normal"},
    },
    summary="GT-RAIN modified ResNet (Ba et al., ECCV 2022): deformable residual blocks, rain-robust loss",
)
class GTRainNet(RestorationModel):
    """GT-RAIN's deformable ResNet with U-Net skips (see the module docstring)."""

    arch = "gtrain"
    task = "rain"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        c0, c1, c2 = (int(v) for v in config["widths"])
        self.widths = (c0, c1, c2)
        self.num_blocks = int(config["blocks"])
        self.stem = nn.Sequential(_conv_block(3, c0, 7), _conv_block(c0, c0))
        self.down1 = _conv_block(c0, c1, stride=2)
        self.down2 = _conv_block(c1, c2, stride=2)
        self.blocks = nn.ModuleList(DeformResBlock(c2, str(config["activation"])) for _ in range(self.num_blocks))
        self.up1 = UpBlock(c2, c1)
        self.up2 = UpBlock(c1, c0)
        self.out = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c0, 3, 3))
        self._init_weights(str(config["init"]))

    def _init_weights(self, scheme: str) -> None:
        if scheme not in ("normal", "kaiming"):
            raise ValueError(f"init must be 'normal' or 'kaiming', not {scheme!r}")
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if scheme == "normal":
                    nn.init.normal_(m.weight, 0.0, 0.02)
                else:
                    nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # offsets and modulators always start at zero
            if isinstance(m, DeformConv):
                m.zero_offsets()

    # ----------------------------------------------------------------------------------------- geometry
    @property
    def receptive_field(self) -> int:
        """Nominal field with zero offsets (learned offsets reach further): stem 3 + 1, downs 1 + 2, each
        deformable 3×3 conv (and its offset conv) 4 px at quarter scale, decoder 2 + 2 + 1 + 1, output 1."""
        radius = 3 + 1 + 1 + 2 + 2 * self.num_blocks * 4 + 2 + 2 + 1 + 1 + 1
        return 2 * radius + 1

    @property
    def size_multiple(self) -> int:
        return 4

    def map_specs(self) -> list[MapSpec]:
        return [
            MapSpec(
                "residual",
                MapKind.RESIDUAL,
                (-1.0, 1.0),
                3,
                "Output − input: what the network removed (rain, fog, accumulation) or added back",
            ),
            MapSpec(
                "offset_magnitude",
                MapKind.MAGNITUDE,
                (0.0, 16.0),
                1,
                "Mean length of the deformable convolutions' learned sampling offsets over all residual "
                "blocks, in input pixels (0 = a plain convolution)",
                units="px",
            ),
        ]

    # ------------------------------------------------------------------------------------------- network
    @staticmethod
    def _pad(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Pad bottom/right to a multiple of 4 and at least 8 (the quarter-scale reflection pads need 2 px).

        Arithmetic on the size for the usual case (≥ 8 px), so that an ONNX export pads each input by its own
        size; the tiny-image branch is eager only."""
        h, w = x.shape[-2:]
        if not torch.jit.is_tracing() and (h < 8 or w < 8):
            ph, pw = max(8, -(-h // 4) * 4) - h, max(8, -(-w // 4) * 4) - w
            mode = "reflect" if ph < h and pw < w else "replicate"
            return F.pad(x, (0, pw, 0, ph), mode=mode), h, w
        ph, pw = (4 - h % 4) % 4, (4 - w % 4) % 4
        if not torch.jit.is_tracing() and ph == 0 and pw == 0:
            return x, h, w
        return F.pad(x, (0, pw, 0, ph), mode="reflect"), h, w

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """From x in [−1, 1]: the two skips, the residual-block output and every block's offsets."""
        s0 = self.stem(x)
        s1 = self.down1(s0)
        f = self.down2(s1)
        offsets: list[torch.Tensor] = []
        for block in self.blocks:
            f, off = block(f)
            offsets.extend(off)
        return s0, s1, f, offsets

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], int, int]:
        """Restored image (cropped), residual-block features and offsets, for x in [0, 1]."""
        xp, h, w = self._pad(x)
        s0, s1, f, offsets = self._encode(xp * 2.0 - 1.0)
        y = self.up2(self.up1(f, s1), s0)
        image = torch.tanh(self.out(y)) * 0.5 + 0.5
        return image[..., :h, :w], f, offsets, h, w

    @staticmethod
    def pool_features(f: torch.Tensor) -> torch.Tensor:
        """The rain-robust loss's feature: 2×2 adaptive average pool, flattened (4·C, 1,024 in ``paper``)."""
        return F.adaptive_avg_pool2d(f, 2).flatten(1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled residual-block features (N×4C) of images in [0, 1], without running the decoder."""
        xp, _, _ = self._pad(x)
        return self.pool_features(self._encode(xp * 2.0 - 1.0)[2])

    def forward_train(self, rainy: torch.Tensor, clean: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training pass: ``image`` (restored rainy batch) and ``features`` (its pooled features); with
        ``clean``, both batches go through the network as one (shared batch-norm statistics, as the authors
        do) and ``features_clean`` is added for the rain-robust loss."""
        n = rainy.shape[0]
        x = rainy if clean is None else torch.cat([rainy, clean], 0)
        image, f, _, _, _ = self._run(x)
        feats = self.pool_features(f)
        out = {"image": image[:n], "features": feats[:n]}
        if clean is not None:
            out["features_clean"] = feats[n:]
        return out

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:
        image, _, offsets, h, w = self._run(x)
        if not return_maps:
            return ModelOutput(image)
        # Offset length per tap, averaged over the 9 taps and all deformable convs; ×4 for input pixels.
        mags = [o.view(o.shape[0], 9, 2, *o.shape[-2:]).norm(dim=2).mean(1, keepdim=True) for o in offsets]
        mag = torch.stack(mags, 0).mean(0) * 4.0
        size = (4 * mag.shape[-2], 4 * mag.shape[-1])  # the padded input's size
        mag = F.interpolate(mag, size=size, mode="bilinear", align_corners=False)[..., :h, :w].clamp_min(0.0)
        return ModelOutput(image, {"residual": image - x, "offset_magnitude": mag})
