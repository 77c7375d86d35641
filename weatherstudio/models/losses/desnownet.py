"""DesnowNet's training loss (Liu et al., TIP 2018, eqs. 7–8).

Eq. 7, the max-pool pyramid loss: ``L(m, m̂) = Σ_{i=0..τ} ‖P_{2^i}(m) − P_{2^i}(m̂)‖²₂`` where ``P_k`` is a
k×k max-pool with stride k. Max-pooling keeps the brightest value of each window, so the coarse levels punish
a bright snow flake that survives anywhere in the window without asking for exact alignment.

Eq. 8: ``L = L(y, ŷ) + L(y, y′) + λ_ẑ·L(z, ẑ) + λ_w‖w‖²₂`` with λ_ẑ = 3, τ = 4. The weight-decay term
``λ_w‖w‖²₂`` is *not* computed here: it is the optimiser's ``weight_decay`` (the reference port uses Adam with
lr 3e-5 and weight_decay 5e-4, exposed as :attr:`DesnowNetLoss.WEIGHT_DECAY` and :attr:`DesnowNetLoss.LR`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def maxpool_pyramid_loss(
    target: torch.Tensor, pred: torch.Tensor, tau: int = 4, reduction: str = "sum"
) -> torch.Tensor:
    """Eq. 7 for ``N×C×H×W`` maps: squared error between max-pooled maps at kernels 1, 2, 4, …, 2^τ.

    ``reduction="sum"`` sums the squared errors of every level over C, H, W (the squared L2 norm of eq. 7)
    and averages over the batch, so the value does not grow with the batch size; the coarse levels then
    weigh 4^i times less than the finest, exactly as in eq. 7. ``reduction="mean"`` takes each level's mean
    squared error instead (every level weighs the same and the value does not depend on the crop size).
    Windows hanging over the border are kept (``ceil_mode``); levels whose kernel exceeds the map are skipped.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"unknown reduction {reduction!r}")
    if target.shape != pred.shape:
        raise ValueError(f"shape mismatch: target {tuple(target.shape)} vs prediction {tuple(pred.shape)}")
    n = target.shape[0]
    total = pred.new_zeros(())
    for i in range(tau + 1):
        k = 2**i
        if k > min(target.shape[-2:]):
            break
        t = F.max_pool2d(target, k, stride=k, ceil_mode=True) if k > 1 else target
        p = F.max_pool2d(pred, k, stride=k, ceil_mode=True) if k > 1 else pred
        sq = (t - p).square()
        total = total + (sq.sum() / n if reduction == "sum" else sq.mean())
    return total


class DesnowNetLoss(nn.Module):
    """``L(y, ŷ) + L(y, y′) + λ_ẑ·L(z, ẑ)`` (eq. 8 without the weight decay, which is the optimiser's).

    Call with the dictionary of :meth:`DesnowNet.forward_train` and the targets ``y`` (clean image,
    ``N×3×H×W``) and ``z`` (true snow mask, ``N×1×H×W`` in [0, 1]). ŷ is taken unclamped; ẑ is the snow
    extractor's output *before* its [0, 1] clamp (``z_raw``), so a pixel predicted outside [0, 1] is still
    pulled back (the clamp's gradient there is zero); y′ is the clamped eq.-5 image the network itself uses,
    because (x − a·ẑ)/(1 − ẑ) is unbounded as ẑ → 1 and would swamp the loss.
    """

    WEIGHT_DECAY = 5e-4  # λ_w of eq. 8, as the optimiser's weight_decay (reference port)
    LR = 3e-5  # Adam learning rate of the reference port

    def __init__(
        self, lambda_z: float = 3.0, tau: int = 4, reduction: str = "sum", weight_decay: float = WEIGHT_DECAY
    ) -> None:
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"unknown reduction {reduction!r}")
        self.lambda_z = float(lambda_z)
        self.tau = int(tau)
        self.reduction = reduction
        self.weight_decay = float(weight_decay)

    @property
    def description(self) -> str:
        """One line for weight-file metadata."""
        return (
            f"DesnowNet eq. 8: L(y,ŷ) + L(y,y′) + {self.lambda_z:g}·L(z,ẑ), max-pool pyramid L2 τ={self.tau} "
            f"({self.reduction}), weight decay {self.weight_decay:g} in the optimiser"
        )

    def terms(self, outputs: dict[str, torch.Tensor], y: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each term of eq. 8 and their weighted ``total``."""
        z_pred = outputs.get("z_raw", outputs["z_hat"])
        if z.dim() == 3:
            z = z.unsqueeze(1)
        l_yhat = maxpool_pyramid_loss(y, outputs["y_hat"], self.tau, self.reduction)
        l_yprime = maxpool_pyramid_loss(y, outputs["y_prime"], self.tau, self.reduction)
        l_z = maxpool_pyramid_loss(z.to(z_pred.dtype), z_pred, self.tau, self.reduction)
        total = l_yhat + l_yprime + self.lambda_z * l_z
        return {"y_hat": l_yhat, "y_prime": l_yprime, "z_hat": l_z, "total": total}

    def forward(self, outputs: dict[str, torch.Tensor], y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.terms(outputs, y, z)["total"]
