"""Helpers for the GUI tests (imported after conftest.py has chosen the offscreen Qt platform)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from weatherstudio.gui.main_window import MainWindow
from weatherstudio.gui.settings import Settings
from weatherstudio.gui.worker import ui_friendly_threads

CAMERA = "WeatherStudio Test Camera"


def make_window(qtbot, settings: Settings, **kwargs) -> MainWindow:
    """A window on lpnet 'lite' (untrained unless weights ship), registered with qtbot for cleanup.

    Like the application, the worker leaves a core to the GUI thread (the conftest restores torch's threads).
    """
    kwargs.setdefault("worker_threads", ui_friendly_threads())
    window = MainWindow(settings, theme_name="light", **kwargs)
    qtbot.addWidget(window)
    window.resize(1100, 720)
    window.show()
    window.model_panel.set_arch("lpnet")
    window.model_panel.set_config("lite")
    window.debounce.stop()
    return window


def photo_array(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth scene with bright diagonal streaks: something for a deraining network to chew on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.45 + 0.25 * np.sin(xx / 19.0)[..., None] * np.cos(yy / 29.0)[..., None] * np.array([1, 0.8, 0.5])
    streaks = ((xx + 2 * yy).astype(int) % 23 == 0)[..., None] * 0.35
    img = np.clip(base + streaks + 0.03 * rng.standard_normal((h, w, 3)), 0, 1)
    return (img * 255).round().astype(np.uint8)


def write_photo(path: Path, h: int = 96, w: int = 128, seed: int = 0, exif: bool = True) -> Path:
    im = Image.fromarray(photo_array(h, w, seed))
    kwargs = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = CAMERA  # Make
        data[0x0110] = "WS-1"  # Model
        kwargs["exif"] = data.tobytes()
    if path.suffix.lower() in (".jpg", ".jpeg"):
        kwargs["quality"] = 92
    im.save(path, **kwargs)
    return path


def open_and_wait(qtbot, window: MainWindow, path: Path, timeout: int = 20_000) -> None:
    with qtbot.waitSignal(window.restore_done, timeout=timeout):
        window.open_path(path)


def recording(calls: list[tuple[str, int]], name: str, fn):
    """``fn`` itself, noting the thread each call runs on (a spy: the real function does the work)."""

    def wrapper(*args, **kwargs):
        calls.append((name, threading.get_ident()))
        return fn(*args, **kwargs)

    return wrapper
