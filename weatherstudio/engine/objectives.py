"""What each network learns from: its batches and its paper's loss, behind one small interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.engine.datasets import PairFolder, random_crop_pair, to_tensor
from weatherstudio.models.base import RestorationModel


class Objective:
    """Draws training batches and computes the loss terms (a dict with ``total``)."""

    description = ""

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        self.model = model
        self.cfg = cfg
        self.data_root = data_root

    def batch(self, rng: np.random.Generator, size: int, crop: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The loss terms of ``model`` (the bare network) on ``batch``, with their weighted ``total``."""
        raise NotImplementedError

    def data_description(self) -> str:
        return ""

    def validation_pairs(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Held-out (name, degraded, clean) pairs, float32 in [0, 1]; never used for training."""
        return []


class PairedRainObjective(Objective):
    """Real rainy/clean pairs (e.g. RainTrainL), random crops with flips; optional synthetic rain mixed in."""

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        data = cfg["data"]
        holdout = int(data.get("holdout", 0))
        self.pairs = [
            PairFolder.load(data_root / d / "rainy", data_root / d / "clean", holdout, "train")
            for d in data.get("real_pairs", [])
        ]
        if not self.pairs:
            raise WeatherStudioError("the config names no training pairs ([data] real_pairs)")

    def data_description(self) -> str:
        data = self.cfg["data"]
        held = f" (1 in {data['holdout']} held out for validation)" if data.get("holdout") else ""
        return ", ".join(f"{len(p)} real pairs from {d}{held}" for p, d in zip(self.pairs, data["real_pairs"]))

    def validation_pairs(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Held-out real pairs: (name, degraded, clean) as float32 in [0, 1]."""
        data = self.cfg["data"]
        out = []
        for d in data.get("real_pairs", []) if data.get("holdout") else []:
            folder = PairFolder.load(
                self.data_root / d / "rainy", self.data_root / d / "clean", int(data["holdout"]), "val"
            )
            out += [
                (n, a / np.float32(255), b / np.float32(255))
                for n, a, b in zip(folder.names, folder.inputs, folder.targets)
            ]
        return out

    def batch(self, rng: np.random.Generator, size: int, crop: int) -> dict[str, torch.Tensor]:
        xs, ys = [], []
        for _ in range(size):
            folder = self.pairs[int(rng.integers(len(self.pairs)))]
            i = int(rng.integers(len(folder)))
            x, y = random_crop_pair(rng, folder.inputs[i], folder.targets[i], crop)
            xs.append(x)
            ys.append(y)
        return {"input": to_tensor(xs), "target": to_tensor(ys)}


class LPNetObjective(PairedRainObjective):
    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        from weatherstudio.models.losses.lpnet import LPNetLoss

        self.criterion = LPNetLoss()
        self.description = self.criterion.description

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        _, outs = model.forward_pyramid(batch["input"])
        return self.criterion.terms(outs, batch["target"])


OBJECTIVES: dict[str, type[Objective]] = {"lpnet": LPNetObjective}


def make_objective(model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> Objective:
    arch = cfg["model"]["arch"]
    if arch not in OBJECTIVES:
        raise WeatherStudioError(f"no training objective for {arch!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[arch](model, cfg, data_root)
