"""GUI test fixtures: offscreen Qt, a temporary settings store per test, small generated photos."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("pytestqt")
pg = pytest.importorskip("pyqtgraph")
from PySide6.QtCore import QSettings  # noqa: E402

pg.setConfigOptions(imageAxisOrder="row-major")

from tests.gui.helpers import make_window, write_photo  # noqa: E402
from weatherstudio.gui.main_window import MainWindow  # noqa: E402
from weatherstudio.gui.settings import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path):
    """No test may touch the user's settings, and torch's thread count is put back after each test."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "user-settings"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(QSettings(str(tmp_path / "weatherstudio.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def window(qtbot, settings: Settings) -> MainWindow:
    w = make_window(qtbot, settings)
    yield w
    w.close()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_photo(tmp_path / "rainy.png")
