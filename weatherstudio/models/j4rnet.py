"""J4R-Net: Erase or Fill? Deep Joint Recurrent Rain Removal and Reconstruction in Videos (Liu, Yang, Yang, Guo;
CVPR 2018).

The paper's hybrid rain model: ``O_t = (1 − α_t)(B_t + S_t) + α_t·A_t``. Where the streaks are thin
(α = 0) the background is *erased* out of the frame, ``B̂ = O − Ŝ``; where they occlude it (α = 1) the frame
holds nothing of B and the background is *filled* from what earlier frames saw. Per frame:

* **CNN** — conv 3×3 + residual blocks give the features F_t.
* **D-Net** (degradation classification) — from [F_t, H_{t−1}] gives two-class logits f^d_{t,2};
  α_t = softmax(f^d)₁ = sigmoid(f₁ − f₀). Its hidden features with the two class probabilities are the
  degradation features d_t that feed the gates (f^d_{t,4} of the paper).
* **F-Net** (fusion) — a convolutional GRU:
  z = σ(W_z F + U_z H + V_z d), r = ReLU(W_r F + U_r H + V_r d) (a ReLU read gate, as the authors use),
  H̃ = tanh(W_h F + U_h (r ⊙ H_{t−1})), H_t = (1 − z) H_{t−1} + z H̃.
* **R-Net** (rain removal) — residual blocks on F_t estimate the streak layer Ŝ_t.
* **C-Net** (reconstruction) — residual blocks on the memory H_t estimate the background B̂ᶜ_t from temporal
  redundancy (a residual on O_t, so the net only learns what to fill in).
* **JRC-Net** (joint) — B̂_t = (1 − α)(O − Ŝ) + α·B̂ᶜ + Δ, where Δ is a correction from residual blocks on
  the R-Net and C-Net features and α: the paper's two cases made one differentiable blend, plus what the
  blend misses.

Residual blocks are two 3×3 convs with a ReLU between, merged as 0.5·x + 0.5·f (authors' release).

Colour: the authors run on luminance (Y of YCbCr) and paste the input's chroma back. This port works in RGB:
the app restores colour photos and video and its synthetic rain is RGB; recombining a derained Y with the
rainy chroma carries faint coloured streaks and the occluded regions' chroma (which the fill path is
supposed to replace) straight through; and the extra cost is only the first and last convolutions.

Streak layer Ŝ is *signed* (a linear conv, RESIDUAL map): physically S ≥ 0, but the synthetic target after
clipping O to [0, 1] is O − B there, which is below S where B + S saturates, and a ReLU/sigmoid output has a
dead or vanishing gradient at 0 where most pixels sit; a signed layer also shows where the net darkens.

State: the model carries the GRU memory H (N×C×H×W) across calls of :meth:`forward`. Training uses clips of
``clip_length`` frames, each started from H = 0, so starting from zeros ``clip_length − 1`` frames before the
frame wanted reproduces exactly what the net was trained on: that is :attr:`warmup_frames` (8 for the
paper's 9-frame clips, 4 for 5-frame lite clips). Older frames reach H_t only through the product of
(1 − z) over the steps between, which for gate values around ½ is 6 % after 4 steps and below 1 % after 8.
The engine warps H along the optical flow to each new frame (:meth:`align_state`), our addition: the paper's
net fuses H_{t−1} where it lies, so a moving camera leaves ghost copies of edges.

Sizes: ``paper`` follows the authors' deploy files (64 channels, a 4-block per-frame encoder) with one or two
blocks per sub-net, 1.30 M parameters (their released single-path "practical" model has 0.40 M); ``lite`` has
32 channels and one block per sub-net, 0.24 M, meant for 64×64 × 5-frame clips on a CPU.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from weatherstudio.models.base import MapKind, MapSpec, ModelOutput, RestorationModel
from weatherstudio.models.blocks import conv2d_by_phases
from weatherstudio.models.registry import register


def _conv(cin: int, cout: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


def _conv_part(conv: nn.Conv2d, x: torch.Tensor, *spans: tuple[int, int], outputs: int | None = None) -> torch.Tensor:
    """The first ``outputs`` channels (all: None) of ``conv`` on its input with every channel outside ``spans``
    zero, given only the channels inside them (``x``: those channels, in order): the zero channels' weights are
    left out of the sum."""
    weight = torch.cat([conv.weight[:outputs, a:b] for a, b in spans], 1)
    bias = None if conv.bias is None else conv.bias[:outputs]
    return F.conv2d(x, weight, bias, padding=conv.padding)


def _to_few(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a 3×3 'same' convolution to 2–3 channels, by output phases (:func:`conv2d_by_phases`: the
    four such layers took ~7 % of a 512² tile in OpenVINO, their blocked kernels 16 channels wide)."""
    return conv2d_by_phases(x, conv.weight, conv.bias, padding=1)


class ResBlock(nn.Module):
    """Two 3×3 convs with a ReLU between, merged as 0.5·x + 0.5·f (the authors' residual unit)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels)
        self.conv2 = _conv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x + 0.5 * self.conv2(F.relu(self.conv1(x)))


def _blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(channels) for _ in range(count)))


@register(
    configs={
        "paper": {
            "channels": 64,
            "encoder_blocks": 4,
            "detect_blocks": 1,
            "removal_blocks": 2,
            "reconstruct_blocks": 2,
            "joint_blocks": 2,
            "clip_length": 9,
        },
        "lite": {
            "channels": 32,
            "encoder_blocks": 2,
            "detect_blocks": 1,
            "removal_blocks": 1,
            "reconstruct_blocks": 1,
            "joint_blocks": 1,
            "clip_length": 5,
        },
    },
    summary="J4R-Net (Liu et al., CVPR 2018): recurrent video deraining, erase streaks or fill occlusions (RGB)",
)
class J4RNet(RestorationModel):
    """J4R-Net on RGB frames; stateful across :meth:`forward` calls (see the module docstring)."""

    arch = "j4rnet"
    task = "rain"
    temporal = True

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        c = int(config["channels"])
        self.channels = c
        self.clip_length = int(config["clip_length"])
        self._counts = {
            k: int(config[k])
            for k in ("encoder_blocks", "detect_blocks", "removal_blocks", "reconstruct_blocks", "joint_blocks")
        }
        # CNN: per-frame features F_t.
        self.head = _conv(3, c)
        self.encoder = _blocks(c, self._counts["encoder_blocks"])
        # D-Net: degradation classification from [F_t, H_{t−1}].
        self.detect_in = _conv(2 * c, c)
        self.detect = _blocks(c, self._counts["detect_blocks"])
        self.detect_cls = _conv(c, 2)
        # F-Net: convolutional GRU; one conv over [F, H, d] computes W·F + U·H + V·d for both gates.
        self.gates = _conv(c + c + c + 2, 2 * c)
        self.cand_x = _conv(c, c)  # W_h
        self.cand_h = _conv(c, c, bias=False)  # U_h
        # R-Net: streak layer from F_t.
        self.removal = _blocks(c, self._counts["removal_blocks"])
        self.removal_out = _conv(c, 3)
        # C-Net: reconstruction from the memory H_t.
        self.recon_in = _conv(c, c)
        self.recon = _blocks(c, self._counts["reconstruct_blocks"])
        self.recon_out = _conv(c, 3)
        # JRC-Net: joint estimate from both paths and α.
        self.joint_in = _conv(2 * c + 1, c)
        self.joint = _blocks(c, self._counts["joint_blocks"])
        self.joint_out = _conv(c, 3)
        self._state: torch.Tensor | None = None

    # ----------------------------------------------------------------------------------------- geometry
    def _radii(self) -> tuple[int, int]:
        """(per-frame radius from zero memory, growth of the memory's radius per frame) in pixels."""
        n = self._counts
        feat = 1 + 2 * n["encoder_blocks"]
        hidden_d = feat + 1 + 2 * n["detect_blocks"]
        degr = hidden_d + 1
        memory = degr + 2  # gates, then the candidate
        streaks = feat + 2 * n["removal_blocks"] + 1
        recon_hidden = memory + 1 + 2 * n["reconstruct_blocks"]
        joint = max(feat + 2 * n["removal_blocks"], recon_hidden, degr) + 2 + 2 * n["joint_blocks"]
        growth = 4 + 2 * n["detect_blocks"]  # H_{t−1} → D-Net → gates → candidate → H_t
        return max(streaks, recon_hidden + 1, joint), growth

    @property
    def receptive_field(self) -> int:
        """Full width of the context one output pixel depends on, counting the warm-up frames' memory."""
        radius, growth = self._radii()
        return 2 * (radius + growth * self.warmup_frames) + 1

    @property
    def effective_context(self) -> int:
        """Context that matters in practice: one frame's field plus two frames of memory growth (older memory
        is weighted by products of (1 − z) and fades)."""
        radius, growth = self._radii()
        return 2 * (radius + 2 * growth) + 1

    @property
    def size_multiple(self) -> int:
        return 1

    @property
    def warmup_frames(self) -> int:
        return max(0, self.clip_length - 1)

    # --------------------------------------------------------------------------------------------- state
    def reset_state(self) -> None:
        self._state = None

    def get_state(self) -> torch.Tensor | None:
        """The memory H after the last frame (the model never modifies it in place, so no copy is made)."""
        return self._state

    def set_state(self, state: Any) -> None:
        if state is not None and not isinstance(state, torch.Tensor):
            raise TypeError(f"J4R-Net state must be a tensor or None, not {type(state).__name__}")
        self._state = state

    aligns_state = True

    def align_state(self, state: Any, flow: Any) -> Any:
        """The memory H_{t−1} warped along the backward flow to frame t (bilinear; scene points that were
        outside the tile start from zero memory, as a new clip does). ``flow``: h×w×2 for every sample, or
        N×h×w×2, in pixels (dx, dy). Our addition at inference (and, from phase 6 on, in training): the lite
        network does not align frames itself, so a panning or shaking camera otherwise leaves ghosts."""
        if state is None:
            return None
        n, _, h, w = state.shape
        fl = torch.as_tensor(flow, dtype=torch.float32, device=state.device)
        if fl.dim() == 3:
            fl = fl[None]
        fh, fw = fl.shape[1:3]
        if (fh, fw) != (h, w):  # a tile padded past the frame: the flow's edge carries on
            fl = fl[:, :h, :w].permute(0, 3, 1, 2)
            fl = F.pad(fl, (0, w - fl.shape[-1], 0, h - fl.shape[-2]), mode="replicate").permute(0, 2, 3, 1)
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=torch.float32, device=state.device),
            torch.arange(w, dtype=torch.float32, device=state.device),
            indexing="ij",
        )
        gx = (xs + fl[..., 0]) * (2.0 / max(1, w - 1)) - 1.0
        gy = (ys + fl[..., 1]) * (2.0 / max(1, h - 1)) - 1.0
        grid = torch.stack([gx, gy], -1).expand(n, h, w, 2)
        moved = F.grid_sample(state.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return moved.to(state.dtype)

    def _initial_state(self, x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor | None:
        """The memory to start ``x`` from: ``state`` where it fits, else None (zeros, which :meth:`step` skips)."""
        n, _, h, w = x.shape
        if state is None or tuple(state.shape) != (n, self.channels, h, w):
            return None
        if state.is_inference() and not torch.is_inference_mode_enabled():
            state = state.clone()  # an inference tensor cannot enter an autograd graph
        return state.to(device=x.device, dtype=x.dtype)

    # ------------------------------------------------------------------------------------------- network
    def step(
        self, x: torch.Tensor, h: torch.Tensor | None, gate_maps: bool = True
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One frame: raw (unclamped) outputs and the new memory H_t (gate means only with ``gate_maps``).

        ``h`` None is a zero memory (a clip's first frame, a still photo), computed without its terms: the
        memory's share of ``detect_in`` and ``gates``, U_h (r ⊙ H), (1 − z)·H and (without ``gate_maps``) the
        read gate r vanish, ~25 % of a frame's multiply-adds (lite config)."""
        f = self.encoder(F.relu(self.head(x)))
        c = self.channels
        # D-Net.
        if h is None:
            hd = self.detect(F.relu(_conv_part(self.detect_in, f, (0, c))))
        else:
            hd = self.detect(F.relu(self.detect_in(torch.cat([f, h], 1))))
        logits = _to_few(self.detect_cls, hd)
        prob = torch.softmax(logits, 1)
        alpha = prob[:, 1:2]
        degr = torch.cat([hd, prob], 1)
        # F-Net (conv GRU).
        if h is None:  # the read gate r only acts on H: computed for its map alone
            spans = (0, c), (2 * c, self.gates.in_channels)
            zr = _conv_part(self.gates, torch.cat([f, degr], 1), *spans, outputs=None if gate_maps else c)
            z = torch.sigmoid(zr[:, :c])
            r = F.relu(zr[:, c:])
            h_new = z * torch.tanh(self.cand_x(f))
        else:
            zr = self.gates(torch.cat([f, h, degr], 1))
            z = torch.sigmoid(zr[:, :c])
            r = F.relu(zr[:, c:])
            cand = torch.tanh(self.cand_x(f) + self.cand_h(r * h))
            h_new = (1.0 - z) * h + z * cand
        # R-Net: erase path.
        rf = self.removal(f)
        streaks = _to_few(self.removal_out, rf)
        # C-Net: fill path.
        cf = self.recon(F.relu(self.recon_in(h_new)))
        recon = x + _to_few(self.recon_out, cf)
        # JRC-Net.
        jf = self.joint(F.relu(self.joint_in(torch.cat([rf, cf, alpha], 1))))
        background = (1.0 - alpha) * (x - streaks) + alpha * recon + _to_few(self.joint_out, jf)
        out = {
            "background": background,
            "streaks": streaks,
            "reconstruction": recon,
            "alpha": alpha,
            "alpha_logits": logits,
        }
        if gate_maps:
            out["gate_update"] = z.mean(1, keepdim=True)
            out["gate_read"] = r.mean(1, keepdim=True)
        return out, h_new

    def forward_train(
        self, frames: torch.Tensor, initial_state: torch.Tensor | None = None, flows: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Run a clip (N×T×3×H×W, or one frame N×3×H×W) with gradients through time, from ``initial_state``
        (None: zeros); ``flows`` (N×(T−1)×H×W×2) align the memory to each next frame as inference does.
        Returns unclamped tensors with a time axis (N×T×C×H×W): ``background``, ``streaks``, ``reconstruction``,
        ``alpha``, ``alpha_logits``, ``gate_update``, ``gate_read``; and ``state``, the final memory. Does not
        touch the carried state."""
        single = frames.dim() == 4
        if single:
            frames = frames[:, None]
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"expected N×T×3×H×W frames, got {tuple(frames.shape)}")
        h = self._initial_state(frames[:, 0], initial_state)
        steps: list[dict[str, torch.Tensor]] = []
        for t in range(frames.shape[1]):
            if t and flows is not None:
                h = self.align_state(h, flows[:, t - 1])
            out, h = self.step(frames[:, t], h)
            steps.append(out)
        result = {k: torch.stack([s[k] for s in steps], 1) for k in steps[0]}
        result["state"] = h
        return result

    def map_specs(self) -> list[MapSpec]:
        return [
            MapSpec(
                "alpha",
                MapKind.MASK,
                (0.0, 1.0),
                1,
                "Rain occlusion probability α_t from the degradation classification net (D-Net)",
            ),
            MapSpec(
                "streaks",
                MapKind.RESIDUAL,
                (-1.0, 1.0),
                3,
                "Streak layer Ŝ_t estimated by the rain removal net (R-Net); erased where α = 0",
            ),
            MapSpec(
                "reconstruction",
                MapKind.IMAGE,
                (0.0, 1.0),
                3,
                "Background filled from the recurrent memory by the reconstruction net (C-Net); used where α = 1",
            ),
            MapSpec(
                "background",
                MapKind.IMAGE,
                (0.0, 1.0),
                3,
                "Joint estimate B̂_t = (1 − α)(O − Ŝ) + α·B̂ᶜ + correction (JRC-Net)",
            ),
            MapSpec(
                "gate_update",
                MapKind.GATE,
                (0.0, 1.0),
                1,
                "GRU update gate z (channel mean): 1 = take the current frame, 0 = keep the memory",
            ),
            MapSpec(
                "gate_read",
                MapKind.GATE,
                (0.0, 2.0),
                1,
                "GRU read gate r (ReLU, channel mean): how much memory enters the new candidate",
            ),
        ]

    def _output(self, out: dict[str, torch.Tensor], return_maps: bool) -> ModelOutput:
        image = out["background"].clamp(0.0, 1.0)
        if not return_maps:
            return ModelOutput(image)
        maps = {
            "alpha": out["alpha"],
            "streaks": out["streaks"],
            "reconstruction": out["reconstruction"].clamp(0.0, 1.0),
            "background": image,
            "gate_update": out["gate_update"],
            "gate_read": out["gate_read"],
        }
        return ModelOutput(image, maps)

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:
        """Derain one frame per batch element and carry the memory to the next call.

        The memory starts at zeros (and restarts when the batch or frame size changes). It is stored
        detached: use :meth:`forward_train` or :meth:`forward_clip` to back-propagate through time.
        """
        h = self._initial_state(x, self._state)
        out, h_new = self.step(x, h, gate_maps=return_maps)
        self._state = h_new.detach()
        return self._output(out, return_maps)

    def forward_clip(
        self, frames: torch.Tensor, return_maps: bool = False, initial_state: torch.Tensor | None = None
    ) -> list[ModelOutput]:
        """Derain a clip N×T×3×H×W in one call, starting from ``initial_state`` (None: zeros); one
        :class:`ModelOutput` per frame. The carried state of :meth:`forward` is left untouched."""
        result = self.forward_train(frames, initial_state)
        return [
            self._output({k: v[:, t] for k, v in result.items() if k != "state"}, return_maps)
            for t in range(frames.shape[1] if frames.dim() == 5 else 1)
        ]
