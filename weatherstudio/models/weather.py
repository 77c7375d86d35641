"""The weather classifier behind ``--model auto``: is a photo rainy, snowy or clear?

Not one of the five restoration papers but the project's own small network: the image and its high-pass
residue (image − 5×5 box blur, where streaks and flakes stand out from the scene), a fully convolutional stack
(3×3 convolutions with batch norm, four stride-2 stages), then global average *and* global max pooling, so that
both a veil of fine streaks spread over the window (the mean) and a few strong flakes in one corner (the max)
reach the linear head. A photo is area-downscaled to :data:`INPUT_SIDE` — the scale the restoration networks
are trained at — and cut into :data:`WINDOW`-pixel windows, the size it is trained on (so the max pooling
sees as many positions as in training); the windows' log-probabilities are averaged.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

#: The classes, in logit order.
CLASSES: tuple[str, ...] = ("clear", "rain", "snow")
#: Photos are classified with their long side area-downscaled to this (never upscaled past it).
INPUT_SIDE = 640
#: The window the network is trained on and run on.
WINDOW = 160
#: The smallest side the network sees: a smaller image is enlarged to it first (four stride-2 stages).
MIN_SIDE = 64

CONFIGS: dict[str, dict[str, Any]] = {
    "lite": {"stem": 16, "widths": [24, 48, 96, 128], "dropout": 0.2},
}


class WeatherClassifier(nn.Module):
    """rain / snow / clear from an RGB image in [0, 1] (``N×3×H×W``, any size ≥ :data:`MIN_SIDE`)."""

    arch: ClassVar[str] = "weather"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = dict(config or CONFIGS["lite"])
        stem, widths = int(self.config["stem"]), [int(w) for w in self.config["widths"]]
        layers: list[nn.Module] = _conv(6, stem, 1)
        c = stem
        for w in widths:  # each stage: a stride-2 convolution, then one at the new scale
            layers += _conv(c, w, 2) + _conv(w, w, 1)
            c = w
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(float(self.config.get("dropout", 0.0)))
        self.head = nn.Linear(2 * c, len(CLASSES))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``N×3`` (see :data:`CLASSES`)."""
        detail = x - F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
        f = self.features(torch.cat([x - 0.5, 4.0 * detail], dim=1))
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.head(self.dropout(pooled))

    # The parts of the restoration-model contract the training engine relies on.
    def reset_state(self) -> None:
        """No state across frames."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _conv(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.1, inplace=True),
    ]


def build_classifier(config: str | dict[str, Any] | None = None) -> WeatherClassifier:
    """A classifier from a named config (``lite``) or a dict."""
    if isinstance(config, str):
        if config not in CONFIGS:
            raise KeyError(f"the weather classifier has no config {config!r}; configs: {', '.join(CONFIGS)}")
        config = CONFIGS[config]
    return WeatherClassifier(config)
