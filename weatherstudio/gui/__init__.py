"""The Qt window (PySide6 + pyqtgraph). Nothing outside this package imports Qt; the entry point is
:func:`weatherstudio.app.main`."""

from __future__ import annotations

__all__ = ["MainWindow"]


def __getattr__(name: str) -> object:
    if name == "MainWindow":  # lazy: importing the package must not pull in Qt widgets
        from weatherstudio.gui.main_window import MainWindow

        return MainWindow
    raise AttributeError(name)
