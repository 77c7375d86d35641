"""DesnowNet: Context-Aware Deep Network for Snow Removal (Liu, Jaw, Huang, Hwang; IEEE TIP 2018).

A snowy image is modelled as ``x = a ⊙ z + y ⊙ (1 − z)`` (paper eq. 1): the clean image ``y`` seen through a
snow mask ``z`` whose particles have the colour ``a`` (the chromatic aberration map). The network has two
stages, each a *descriptor* followed by a *recovery* head:

* **Translucency recovery (TR).** Descriptor = an Inception-V4 trunk run at full resolution (every stride 1)
  followed by the dilation pyramid (eq. 3, γ = 4: five 3×3 convs with dilations 1, 2, 4, 8, 16, concatenated).
  Two pyramid-maxout heads (eq. 4, β = 4: 1×1, 3×3, 5×5, 7×7 convs, element-wise max, then PReLU) give the
  snow mask ẑ (1 channel, clamped to [0, 1]) and the aberration a (3 channels). Eq. 5 inverts eq. 1:
  ``y′ = (x − a·ẑ)/(1 − ẑ)`` where ẑ < 1, else ``x``.
* **Residual generation (RG).** A second, separate descriptor reads ``f_c = concat(y′, ẑ, a)`` (7 channels);
  a pyramid of the same four convs, *summed* (eq. 6) and squashed by tanh, gives the residual r, and
  ``ŷ = y′ + r`` (eq. 2).

The "paper" config is the factor-2 network of the seed's re-implementation: Inception-V4 with every width
halved (stem 3→16→16→32, Mixed 3a/4a/5a, 4× Inception-A, Reduction-A, 7× Inception-B, Reduction-B,
3× Inception-C → 768 channels), conv + BatchNorm(eps 1e-3) + ReLU units, Xavier-normal init; its dilation
pyramid maps the 768 channels to 5 × 192 = 960 (the seed's "384/f each, 1920/f total"). The "lite" config
is the same code with narrower widths and fewer blocks.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from weatherstudio.models.base import MapKind, MapSpec, ModelOutput, RestorationModel
from weatherstudio.models.blocks import Branches, ConvBNReLU, conv2d_by_phases, receptive_growth
from weatherstudio.models.registry import register


def recover_translucency(x: torch.Tensor, z_hat: torch.Tensor, a: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Paper eq. 5: ``y′ = (x − a·ẑ)/(1 − ẑ)`` where ẑ < 1, ``x`` where ẑ = 1; clamped to [0, 1].

    The denominator is floored at ``eps`` so that neither branch of the selection can produce inf/NaN
    (``torch.where`` back-propagates through both branches); ``ẑ`` is expected in [0, 1].
    """
    denom = (1.0 - z_hat).clamp_min(eps)
    y = torch.where(z_hat < 1.0, (x - a * z_hat) / denom, x)
    return y.clamp(0.0, 1.0)


class PoolProjection(nn.Sequential):
    """Inception-V4's pool branch: 3×3 average pool (stride 1, padding not counted), then a 1×1 conv + BN + ReLU.

    Both the pool and the bias-free 1×1 conv are linear and act on different axes (space, channels), so they
    commute; the conv runs first, and the pool then averages its few output channels instead of the block's
    many input channels (4–8× fewer here; the pool was a quarter of a DesnowNet training step). The children
    and their parameter names are those of ``Sequential(AvgPool2d, ConvBNReLU)``.
    """

    def __init__(self, cin: int, cout: int, bn_eps: float) -> None:
        super().__init__(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), ConvBNReLU(cin, cout, 1, bn_eps=bn_eps)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool, (conv, bn, relu) = self[0], self[1]
        return relu(bn(pool(conv(x))))


class InceptionV4Trunk(nn.Sequential):
    """Inception-V4's feature extractor (Szegedy et al., AAAI 2017) with every stride set to 1.

    Widths are the original ones times ``width`` (floored at ``min_channels``); ``blocks`` gives how many
    Inception-A, -B and -C blocks follow Mixed-5a, Reduction-A and Reduction-B. Reductions keep their
    branches but with stride-1, 'same'-padded convs and 3×3 stride-1 max-pools, so the output has the
    input's size. :attr:`out_channels` is the width of the last block.
    """

    def __init__(
        self, in_channels: int, width: float, blocks: tuple[int, int, int], min_channels: int = 4, bn_eps: float = 1e-3
    ) -> None:
        def w(c: int) -> int:
            return max(min_channels, int(round(c * width)))

        def conv(cin: int, cout: int, k: int | tuple[int, int]) -> ConvBNReLU:
            return ConvBNReLU(cin, cout, k, bn_eps=bn_eps)

        def seq(cin: int, spec: list[tuple[int, int | tuple[int, int]]]) -> nn.Sequential:
            layers = []
            for cout, k in spec:
                layers.append(conv(cin, cout, k))
                cin = cout
            return nn.Sequential(*layers)

        def maxpool() -> nn.MaxPool2d:
            return nn.MaxPool2d(3, stride=1, padding=1)

        def avgpool_1x1(cin: int, cout: int) -> PoolProjection:
            return PoolProjection(cin, cout, bn_eps)

        layers: list[nn.Module] = []
        # Stem: three 3×3 convs (32, 32, 64 in the original).
        layers.append(seq(in_channels, [(w(32), 3), (w(32), 3), (w(64), 3)]))
        c = w(64)
        # Mixed-3a: max-pool ‖ 3×3 conv to 96.
        layers.append(Branches([maxpool(), conv(c, w(96), 3)]))
        c = c + w(96)
        # Mixed-4a: 1×1→3×3 ‖ 1×1→1×7→7×1→3×3.
        layers.append(
            Branches(
                [
                    seq(c, [(w(64), 1), (w(96), 3)]),
                    seq(c, [(w(64), 1), (w(64), (1, 7)), (w(64), (7, 1)), (w(96), 3)]),
                ]
            )
        )
        c = 2 * w(96)
        # Mixed-5a: 3×3 conv to 192 ‖ max-pool.
        layers.append(Branches([conv(c, w(192), 3), maxpool()]))
        c = w(192) + c
        for _ in range(blocks[0]):  # Inception-A
            layers.append(
                Branches(
                    [
                        conv(c, w(96), 1),
                        seq(c, [(w(64), 1), (w(96), 3)]),
                        seq(c, [(w(64), 1), (w(96), 3), (w(96), 3)]),
                        avgpool_1x1(c, w(96)),
                    ]
                )
            )
            c = 4 * w(96)
        # Reduction-A: 3×3 to 384 ‖ 1×1→3×3→3×3 (192, 224, 256) ‖ max-pool.
        layers.append(Branches([conv(c, w(384), 3), seq(c, [(w(192), 1), (w(224), 3), (w(256), 3)]), maxpool()]))
        c = w(384) + w(256) + c
        for _ in range(blocks[1]):  # Inception-B
            layers.append(
                Branches(
                    [
                        conv(c, w(384), 1),
                        seq(c, [(w(192), 1), (w(224), (1, 7)), (w(256), (7, 1))]),
                        seq(c, [(w(192), 1), (w(192), (7, 1)), (w(224), (1, 7)), (w(224), (7, 1)), (w(256), (1, 7))]),
                        avgpool_1x1(c, w(128)),
                    ]
                )
            )
            c = w(384) + 2 * w(256) + w(128)
        # Reduction-B: 1×1→3×3 (192) ‖ 1×1→1×7→7×1→3×3 (256, 256, 320, 320) ‖ max-pool.
        layers.append(
            Branches(
                [
                    seq(c, [(w(192), 1), (w(192), 3)]),
                    seq(c, [(w(256), 1), (w(256), (1, 7)), (w(320), (7, 1)), (w(320), 3)]),
                    maxpool(),
                ]
            )
        )
        c = w(192) + w(320) + c
        for _ in range(blocks[2]):  # Inception-C
            layers.append(
                Branches(
                    [
                        conv(c, w(256), 1),
                        nn.Sequential(
                            conv(c, w(384), 1), Branches([conv(w(384), w(256), (1, 3)), conv(w(384), w(256), (3, 1))])
                        ),
                        nn.Sequential(
                            seq(c, [(w(384), 1), (w(448), (3, 1)), (w(512), (1, 3))]),
                            Branches([conv(w(512), w(256), (1, 3)), conv(w(512), w(256), (3, 1))]),
                        ),
                        avgpool_1x1(c, w(256)),
                    ]
                )
            )
            c = 6 * w(256)
        super().__init__(*layers)
        self.out_channels = c


class Descriptor(nn.Sequential):
    """Descriptor extraction (paper Sec. III-A, eq. 3): the full-resolution trunk then the dilation pyramid,
    ``γ+1`` parallel 3×3 convs with dilations ``2^0 … 2^γ`` whose outputs are concatenated."""

    def __init__(
        self,
        in_channels: int,
        width: float,
        blocks: tuple[int, int, int],
        dilations: list[int],
        dp_channels: int,
        min_channels: int,
        bn_eps: float,
    ) -> None:
        trunk = InceptionV4Trunk(in_channels, width, blocks, min_channels, bn_eps)
        pyramid = Branches(nn.Conv2d(trunk.out_channels, dp_channels, 3, padding=d, dilation=d) for d in dilations)
        super().__init__(trunk, pyramid)
        self.out_channels = dp_channels * len(dilations)


def pyramid_convs(cin: int, cout: int, kernels: list[int], mode: str) -> Branches:
    """The parallel 1×1, 3×3, … convs of the recovery heads, merged by ``max`` (eq. 4) or ``sum`` (eq. 6)."""
    return Branches((nn.Conv2d(cin, cout, k, padding=k // 2) for k in kernels), mode=mode)


def _padded_weight(conv: nn.Conv2d, size: int) -> torch.Tensor:
    """``conv``'s kernel with zeros around it to ``size``×``size`` (same sums, centred as its padding centres it)."""
    w = conv.weight
    p = (size - conv.kernel_size[0]) // 2
    if p == 0:
        return w
    rows = w.new_zeros(*w.shape[:2], p, w.shape[3])  # zero blocks concatenated, which an export folds to weights
    w = torch.cat([rows, w, rows], 2)
    cols = w.new_zeros(*w.shape[:3], p)
    return torch.cat([cols, w, cols], 3)


def pyramid_heads(x: torch.Tensor, heads: Sequence[Branches]) -> list[torch.Tensor]:
    """``[head(x) for head in heads]`` for pyramids of :func:`pyramid_convs` (eqs. 4 and 6), as one convolution.

    Every branch's kernel, zero-padded to the largest size, computes the same sums. A max head (eq. 4) keeps each
    branch as output channels of its own and takes their maximum after; a sum head (eq. 6) adds its kernels and
    biases first (a sum of convolutions of one input is one convolution). The heads' 1–3 output channels per
    branch leave a CPU's blocked kernels mostly idle: DesnowNet's two maxout heads as one 60→16-channel 7×7
    convolution ran 3.6× faster than their eight convolutions (torch, 512² tile, 2 threads); a head of fewer than
    8 channels in all (the residual's 3) runs by output phases (:func:`conv2d_by_phases`).
    """
    convs = [c for head in heads for c in head]
    if any(
        c.stride != (1, 1)
        or c.dilation != (1, 1)
        or c.groups != 1
        or c.padding_mode != "zeros"
        or c.kernel_size[0] != c.kernel_size[1]
        or c.padding != (c.kernel_size[0] // 2,) * 2
        for c in convs
    ):
        raise ValueError("pyramid_heads takes stride-1, undilated, ungrouped, zero 'same'-padded square convolutions")
    if any(head.mode not in ("max", "sum") for head in heads):
        raise ValueError("pyramid_heads merges heads by max or sum")
    size = max(c.kernel_size[0] for c in convs)
    weights, biases = [], []
    for head in heads:
        if head.mode == "sum":
            weights.append(functools.reduce(torch.add, [_padded_weight(c, size) for c in head]))
            biases.append(functools.reduce(torch.add, [c.bias for c in head]))
        else:
            weights += [_padded_weight(c, size) for c in head]
            biases += [c.bias for c in head]
    weight, bias = torch.cat(weights), torch.cat(biases)
    if weight.shape[0] < 8:  # a few output channels (the residual's 3): by output phases, 4× as many
        y = conv2d_by_phases(x, weight, bias, padding=size // 2)
    else:
        y = F.conv2d(x, weight, bias, padding=size // 2)
    outs, start = [], 0
    for head in heads:
        n = head[0].out_channels
        if head.mode == "sum":
            outs.append(y[:, start : start + n])
            start += n
            continue
        merged = y[:, start : start + n]
        for i in range(1, len(head)):
            merged = torch.maximum(merged, y[:, start + i * n : start + (i + 1) * n])
        outs.append(merged)
        start += n * len(head)
    return outs


def _config(width: float, blocks: list[int], dp_channels: int) -> dict[str, Any]:
    """A named config: trunk width and Inception-A/B/C counts, and the dilated convs' width, on top of what every
    config shares — the paper's dilation pyramid (γ = 4, eq. 3), head kernels (β = 4, eqs. 4 and 6), BatchNorm
    eps and the eq. 5 floor."""
    return {
        "width": width,
        "blocks": blocks,
        "dilations": [1, 2, 4, 8, 16],
        "dp_channels": dp_channels,
        "head_kernels": [1, 3, 5, 7],
        "min_channels": 4,
        "bn_eps": 1e-3,
        "recovery_eps": 1e-6,
    }


@register(
    configs={"paper": _config(0.5, [4, 7, 3], 192), "lite": _config(0.0625, [1, 1, 1], 12)},
    summary="DesnowNet (Liu et al., TIP 2018): translucency recovery + residual generation, with snow mask ẑ",
)
class DesnowNet(RestorationModel):
    """DesnowNet; see the module docstring. Config fields:

    ``width`` (multiplier on Inception-V4's widths), ``blocks`` (Inception-A/B/C counts), ``dilations``
    (the dilation pyramid), ``dp_channels`` (output channels of each dilated conv), ``head_kernels``
    (kernel sizes of the pyramid maxout / pyramid sum), ``min_channels`` (width floor), ``bn_eps``,
    ``recovery_eps`` (floor of 1 − ẑ in eq. 5).
    """

    arch = "desnownet"
    task = "snow"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        width = float(config["width"])
        blocks = tuple(int(b) for b in config["blocks"])
        if len(blocks) != 3:
            raise ValueError("blocks must give three counts: Inception-A, -B, -C")
        dilations = [int(d) for d in config["dilations"]]
        dp = int(config["dp_channels"])
        kernels = [int(k) for k in config["head_kernels"]]
        if any(k % 2 == 0 for k in kernels):
            raise ValueError("head_kernels must be odd")
        min_ch = int(config.get("min_channels", 4))
        bn_eps = float(config.get("bn_eps", 1e-3))
        self.recovery_eps = float(config.get("recovery_eps", 1e-6))
        # Every layer runs at full resolution: the paper config holds several 768–960-channel maps
        # (≈ 250 MB each in fp32 for a 256² tile), the lite one about a tenth of that.
        self.default_tile = int(config.get("default_tile", 256 if dp * len(dilations) > 256 else 512))

        # Translucency recovery: descriptor D_t, snow-mask extractor and aberration extractor (pyramid maxout).
        self.descriptor_t = Descriptor(3, width, blocks, dilations, dp, min_ch, bn_eps)
        ft = self.descriptor_t.out_channels
        self.snow_extractor = nn.Sequential(pyramid_convs(ft, 1, kernels, "max"), nn.PReLU(1))
        self.aberration_extractor = nn.Sequential(pyramid_convs(ft, 3, kernels, "max"), nn.PReLU(3))
        # Residual generation: a separate descriptor D_r on f_c = (y′, ẑ, a), then the pyramid sum + tanh.
        self.descriptor_r = Descriptor(7, width, blocks, dilations, dp, min_ch, bn_eps)
        self.residual_head = nn.Sequential(pyramid_convs(self.descriptor_r.out_channels, 3, kernels, "sum"), nn.Tanh())
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-normal convolution weights, zero biases (as the seed's port initialises them)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def scale_output_init(self, scale: float) -> None:
        """Multiply the initial weights of the three output heads (ẑ, a and r) by ``scale``.

        With a small scale the untrained network starts near the identity (ẑ ≈ 0 so y′ ≈ x by eq. 5, r ≈ 0),
        instead of a saturated tanh residual that training must first undo; a short run then converges from
        the input rather than from noise. The paper and its port use plain Xavier init (scale 1).
        """
        with torch.no_grad():
            for head in (self.snow_extractor, self.aberration_extractor, self.residual_head):
                for m in head.modules():
                    if isinstance(m, nn.Conv2d):
                        m.weight.mul_(scale)

    @property
    def receptive_field(self) -> int:
        """TR's context, then RG's on top of it (eq. 5 is point-wise): 1 + growth(TR) + growth(RG).

        Computed by walking the layers. BatchNorm uses its running statistics in eval mode, so at inference
        every output pixel depends on exactly this window.
        """
        tr = [receptive_growth(self.descriptor_t), receptive_growth(self.snow_extractor)]
        rg = [receptive_growth(self.descriptor_r), receptive_growth(self.residual_head)]
        tr_growth = (tr[0][0] + tr[1][0], tr[0][1] + tr[1][1])
        rg_growth = (rg[0][0] + rg[1][0], rg[0][1] + rg[1][1])
        return 1 + max(tr_growth[0] + rg_growth[0], tr_growth[1] + rg_growth[1])

    @property
    def size_multiple(self) -> int:
        return 1

    def map_specs(self) -> list[MapSpec]:
        return [
            MapSpec("z_hat", MapKind.MASK, (0.0, 1.0), 1, "snow mask ẑ: how opaque the snow is at each pixel (eq. 1)"),
            MapSpec(
                "aberration",
                MapKind.IMAGE,
                (0.0, 1.0),
                3,
                "chromatic aberration a: the colour of the snow (eq. 1); meaningful only where ẑ > 0, "
                "shown clamped to [0, 1], the range of a colour that mixes with y into an image in [0, 1]",
            ),
            MapSpec("y_prime", MapKind.IMAGE, (0.0, 1.0), 3, "y′: image with translucent snow removed (eq. 5)"),
            MapSpec("residual", MapKind.RESIDUAL, (-1.0, 1.0), 3, "residual r added by residual generation (eq. 6)"),
            MapSpec("y_hat", MapKind.IMAGE, (0.0, 1.0), 3, "ŷ = y′ + r, the restored image (eq. 2)"),
        ]

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """All intermediate tensors, unclamped where the loss needs gradients.

        Keys: ``z_raw`` (the snow extractor's output before the [0, 1] clamp — the loss compares this one so
        pixels outside [0, 1] still get a gradient), ``z_hat`` (clamped, used by eq. 5), ``aberration`` (a,
        unclamped), ``y_prime`` (eq. 5, clamped to [0, 1] as the network feeds it to RG), ``residual`` (r) and
        ``y_hat`` (y′ + r, not clamped).
        """
        f_t = self.descriptor_t(x)
        # both maxout heads read D_t: their eight convolutions run as one (pyramid_heads)
        z_pyramid, a_pyramid = pyramid_heads(f_t, [self.snow_extractor[0], self.aberration_extractor[0]])
        z_raw = self.snow_extractor[1](z_pyramid)
        z_hat = z_raw.clamp(0.0, 1.0)
        a = self.aberration_extractor[1](a_pyramid)
        y_prime = recover_translucency(x, z_hat, a, self.recovery_eps)
        f_c = torch.cat((y_prime, z_hat, a), dim=1)
        (r_pyramid,) = pyramid_heads(self.descriptor_r(f_c), [self.residual_head[0]])
        r = self.residual_head[1](r_pyramid)
        return {
            "z_raw": z_raw,
            "z_hat": z_hat,
            "aberration": a,
            "y_prime": y_prime,
            "residual": r,
            "y_hat": y_prime + r,
        }

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:
        out = self.forward_train(x)
        image = out["y_hat"].clamp(0.0, 1.0)
        if not return_maps:
            return ModelOutput(image)
        maps = {
            "z_hat": out["z_hat"],
            "aberration": out["aberration"].clamp(0.0, 1.0),
            "y_prime": out["y_prime"],
            "residual": out["residual"],
            "y_hat": image,
        }
        return ModelOutput(image, maps)
