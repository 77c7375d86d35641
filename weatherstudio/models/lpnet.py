"""LPNet: Lightweight Pyramid Networks for Image Deraining (Fu, Liang, Huang, Ding, Paisley; TNNLS 2019).

The rainy image is split into a 5-level Laplacian pyramid (paper eq. 1); each level is cleaned by a small
subnetwork (eqs. 2–5): a 3×3 conv + LeakyReLU(0.2) gives H_0, then T = 5 recursive blocks *sharing one set
of weights* (3×3 conv, 1×1 conv, 3×3 conv, each followed by LeakyReLU) each add H_0 back (the shortcut goes to
the first feature map, not to the block input), and a 1×1 conv to 3 channels plus the level's input gives
L_n(Y). The Gaussian pyramid of the result is rebuilt coarse to fine (eq. 6):
G_N(Y) = ReLU(L_N(Y)), G_n(Y) = ReLU(L_n(Y) + up(G_{n+1}(Y))). Feature widths 1/2/4/8/16 from coarse to
fine; 7,548 parameters. Training compares every G_n(Y) with the Gaussian pyramid of the clean image
(L1 on all levels + SSIM on the two finest, eq. 7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from weatherstudio.core.pyramid import gaussian_kernel, laplacian_pyramid, upsample
from weatherstudio.models.base import MapKind, MapSpec, ModelOutput, RestorationModel
from weatherstudio.models.registry import register


class LPNetSubnet(nn.Module):
    """One pyramid level's subnetwork (paper eqs. 2–4)."""

    def __init__(self, features: int, recursions: int, slope: float) -> None:
        super().__init__()
        self.recursions = recursions
        self.slope = slope
        self.conv0 = nn.Conv2d(3, features, 3, padding=1)
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 1)
        self.conv3 = nn.Conv2d(features, features, 3, padding=1)
        self.conv4 = nn.Conv2d(features, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = lambda t: F.leaky_relu(t, self.slope)  # noqa: E731
        h0 = act(self.conv0(x))
        h = h0
        for _ in range(self.recursions):
            h = act(self.conv3(act(self.conv2(act(self.conv1(h)))))) + h0
        return self.conv4(h) + x


@register(
    configs={
        "paper": {"levels": 5, "max_features": 16, "recursions": 5, "slope": 0.2},
        "lite": {"levels": 5, "max_features": 16, "recursions": 5, "slope": 0.2},
    },
    summary="LPNet (Fu et al., TNNLS 2019): Laplacian-pyramid deraining, 7,548 parameters",
)
class LPNet(RestorationModel):
    """LPNet; ``levels`` subnets with widths max_features/2**k, coarsest level first."""

    arch = "lpnet"
    task = "rain"
    default_tile = 512  # measured fastest on CPU (cache-sized activations), see benchmarks/speed.py
    size_congruence = 16  # 2**(levels − 1): the four stride-2 'SAME' steps depend on the size's parity

    def __init__(self, config: dict) -> None:
        super().__init__(config)
        self.levels = int(config["levels"])
        widths = [max(1, int(config["max_features"]) >> (self.levels - 1 - i)) for i in range(self.levels)]
        self.subnets = nn.ModuleList(LPNetSubnet(w, int(config["recursions"]), float(config["slope"])) for w in widths)
        self.register_buffer("kernel", gaussian_kernel(3), persistent=False)

    @property
    def receptive_field(self) -> int:
        # Per level: 1 + 5·2 three-by-three convs → 23 px; at level k that spans 23·2**k input pixels, and
        # each pyramid step adds the 5-tap kernel twice. The coarsest level dominates.
        coarse = 2 ** (self.levels - 1)
        return 23 * coarse + 8 * coarse

    @property
    def effective_context(self) -> int:
        """Context that matters in practice: beyond the two finest levels, contributions are smooth.

        With the resulting 32-pixel overlap, 512² tiles and the whole image differ by 0.007–0.014/255 on average
        and up to 3–9/255 at a few pixels (real rainy photos enlarged ×4, ``benchmarks/pyramid_split.py``). A CPU
        runtime avoids that by running the network as two graphs (:mod:`weatherstudio.models.lpnet_parts`).
        """
        return 64

    def map_specs(self) -> list[MapSpec]:
        specs = []
        n = self.levels
        for i in range(n):
            scale = 1.0 / 2 ** (n - 1 - i)
            coarse = i == 0
            specs.append(
                MapSpec(
                    name=f"input_level{i + 1}",
                    kind=MapKind.PYRAMID,
                    value_range=(0.0, 1.0) if coarse else (-0.5, 0.5),
                    channels=3,
                    description=(
                        "Gaussian low-pass of the input (coarsest level)"
                        if coarse
                        else f"Laplacian level {i + 1} of the input (band-pass detail, where streaks live)"
                    ),
                    scale=scale,
                    group="input pyramid",
                )
            )
        for i in range(n):
            specs.append(
                MapSpec(
                    name=f"output_level{i + 1}",
                    kind=MapKind.PYRAMID,
                    value_range=(0.0, 1.0),
                    channels=3,
                    description=f"Derained Gaussian level G_{i + 1}(Y) (paper eq. 6)",
                    scale=1.0 / 2 ** (n - 1 - i),
                    group="output pyramid",
                )
            )
        return specs

    def forward_pyramid(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The input's Laplacian levels and the output Gaussian levels, both coarsest first."""
        kernel = self.kernel.to(x.dtype)
        lap = laplacian_pyramid(x, self.levels, kernel)
        return lap, rebuild(lap, self.subnets, kernel)

    def coarse_levels(self, g1: torch.Tensor, largest: Callable | None = None) -> torch.Tensor:
        """G_1(Y) (eq. 6) from the input's first Gaussian level ``g1`` = down(x): every level but the finest.

        Those levels see only ``g1``: the Laplacian pyramid of x below its finest level is that of ``g1``.
        ``largest(subnet, level)``, where given, runs the largest of them (n = 1) in place of ``subnet(level)``.
        """
        kernel = self.kernel.to(g1.dtype)
        subnets: list[Callable] = list(self.subnets[:-1])
        if largest is not None:
            net = subnets[-1]
            subnets[-1] = lambda level: largest(net, level)
        return rebuild(laplacian_pyramid(g1, self.levels - 1, kernel), subnets, kernel)[-1]

    def finest_level(self, lap0: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """The output: ReLU(L_0(Y) + up(G_1(Y))) (eq. 6, n = 0) from the input's finest Laplacian level and
        ``base`` = up(G_1(Y)), clamped to [0, 1]."""
        return F.relu(self.subnets[-1](lap0) + base).clamp(0.0, 1.0)

    def pyramid_parts(self) -> tuple[RestorationModel, RestorationModel]:
        """The network as two graphs an engine can tile apart (:mod:`weatherstudio.models.lpnet_parts`); made once
        and kept (they share this network's parameters, so they follow its weights)."""
        parts = self.__dict__.get("_parts")
        if parts is None:
            from weatherstudio.models.lpnet_parts import LPNetCoarse, LPNetFinest

            coarse = LPNetCoarse(self)
            parts = (coarse, LPNetFinest(self, coarse))
            object.__setattr__(self, "_parts", parts)  # not submodules: no cycle in the module tree
        return parts

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:
        lap, outs = self.forward_pyramid(x)
        image = outs[-1].clamp(0.0, 1.0)
        if not return_maps:
            return ModelOutput(image)
        maps = {f"input_level{i + 1}": t for i, t in enumerate(lap)}
        maps.update({f"output_level{i + 1}": t for i, t in enumerate(outs)})
        return ModelOutput(image, maps)


def rebuild(lap: list[torch.Tensor], subnets: Sequence[Callable], kernel: torch.Tensor) -> list[torch.Tensor]:
    """The output Gaussian levels G_n(Y), coarsest first (eqs. 5–6): each level's subnet output plus the upsampled
    level below, through ReLU."""
    outs: list[torch.Tensor] = []
    for i, (level, net) in enumerate(zip(lap, subnets)):
        y = net(level)
        if i > 0:
            y = y + upsample(outs[-1], kernel, (level.shape[-2], level.shape[-1]))
        outs.append(F.relu(y))
    return outs
