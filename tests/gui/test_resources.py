"""The icon and desktop entry the app ships: the icon renders, and the desktop entry launches what we install."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import numpy as np
import pytest

from weatherstudio.samples import app_icon

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]


def test_the_icon_renders_at_desktop_sizes(qapp) -> None:
    from PySide6.QtGui import QIcon

    path = app_icon()
    assert path is not None
    assert path.suffix == ".svg"
    icon = QIcon(str(path))
    for size in (16, 48, 256):
        image = icon.pixmap(size, size).toImage()
        assert image.width() == size, f"the SVG icon engine gave no {size}px pixmap"
        argb = np.frombuffer(image.constBits(), np.uint8).reshape(size, image.bytesPerLine() // 4, 4)[:, :size]
        opaque = argb[..., 3] > 200
        assert opaque.mean() > 0.7  # the rounded square fills most of the canvas
        assert argb[opaque][:, :3].std() > 20  # and holds a picture, not one flat colour


def test_desktop_entry_runs_the_installed_gui_script() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(REPO / "resources" / "weatherstudio.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Icon"] == "weatherstudio"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["gui-scripts"]
    assert section["Exec"].split()[0] in scripts
    assert "image/jpeg" in section["MimeType"].split(";")
