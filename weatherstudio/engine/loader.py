"""Get a ready-to-run model: a registered architecture with shipped, user-chosen or no weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from weatherstudio.models.base import RestorationModel
from weatherstudio.models.registry import build_model
from weatherstudio.models.weightfile import WeightsError, load_weights
from weatherstudio.weights import default_weights


def load_model(
    arch: str,
    weights: str | os.PathLike[str] | None = None,
    config: str | dict[str, Any] | None = None,
    allow_untrained: bool = False,
) -> tuple[RestorationModel, dict[str, Any]]:
    """``arch`` with ``weights`` (a file), else its shipped weights; untrained only if allowed.

    Returns the model in eval mode and the weight file's metadata (``{"untrained": True}`` for none).
    """
    path = Path(weights) if weights else default_weights(arch)
    if path is None:
        if not allow_untrained:
            raise WeightsError(
                f"no trained weights ship for {arch!r}; pass a weight file (or train one with 'weatherstudio train')"
            )
        model = build_model(arch, config)
        model.eval()
        return model, {"untrained": True, "arch": arch, "config": model.config}
    model, meta = load_weights(path, arch=arch, config=config)
    meta = dict(meta)
    meta.setdefault("path", str(path))
    return model, meta
