"""The trained weights WeatherStudio ships (``<arch>_<config>.safetensors``), found by architecture.

Every file here is made by ``weatherstudio train`` from a config in ``weatherstudio/engine/configs``;
its metadata records the command, data, steps, wall time, hardware and scores.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weatherstudio.models.weightfile import WeightsError, read_metadata

WEIGHTS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShippedWeights:
    path: Path
    arch: str
    config_name: str
    metadata: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.arch} ({self.config_name}) — {self.path.name}"


def shipped_weights(arch: str | None = None, folder: Path | None = None) -> list[ShippedWeights]:
    """The weight files in ``folder`` (the package's by default), optionally for one architecture only."""
    out = []
    for path in sorted((folder or WEIGHTS_DIR).glob("*.safetensors")):
        try:
            meta = read_metadata(path)
        except WeightsError:
            continue
        if not meta.get("arch") or (arch and meta["arch"] != arch):
            continue
        out.append(ShippedWeights(path, meta["arch"], str(meta.get("config_name", "")), meta))
    return out


def user_weights_dir() -> Path:
    """Where the user's own weights (fine-tuned files) live: ``$WEATHERSTUDIO_USER_WEIGHTS``, else the platform's
    data folder (``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux, ``~/Library/Application Support`` on macOS,
    ``%APPDATA%`` on Windows) ``/WeatherStudio/weights``; never the package's folder."""
    env = os.environ.get("WEATHERSTUDIO_USER_WEIGHTS")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "WeatherStudio" / "weights"


def available_weights(arch: str | None = None) -> list[ShippedWeights]:
    """The shipped files, then the user's own (fine-tuned) ones, for ``arch`` or all."""
    user = user_weights_dir()
    return shipped_weights(arch) + (shipped_weights(arch, user) if user.is_dir() else [])


def default_weights(arch: str) -> Path | None:
    """The shipped file to use for ``arch`` when the user names none: ``paper`` before ``lite``."""
    found = shipped_weights(arch)
    if not found:
        return None
    rank = {"paper": 0, "lite": 1}
    return min(found, key=lambda w: (rank.get(w.config_name, 2), w.path.name)).path
