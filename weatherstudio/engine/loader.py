"""Get a ready-to-run model by name: a thin front of :func:`weatherstudio.engine.session.load_choice`."""

from __future__ import annotations

import os
from typing import Any

from weatherstudio.models.base import RestorationModel


def load_model(
    arch: str,
    weights: str | os.PathLike[str] | None = None,
    config: str | None = None,
    allow_untrained: bool = False,
) -> tuple[RestorationModel, dict[str, Any]]:
    """``arch`` with ``weights`` (a file), else the shipped weights of ``config``; untrained only if allowed.

    Returns the model in eval mode and the weight file's metadata (``{"untrained": True, ...}`` for none).
    The rule is :func:`~weatherstudio.engine.session.load_choice`'s, the one the studio uses.
    """
    from weatherstudio.engine.session import ModelChoice, load_choice

    ready = load_choice(ModelChoice(arch, config, str(weights) if weights else None, allow_untrained))
    return ready.model, ready.info.metadata
