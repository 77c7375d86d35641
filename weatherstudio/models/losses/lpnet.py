"""LPNet's training loss (Fu et al., TNNLS 2019, eq. 7).

Every output Gaussian level G_n(Y) is compared with the Gaussian pyramid of the clean image: L1 on all N
levels, plus the SSIM loss on the two finest, where the fine detail and the streaks live. The authors use
equal weights and (1 − SSIM)/2 as the SSIM term (their TensorFlow code); the L2 regulariser they declare is
never added to the loss, so there is none here either.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from weatherstudio.core.pyramid import gaussian_kernel, gaussian_pyramid
from weatherstudio.models.losses.ssim import ssim


class LPNetLoss(nn.Module):
    """``Σ_n L1(G_n(Y), G_n(Y_gt)) + Σ_{two finest} (1 − SSIM)/2``."""

    def __init__(self, ssim_levels: int = 2) -> None:
        super().__init__()
        self.ssim_levels = ssim_levels

    @property
    def description(self) -> str:
        return f"LPNet eq. 7: L1 on every Gaussian level + (1 − SSIM)/2 on the {self.ssim_levels} finest"

    def terms(self, outputs: list[torch.Tensor], clean: torch.Tensor) -> dict[str, torch.Tensor]:
        """``outputs`` are LPNet's Gaussian levels, coarsest first (``LPNet.forward_pyramid``)."""
        targets = gaussian_pyramid(clean, len(outputs), gaussian_kernel(clean.shape[1], clean.device, clean.dtype))
        l1 = sum(F.l1_loss(o, t) for o, t in zip(outputs, targets))
        s = sum((1.0 - ssim(o, t)) / 2.0 for o, t in zip(outputs[-self.ssim_levels :], targets[-self.ssim_levels :]))
        return {"l1": l1, "ssim": s, "total": l1 + s}
