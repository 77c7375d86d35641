"""Light and dark themes (Fusion style with our palettes); ``system`` follows ``QStyleHints.colorScheme``."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")


@dataclass(frozen=True)
class Colors:
    window: str
    base: str
    alt_base: str
    text: str
    muted: str
    button: str
    highlight: str
    canvas: str  # behind images: a neutral grey, as photo tools use, so colours are judged fairly
    border: str
    info: str
    warning: str
    error: str


LIGHT = Colors(
    window="#eef0f2",
    base="#ffffff",
    alt_base="#f5f6f7",
    text="#1d2125",
    muted="#5c6670",
    button="#f6f7f8",
    highlight="#2f74d0",
    canvas="#c9ccd0",
    border="#c4c9cf",
    info="#dbe9fb",
    warning="#fdf0cd",
    error="#fbdcdc",
)
DARK = Colors(
    window="#25282c",
    base="#1c1e21",
    alt_base="#2a2d31",
    text="#e4e6e9",
    muted="#9aa3ad",
    button="#30343a",
    highlight="#3d8be8",
    canvas="#18191b",
    border="#3b4047",
    info="#1f3552",
    warning="#4a3c14",
    error="#4d2022",
)


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None:
        value = scheme()
        if value == Qt.ColorScheme.Dark:
            return True
        if value == Qt.ColorScheme.Light:
            return False
    # Unknown (older platforms): judge by the default palette's window colour
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def resolve(theme: str) -> str:
    """``light`` or ``dark`` for a setting of ``system``, ``light`` or ``dark``."""
    if theme == "system":
        return "dark" if system_is_dark() else "light"
    return theme if theme in ("light", "dark") else "light"


def colors(theme: str) -> Colors:
    return DARK if resolve(theme) == "dark" else LIGHT


def _palette(c: Colors) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    for r, v in (
        (role.Window, c.window),
        (role.Base, c.base),
        (role.AlternateBase, c.alt_base),
        (role.Text, c.text),
        (role.WindowText, c.text),
        (role.ButtonText, c.text),
        (role.Button, c.button),
        (role.ToolTipBase, c.base),
        (role.ToolTipText, c.text),
        (role.Highlight, c.highlight),
        (role.HighlightedText, "#ffffff"),
        (role.PlaceholderText, c.muted),
        (role.Link, c.highlight),
        (role.Mid, c.border),
        (role.Dark, c.border),
    ):
        p.setColor(r, QColor(v))
    for r in (role.Text, role.WindowText, role.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, r, QColor(c.muted))
    return p


def stylesheet(c: Colors) -> str:
    return f"""
    QToolBar {{ border: none; spacing: 2px; padding: 3px 6px; background: {c.window}; }}
    QToolBar::separator {{ background: {c.border}; width: 1px; margin: 5px 6px; }}
    QToolButton {{ padding: 4px 9px; border-radius: 4px; border: 1px solid transparent; }}
    QToolButton:hover {{ background: {c.alt_base}; border-color: {c.border}; }}
    QToolButton:checked {{ background: {c.highlight}; color: #ffffff; border-color: {c.highlight}; }}
    QDockWidget::title {{ padding: 6px 8px; background: {c.window}; font-weight: 600; }}
    QStatusBar {{ border-top: 1px solid {c.border}; }}
    QStatusBar::item {{ border: none; }}
    QStatusBar QLabel {{ color: {c.muted}; padding: 0 6px; }}
    QLabel#caption {{ color: {c.muted}; padding: 3px 8px; }}
    QLabel#hint {{ color: {c.muted}; font-size: 15px; }}
    QLabel#sectionTitle {{ font-weight: 600; padding-top: 4px; }}
    QLabel#muted {{ color: {c.muted}; }}
    QFrame#banner[level="info"] {{ background: {c.info}; border-bottom: 1px solid {c.border}; }}
    QFrame#banner[level="warning"] {{ background: {c.warning}; border-bottom: 1px solid {c.border}; }}
    QFrame#banner[level="error"] {{ background: {c.error}; border-bottom: 1px solid {c.border}; }}
    QTabWidget::pane {{ border: none; border-top: 1px solid {c.border}; }}
    QTabBar {{ qproperty-drawBase: 0; }}
    QTabBar::tab {{ padding: 6px 18px; border: none; border-bottom: 2px solid transparent; color: {c.muted};
                   background: transparent; }}
    QTabBar::tab:selected {{ color: {c.text}; border-bottom: 2px solid {c.highlight}; }}
    QTabBar::tab:hover {{ color: {c.text}; }}
    QScrollArea#filmstrip {{ border-top: 1px solid {c.border}; }}
    """


def apply(app: QApplication, theme: str) -> Colors:
    """Style the whole application for ``theme`` (``system``, ``light`` or ``dark``); returns its colours."""
    c = colors(theme)
    app.setStyle("Fusion")
    app.setPalette(_palette(c))
    app.setStyleSheet(stylesheet(c))
    pg.setConfigOptions(background=c.canvas, foreground=c.text)
    return c
