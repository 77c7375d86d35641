"""An exponential moving average of a network's weights, the weights a run validates and ships.

Polyak–Ruppert averaging in its exponential form (Polyak & Juditsky 1992; the ``ema_decay`` habit of BasicSR
and the shadow variables of TensorFlow's ``ExponentialMovingAverage``): after every optimiser step
``ē ← d_n·ē + (1 − d_n)·w`` with ``d_n = min(d, (1 + n)/(10 + n))`` for the n-th update, so a phase started
from a weight file averages over its own steps from the first one instead of dragging the starting weights
along for ~1/(1 − d) steps. SGD's noise around the minimum cancels in the average; the live weights keep
training undisturbed.

Parameters only: buffers (batch-norm running statistics) are the live model's, or recomputed for the average
(``precise_bn``) where a config asks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The running average of ``model``'s parameters with decay ``decay`` (0 < decay < 1)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must lie in (0, 1), not {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    def decay_at(self, updates: int) -> float:
        """The decay of update number ``updates`` (0-based): short at first, ``decay`` from ~10/(1 − decay) on."""
        return min(self.decay, (1.0 + updates) / (10.0 + updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current parameters into the average (after an optimiser step)."""
        weight = 1.0 - self.decay_at(self.updates)
        for name, p in model.named_parameters():
            self.shadow[name].lerp_(p.detach(), weight)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Put the average into the model's parameters (in place: each tensor keeps its memory format)."""
        for name, p in model.named_parameters():
            p.copy_(self.shadow[name])

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """The model holds the average inside the block and its own trained weights again after it."""
        live = {name: p.detach().clone() for name, p in model.named_parameters()}
        try:
            self.copy_to(model)  # inside: a copy that fails half-way still gives the trained weights back
            yield
        finally:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    p.copy_(live[name])

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume an average a checkpoint holds (its decay must be this config's)."""
        if float(state["decay"]) != self.decay:
            raise ValueError(f"the checkpoint averaged with decay {state['decay']}, this config asks {self.decay}")
        missing = self.shadow.keys() - state["shadow"].keys()
        if missing:
            raise ValueError(f"the checkpoint's weight average lacks {sorted(missing)[:3]}")
        for name, t in self.shadow.items():
            t.copy_(state["shadow"][name])
        self.updates = int(state["updates"])
