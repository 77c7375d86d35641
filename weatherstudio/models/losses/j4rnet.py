"""J4R-Net's training loss (Liu et al., CVPR 2018, the loss functions of Sec. 4).

``l_all = l_joint + λ_d·l_detect + λ_c·l_rect + λ_r·l_removal`` with λ_d = 0.001, λ_c = λ_r = 0.0001:

* ``l_joint = ‖B̂_t − b_t‖²`` — the joint (JRC-Net) background against the clean frame;
* ``l_detect = log Σ_k exp f^d_{t,2}(k) − f^d_{t,2}(α_t)`` — two-class softmax cross-entropy of the D-Net
  logits against the true occlusion mask α (a soft α ∈ [0, 1] weights the two classes);
* ``l_rect = ‖E(B̂ᶜ_t) − E(b_t)‖²`` with E a high-pass filter (x minus its 5×5 binomial blur). The seed writes
  B̂_t; each auxiliary term supervises its own sub-net (detect → D-Net, removal → R-Net), and the
  reconstruction term is the one that reaches the C-Net, so by default it compares the C-Net's output
  (``rect_on="reconstruction"``); ``rect_on="background"`` follows the formula literally;
* ``l_removal = ‖Ŝ_t − s_t‖²`` — the R-Net streak layer against the synthetic streaks.

Squared norms are taken as means over pixels (and frames), so the λ keep the paper's ratios but not its Caffe
normalisation. Targets come from the rain synthesis as a dict, each N×T×C×H×W (or N×C×H×W for one frame):
``clean`` (B, required), ``streaks`` (S) and ``alpha`` (occlusion mask, 1 channel, may be soft); the
synthesis' own names ``y`` and ``s`` are accepted for the first two. A missing ``streaks`` or ``alpha``
(real pairs) drops that term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from weatherstudio.core.pyramid import gaussian_kernel


def high_pass(x: torch.Tensor) -> torch.Tensor:
    """E(x) = x − blur(x), the 5×5 binomial blur with reflected borders, per channel (any leading dims)."""
    shape = x.shape
    flat = x.reshape(-1, *shape[-3:])
    c = flat.shape[1]
    pad = "reflect" if min(flat.shape[-2:]) > 2 else "replicate"
    blurred = F.conv2d(F.pad(flat, (2, 2, 2, 2), mode=pad), gaussian_kernel(c, flat.device, flat.dtype), groups=c)
    return (flat - blurred).reshape(shape)


def _pick(target: dict[str, torch.Tensor], name: str, alias: str) -> torch.Tensor | None:
    return target[name] if name in target else target.get(alias)


def _flat(t: torch.Tensor) -> torch.Tensor:
    """Fold a time axis into the batch: N×T×C×H×W → (N·T)×C×H×W."""
    return t.reshape(-1, *t.shape[-3:])


class J4RNetLoss(nn.Module):
    """``l_joint + λ_d·l_detect + λ_c·l_rect + λ_r·l_removal`` on :meth:`J4RNet.forward_train` outputs."""

    def __init__(
        self,
        lambda_detect: float = 1e-3,
        lambda_rect: float = 1e-4,
        lambda_removal: float = 1e-4,
        rect_on: str = "reconstruction",
    ) -> None:
        super().__init__()
        if rect_on not in ("reconstruction", "background"):
            raise ValueError(f"rect_on must be 'reconstruction' or 'background', not {rect_on!r}")
        self.lambda_detect = lambda_detect
        self.lambda_rect = lambda_rect
        self.lambda_removal = lambda_removal
        self.rect_on = rect_on

    @property
    def description(self) -> str:
        """One line for weight-file metadata."""
        return (
            f"MSE(B̂, b) + {self.lambda_detect:g}·CE(α logits, α) + {self.lambda_rect:g}·MSE(E({self.rect_on}), E(b))"
            f" + {self.lambda_removal:g}·MSE(Ŝ, s); E = x − 5×5 binomial blur"
        )

    def terms(self, outputs: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every term and ``total``."""
        clean_t, streaks_t = _pick(target, "clean", "y"), _pick(target, "streaks", "s")
        if clean_t is None:
            raise KeyError("J4R-Net's loss needs the clean frames (target 'clean' or 'y')")
        clean = _flat(clean_t)
        background = _flat(outputs["background"])
        terms = {"joint": F.mse_loss(background, clean)}
        total = terms["joint"]
        rect_src = _flat(outputs[self.rect_on])
        terms["rect"] = F.mse_loss(high_pass(rect_src), high_pass(clean))
        total = total + self.lambda_rect * terms["rect"]
        if "alpha" in target:
            logits = _flat(outputs["alpha_logits"])
            alpha = _flat(target["alpha"]).to(logits.dtype)
            soft = torch.cat([1.0 - alpha, alpha], 1)  # class 0 = visible, class 1 = occluded
            terms["detect"] = -(soft * torch.log_softmax(logits, 1)).sum(1).mean()
            total = total + self.lambda_detect * terms["detect"]
        if streaks_t is not None:
            terms["removal"] = F.mse_loss(_flat(outputs["streaks"]), _flat(streaks_t))
            total = total + self.lambda_removal * terms["removal"]
        terms["total"] = total
        return terms

    def forward(self, outputs: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.terms(outputs, target)["total"]
