"""GT-RAIN's training loss (Ba et al., ECCV 2022; the full loss in Sec. 3.3.1 of the seed):
``L = (1 − MS-SSIM(Ĵ, J)) + 0.1·‖Ĵ − J‖₁ + 0.1·L_robust(z_J, z_I)``.

The rain-robust loss is InfoNCE as in SimCLR (Chen et al., ICML 2020, NT-Xent): the pooled features of each
rainy image I_i and of its clean twin J_i are a positive pair; the other 2N − 2 features of the batch
(rainy and clean) are the negatives; similarity is cosine, temperature τ = 0.25, and the loss is averaged over
both directions of every pair. With a batch of one there are no negatives and the term is 0.

MS-SSIM uses :func:`weatherstudio.models.losses.ssim.ms_ssim` (fewer scales on small crops: a 64×64 crop is
scored on 3 scales, see that module).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from weatherstudio.models.losses.ssim import ms_ssim


def info_nce(z_rainy: torch.Tensor, z_clean: torch.Tensor, temperature: float = 0.25) -> torch.Tensor:
    """NT-Xent between N rainy and N clean features (N×D), twin i ↔ i the positives."""
    n = z_rainy.shape[0]
    z = F.normalize(torch.cat([z_rainy, z_clean], 0).float(), dim=1)
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target)


class GTRainLoss(nn.Module):
    """``w_ssim·(1 − MS-SSIM) + w_l1·L1 + w_robust·InfoNCE`` on :meth:`GTRainNet.forward_train` outputs."""

    def __init__(
        self, weight_l1: float = 0.1, weight_ms_ssim: float = 1.0, weight_robust: float = 0.1, temperature: float = 0.25
    ) -> None:
        super().__init__()
        self.weight_l1 = weight_l1
        self.weight_ms_ssim = weight_ms_ssim
        self.weight_robust = weight_robust
        self.temperature = temperature

    @property
    def description(self) -> str:
        """One line for weight-file metadata."""
        return (
            f"{self.weight_ms_ssim:g}·(1 − MS-SSIM) + {self.weight_l1:g}·L1 + {self.weight_robust:g}·InfoNCE"
            f"(τ={self.temperature:g}) on 2×2-pooled residual-block features"
        )

    def terms(self, outputs: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every term and ``total``. ``target["clean"]`` (or the synthesis' ``y``) is the clean batch; the robust
        term needs ``outputs["features_clean"]`` (from ``forward_train(rainy, clean)``) and is skipped without it."""
        image, clean = outputs["image"], target["clean"] if "clean" in target else target["y"]
        terms = {"l1": F.l1_loss(image, clean), "ms_ssim": 1.0 - ms_ssim(image, clean)}
        total = self.weight_l1 * terms["l1"] + self.weight_ms_ssim * terms["ms_ssim"]
        if "features_clean" in outputs:
            terms["robust"] = info_nce(outputs["features"], outputs["features_clean"], self.temperature)
            total = total + self.weight_robust * terms["robust"]
        terms["total"] = total
        return terms

    def forward(self, outputs: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.terms(outputs, target)["total"]
