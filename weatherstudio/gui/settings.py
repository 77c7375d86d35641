"""Persistent settings: every key with its type and default in one table, stored with ``QSettings``.

Tests point the store at a temporary folder (``QSettings.setPath``) or pass their own ``QSettings``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "WeatherStudio"
APPLICATION = "WeatherStudio"
MAX_RECENT = 10

#: key → default; the default's type is the key's type.
DEFAULTS: dict[str, Any] = {
    "last_folder": "",
    "recent_files": [],
    "model": "auto",  # auto: the best shipped network for the photo's weather
    "config": "",
    "weights": "",  # "" = the model's shipped weights (or untrained when none ship); else a file path
    "device": "auto",
    "backend": "auto",  # auto | torch | openvino | onnxruntime (where a CPU restore runs)
    "fp16": True,
    "tile": 0,  # 0 = automatic
    "overlap": -1,  # −1 = automatic
    "compute_maps": True,
    "align_memory": True,  # a video network's memory warped along the optical flow to each new frame
    "all_cores": True,  # False: leave one core to the window
    "view_mode": "split",
    "theme": "system",  # system | light | dark
    "save_format": "png",
    "save_bit_depth": 0,  # 0 = same as the input
    "jpeg_quality": 95,
    "geometry": QByteArray(),
    "window_state": QByteArray(),
}


class Settings:
    """Typed access to the application's ``QSettings``."""

    def __init__(self, store: QSettings | None = None) -> None:
        fmt, scope = QSettings.Format.IniFormat, QSettings.Scope.UserScope
        self.store = store or QSettings(fmt, scope, ORGANIZATION, APPLICATION)

    def get(self, key: str) -> Any:
        default = DEFAULTS[key]
        raw = self.store.value(key, None)
        if raw is None:
            return default.copy() if isinstance(default, list) else default
        try:
            return _coerce(raw, default)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        if key not in DEFAULTS:
            raise KeyError(f"unknown setting {key!r}")
        default = DEFAULTS[key]
        if isinstance(default, list):
            value = json.dumps(list(value))
        self.store.setValue(key, value)

    def sync(self) -> None:
        self.store.sync()

    # Recent files ------------------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        return [p for p in self.get("recent_files") if isinstance(p, str)]

    def add_recent(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        files = [path] + [p for p in self.recent_files() if p != path]
        self.set("recent_files", files[:MAX_RECENT])
        return self.get("recent_files")

    def clear_recent(self) -> None:
        self.set("recent_files", [])


def _coerce(raw: Any, default: Any) -> Any:
    """Turn what an INI/registry store returns (often a string) back into ``default``'s type."""
    if isinstance(default, bool):
        if isinstance(raw, str):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return bool(raw)
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, list):
        value = json.loads(raw) if isinstance(raw, str) else list(raw)
        if not isinstance(value, list):
            raise ValueError("not a list")
        return value
    if isinstance(default, QByteArray):
        return raw if isinstance(raw, QByteArray) else QByteArray(raw)
    return str(raw)
