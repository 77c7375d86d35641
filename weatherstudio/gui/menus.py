"""The menu bar and the tool bar, laid out from the window's actions."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMainWindow, QMenu, QStyle, QToolBar, QToolButton


def build_menus(window: QMainWindow, a: dict[str, QAction]) -> QMenu:
    """Fill the menu bar; returns the (empty) Open Recent menu for the window to fill."""
    bar = window.menuBar()
    file = bar.addMenu("&File")
    file.addAction(a["open"])
    recent = file.addMenu("Open &Recent")
    file.addAction(a["open_sample"])
    file.addSeparator()
    file.addAction(a["save"])
    file.addAction(a["batch"])
    file.addAction(a["export_video"])
    file.addSeparator()
    file.addAction(a["quit"])

    view = bar.addMenu("&View")
    modes = QActionGroup(window)
    for name in ("mode_side", "mode_split", "mode_toggle", "mode_diff"):
        modes.addAction(a[name])
        view.addAction(a[name])
    view.addAction(a["show_input"])
    view.addSeparator()
    for name in ("zoom_fit", "zoom_1", "zoom_in", "zoom_out"):
        view.addAction(a[name])
    view.addSeparator()
    view.addAction(a["tab_compare"])
    view.addAction(a["tab_maps"])
    view.addSeparator()
    theme = view.addMenu("&Theme")
    themes = QActionGroup(window)
    for name in ("theme_system", "theme_light", "theme_dark"):
        themes.addAction(a[name])
        theme.addAction(a[name])
    window.view_menu = view

    restore = bar.addMenu("&Restore")
    restore.addAction(a["rerun"])
    restore.addAction(a["cancel"])
    video = bar.addMenu("V&ideo")
    for name in ("play", "frame_next", "frame_prev", "second_next", "second_prev", "export_video"):
        video.addAction(a[name])

    maps = bar.addMenu("&Maps")
    maps.addAction(a["tab_maps"])
    maps.addAction(a["export_map"])
    maps.addAction(a["export_maps"])

    window.tools_menu = bar.addMenu("&Tools")  # the window adds Fine-tune… (weatherstudio.gui.finetune_panel)

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(a["shortcuts"])
    help_menu.addAction(a["about"])
    return recent


def build_toolbar(window: QMainWindow, a: dict[str, QAction]) -> QToolBar:
    tb = QToolBar("Main")
    tb.setObjectName("main_toolbar")
    tb.setMovable(False)
    tb.setIconSize(QSize(18, 18))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    style = window.style()
    a["open"].setIcon(style.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
    a["save"].setIcon(style.standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton))
    a["cancel"].setIcon(style.standardIcon(QStyle.StandardPixmap.SP_BrowserStop))
    for name in ("open", "save"):
        tb.addAction(a[name])
    tb.addSeparator()
    for name in ("mode_side", "mode_split", "mode_toggle", "mode_diff"):
        tb.addAction(a[name])
    tb.addAction(a["show_input"])
    tb.addSeparator()
    for name, text in (("zoom_fit", "Fit"), ("zoom_1", "1:1")):
        button = QToolButton()
        button.setDefaultAction(a[name])
        button.setText(text)
        tb.addWidget(button)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
    return tb
