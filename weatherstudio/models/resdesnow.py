"""Deep Residual Networks for Single Image De-snowing (Wan & Lee).

The network predicts the *snow residue* and adds it to the input (paper Sec. 2, Fig. 2):

* an inception module (Sec. 2.1, Fig. 3): 1×1, 3×3 and 5×5 convs with 32 filters each, concatenated, then a
  3×3 conv to 64 channels, to see snow particles of several sizes;
* an encoder of two stride-2 3×3 convs (64 → 128 → 256);
* nine residual blocks (Sec. 2.2, Fig. 4) of reflect-padded conv–InstanceNorm–ReLU–conv–InstanceNorm plus
  the skip — instance instead of batch normalisation, as the paper says;
* a decoder of two stride-½ (transposed, k3 s2 p1, output padding 1) convs 256 → 128 → 64;
* a reflect-padded 7×7 conv to the 3-channel residue; output = input + residue.

The paper does not give activations or the residue's range; this follows the ResNet image-to-image generator
it is built on (conv–IN–ReLU after each conv, tanh on the output layer, which also bounds the residue to
(−1, 1), the only range a difference of two [0, 1] images can take). The paper's loss is in
:mod:`weatherstudio.models.losses.resdesnow`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from weatherstudio.models.base import MapKind, MapSpec, ModelOutput, RestorationModel
from weatherstudio.models.blocks import (
    Branches,
    ResidualBlockIN,
    chain_receptive_field,
    conv2d_by_phases,
    pad_to_multiple,
)
from weatherstudio.models.registry import register


class InceptionModule(nn.Module):
    """Sec. 2.1: parallel 1×1, 3×3, 5×5 convs (+ReLU), concatenated, then a 3×3 conv + IN + ReLU."""

    def __init__(self, cin: int, branch: int, cout: int) -> None:
        super().__init__()
        self.branches = Branches(
            nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, branch, k), nn.ReLU(inplace=True))
            for k in (1, 3, 5)
        )
        self.fuse = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(3 * branch, cout, 3, bias=False),
            nn.InstanceNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.branches(x))


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.InstanceNorm2d(cout), nn.ReLU(True)
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=False),
        nn.InstanceNorm2d(cout),
        nn.ReLU(True),
    )


@register(
    configs={
        "paper": {"branch_channels": 32, "widths": [64, 128, 256], "res_blocks": 9},
        "lite": {"branch_channels": 8, "widths": [16, 32, 64], "res_blocks": 4},
    },
    summary="Residual de-snowing network (Wan & Lee): inception module + ResNet encoder/decoder, predicts the residue",
)
class ResDesnowNet(RestorationModel):
    """Residual de-snowing network; see the module docstring.

    Config fields: ``branch_channels`` (filters of each inception branch, 32 in the paper), ``widths``
    (inception output and the two encoder widths, 64/128/256), ``res_blocks`` (9).
    """

    arch = "resdesnow"
    task = "snow"
    # Instance normalisation uses whole-input statistics, so the fewer tiles the better; at 1024² the paper
    # config's largest activations are 64 ch × 1 M px (256 MB in fp32).
    default_tile = 1024

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        branch = int(config["branch_channels"])
        w0, w1, w2 = (int(c) for c in config["widths"])
        self.res_blocks = int(config["res_blocks"])
        self.inception = InceptionModule(3, branch, w0)
        self.encoder = nn.Sequential(_down(w0, w1), _down(w1, w2))
        self.body = nn.Sequential(*(ResidualBlockIN(w2) for _ in range(self.res_blocks)))
        self.decoder = nn.Sequential(_up(w2, w1), _up(w1, w0))
        self.to_residue = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(w0, 3, 7), nn.Tanh())
        # Start close to the identity: with PyTorch's default init the untrained residue saturates the tanh
        # (|r| ≈ 0.9); a tenth of it gives |r| ≈ 0.1 while every layer still gets a gradient.
        with torch.no_grad():
            self.to_residue[1].weight.mul_(0.1)
            self.to_residue[1].bias.mul_(0.1)

    @property
    def receptive_field(self) -> int:
        """Receptive field of the convolutions (169 px for nine blocks), computed from the layer chain.

        Instance normalisation takes its statistics over the whole image, so strictly every output pixel
        depends on every input pixel; tiles much larger than this window keep those statistics close to the
        whole image's.
        """
        chain = [(5, 1, False), (3, 1, False), (3, 2, False), (3, 2, False)]
        chain += [(3, 1, False)] * (2 * self.res_blocks)
        chain += [(3, 2, True), (3, 2, True), (7, 1, False)]
        return chain_receptive_field(chain)

    @property
    def size_multiple(self) -> int:
        return 4

    def map_specs(self) -> list[MapSpec]:
        return [
            MapSpec(
                "residue",
                MapKind.RESIDUAL,
                (-1.0, 1.0),
                3,
                "predicted snow residue, added to the input to give the snow-free image (Fig. 2)",
            )
        ]

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``residue`` and the unclamped ``y_hat = x + residue``, for the loss.

        Inputs of any size: reflect-padded to a multiple of 4 internally (and to at least 8, so the
        quarter-resolution body still has 2 pixels to reflect) and cropped back.
        """
        padded, (h, w) = pad_to_multiple(x, 4, min_size=8)
        feats = self.decoder(self.body(self.encoder(self.inception(padded))))
        pad, conv, squash = self.to_residue
        residue = squash(conv2d_by_phases(pad(feats), conv.weight, conv.bias))[..., :h, :w]  # to 3 channels: by phases
        return {"residue": residue, "y_hat": x + residue}

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:
        out = self.forward_train(x)
        image = out["y_hat"].clamp(0.0, 1.0)
        if not return_maps:
            return ModelOutput(image)
        return ModelOutput(image, {"residue": out["residue"]})
