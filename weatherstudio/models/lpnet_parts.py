"""LPNet as two graphs, so an engine can tile its levels apart (Fu et al., TNNLS 2019, eqs. 1 and 6).

The output is ReLU(L_0(Y) + up(G_1(Y))): the finest level's subnet applied to the input's finest Laplacian level
L_0 = x − up(down(x)), plus the upsampled G_1(Y) that the four coarser levels rebuild from down(x) alone.

* :class:`LPNetCoarse` takes down(x) (half size) and gives G_1(Y). Its levels have 1–8 feature maps: ~6 % of the
  multiply-adds, but they run several times below the machine's peak, so they are run once per photo at half size
  rather than again inside every full-size tile's overlap. Its largest level (n = 1, half size, 8 feature maps)
  runs as two half-height pieces stacked in the channels with block-diagonal weights (:func:`paired_subnet`):
  16 feature maps, the width CPU runtimes' blocked convolution kernels take (1.2–1.6× faster here), same sums.
* :class:`LPNetFinest` takes L_0 and up(G_1(Y)) stacked (6 channels) and gives the output. It is a plain stack of
  eleven 3×3 convolutions (conv0 and 2 per recursion; the 1×1s add no context), so an output pixel depends on
  exactly 11 pixels each side: tiles cut at the middle of a 22-pixel overlap give the whole image's output.

Both share the parent's parameters. Together they compute exactly what :class:`LPNet` computes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from weatherstudio.core.pyramid import downsample_array, upsample_region_planes
from weatherstudio.models.base import MapSpec, ModelOutput, RestorationModel
from weatherstudio.models.lpnet import LPNet, LPNetSubnet


class LPNetCoarse(RestorationModel):
    """LPNet's levels n = 1–4 from the half-size Gaussian level: down(x) → G_1(Y) (a level, not clipped)."""

    arch = "lpnet_coarse"
    task = "rain"
    clips_output = False
    default_tile = 512

    def __init__(self, parent: LPNet) -> None:
        super().__init__(parent.config)
        # a submodule, so that the part's state (and its exported graph's cache key) follows all of the parent's
        # weights, and placing the part places the network it runs
        self.parent = parent
        self.size_congruence = 2 ** (parent.levels - 2)  # three stride-2 'SAME' steps

    @property
    def receptive_field(self) -> int:
        return self.parent.receptive_field // 2

    @property
    def effective_context(self) -> int:
        # the parent's 64 full-size pixels, kept at this level's own scale: twice the parent's margin in the photo
        return self.parent.effective_context

    def map_specs(self) -> list[MapSpec]:
        return []

    def input_for(self, rgb: np.ndarray) -> np.ndarray:
        return downsample_array(rgb)

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:
        """:meth:`LPNet.coarse_levels`, its largest level through :func:`paired_subnet`."""
        return ModelOutput(self.parent.coarse_levels(x, largest=paired_subnet))


class LPNetFinest(RestorationModel):
    """LPNet's finest level: [L_0, up(G_1(Y))] (6 channels) → the restored image."""

    arch = "lpnet_finest"
    task = "rain"
    input_channels = 6
    tile_align = 2
    default_tile = 768  # as fast per pixel as 512 or 1,024 here; 1,024² tiles took ~0.35 GB more (two at once)

    def __init__(self, parent: LPNet, coarse: LPNetCoarse) -> None:
        super().__init__(parent.config)
        self.parent = parent
        object.__setattr__(self, "_coarse", coarse)  # not a submodule: its parameters are the parent's
        self.exact_context = 1 + 2 * int(parent.config["recursions"])

    @property
    def receptive_field(self) -> int:
        return 2 * self.exact_context + 1

    def map_specs(self) -> list[MapSpec]:
        return []

    def input_for(self, rgb: np.ndarray) -> np.ndarray:
        """The stacked input for a photo, its coarse levels run in torch."""
        h, w = rgb.shape[:2]
        g1 = downsample_array(rgb)
        with torch.inference_mode():
            g1_out = self._coarse(torch.from_numpy(g1.transpose(2, 0, 1).copy())[None]).image
        levels = half_size_levels(g1, g1_out[0].numpy().transpose(1, 2, 0))
        return finest_input(rgb, levels, (0, h), (0, w)).transpose(1, 2, 0)

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:
        return ModelOutput(self.parent.finest_level(x[:, :3], x[:, 3:]))


def finest_input(image: np.ndarray, levels: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """The window ``rows`` × ``cols`` of :class:`LPNetFinest`'s input, as planes (6×h×w): the photo's finest Laplacian
    level L_0 = x − up(G_1) and up(G_1(Y)), from ``image`` (H×W×3) and ``levels``: the whole photo's half-size G_1
    and G_1(Y) stacked as planes (6×h×w, :func:`half_size_levels`)."""
    planes = upsample_region_planes(levels, image.shape[:2], rows, cols)
    window = image[rows[0] : rows[1], cols[0] : cols[1]].transpose(2, 0, 1)
    np.subtract(window, planes[:3], out=planes[:3])
    return planes


def half_size_levels(g1: np.ndarray, g1_out: np.ndarray) -> np.ndarray:
    """G_1 and G_1(Y) (each h×w×3) as the 6 planes :func:`finest_input` reads."""
    return np.ascontiguousarray(np.concatenate([g1, g1_out], axis=2).transpose(2, 0, 1))


def _pair(conv: torch.nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``conv``'s weight twice along the diagonal of one twice as wide (and its bias twice)."""
    w = conv.weight
    out, inp = w.shape[:2]
    pair = w.new_zeros(2 * out, 2 * inp, *w.shape[2:])
    pair[:out, :inp] = w
    pair[out:, inp:] = w
    return pair, torch.cat([conv.bias, conv.bias])


def paired_subnet(net: LPNetSubnet, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` (eqs. 2–4) computed as two half-height pieces side by side in the channels.

    An output pixel of the subnet sees exactly 1 + 2T rows each side (T recursions), so the top piece (rows
    [0, ⌈h/2⌉ + 1 + 2T)) and the bottom piece (as many rows, ending at h) each give their half of the output
    exactly; stacked, they run through convolutions twice as wide whose weights are ``net``'s twice along the
    diagonal — the same sums, at a width CPU runtimes' blocked kernels take.
    """
    h = x.shape[-2]
    half = (h + 1) // 2
    n = half + 1 + 2 * net.recursions
    n = torch.clamp(torch.as_tensor(n), max=h) if torch.jit.is_tracing() else min(n, h)  # a traced size stays symbolic
    stacked = torch.cat([x[..., :n, :], x[..., h - n :, :]], 1)

    def conv(t: torch.Tensor, layer: torch.nn.Conv2d) -> torch.Tensor:
        return F.conv2d(t, *_pair(layer), padding=layer.padding)

    def act(t: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(t, net.slope)

    h0 = act(conv(stacked, net.conv0))
    feat = h0
    for _ in range(net.recursions):
        feat = act(conv(act(conv(act(conv(feat, net.conv1)), net.conv2)), net.conv3)) + h0
    y = conv(feat, net.conv4) + stacked
    c = x.shape[1]
    return torch.cat([y[:, :c, :half], y[:, c:, n - (h - half) :]], 2)
