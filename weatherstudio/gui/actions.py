"""Every command of the window in one table: text, shortcut, tip, the window method it calls, and when it is enabled.

The window builds ``QAction``s from :data:`ACTIONS` and calls :func:`update_enabled` whenever its state changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    slot: str  # the window method called with no argument (checkable: with the new state)
    shortcut: str | QKeySequence.StandardKey = ""
    tip: str = ""
    enabled: str = "always"  # always | image | result | running | maps | video
    checkable: bool = False
    data: str = ""


SK = QKeySequence.StandardKey
ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "&Open…", "open_dialog", SK.Open, "Open a photo (or drop one on the window)"),
    ActionSpec("save", "&Save Result…", "save_dialog", SK.Save, "Save the restored image", "result"),
    ActionSpec("batch", "&Batch Folder…", "batch_dialog", "Ctrl+B", "Restore every image in a folder"),
    ActionSpec("open_sample", "Open &Sample", "open_sample", "", "Open the bundled sample photo"),
    ActionSpec("export_video", "&Export Video…", "export_video_dialog", "Ctrl+E", "Export the restored video", "video"),
    ActionSpec("quit", "&Quit", "close", SK.Quit, "Quit WeatherStudio"),
    ActionSpec("rerun", "&Restore Again", "rerun", "Ctrl+R", "Run the restore again", "image"),
    ActionSpec("cancel", "&Cancel", "cancel", "Esc", "Stop the running restore", "running"),
    ActionSpec(
        "mode_side",
        "&Side by Side",
        "set_mode",
        "Ctrl+1",
        "Input and result side by side, linked",
        "image",
        True,
        "side",
    ),
    ActionSpec(
        "mode_split",
        "S&plit",
        "set_mode",
        "Ctrl+2",
        "Input left, result right of a draggable line",
        "image",
        True,
        "split",
    ),
    ActionSpec(
        "mode_toggle",
        "&Toggle",
        "set_mode",
        "Ctrl+3",
        "The result; hold Space to see the input",
        "image",
        True,
        "toggle",
    ),
    ActionSpec(
        "mode_diff", "&Difference", "set_mode", "Ctrl+4", "|result − input| with a colour scale", "image", True, "diff"
    ),
    ActionSpec(
        "show_input",
        "Show &Input",
        "set_show_input",
        "\\",
        "Show the input instead of the result (or hold Space)",
        "image",
        True,
    ),
    ActionSpec("play", "&Play / Pause", "toggle_play", "K", "Play the restored video", "video"),
    ActionSpec("frame_next", "&Next Frame", "next_frame", "Right", "One frame on", "video"),
    ActionSpec("frame_prev", "P&revious Frame", "previous_frame", "Left", "One frame back", "video"),
    ActionSpec("second_next", "Forward 1 Second", "second_forward", "Shift+Right", "", "video"),
    ActionSpec("second_prev", "Back 1 Second", "second_back", "Shift+Left", "", "video"),
    ActionSpec("zoom_fit", "Zoom to &Fit", "zoom_fit", "F", "Fit the image in the window", "image"),
    ActionSpec("zoom_1", "&Actual Pixels (1:1)", "zoom_actual", "1", "One image pixel per screen pixel", "image"),
    ActionSpec("zoom_in", "Zoom &In", "zoom_in", SK.ZoomIn, "", "image"),
    ActionSpec("zoom_out", "Zoom &Out", "zoom_out", SK.ZoomOut, "", "image"),
    ActionSpec("tab_compare", "&Compare", "show_compare", "", "The before/after viewer"),
    ActionSpec("tab_maps", "&Maps", "show_maps", "Ctrl+M", "The map inspector", "maps"),
    ActionSpec("theme_system", "Follow &System", "set_theme", "", "", "always", True, "system"),
    ActionSpec("theme_light", "&Light", "set_theme", "", "", "always", True, "light"),
    ActionSpec("theme_dark", "&Dark", "set_theme", "", "", "always", True, "dark"),
    ActionSpec("export_map", "Export Selected &Map…", "export_map_dialog", "", "", "maps"),
    ActionSpec("export_maps", "Export &All Maps…", "export_all_maps_dialog", "", "", "maps"),
    ActionSpec("shortcuts", "&Keyboard Shortcuts", "show_shortcuts", "F1", ""),
    ActionSpec("about", "&About WeatherStudio", "show_about", "", ""),
)


def build_actions(window: QWidget) -> dict[str, QAction]:
    """One ``QAction`` per spec, parented to ``window`` and connected to its methods."""
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        action = QAction(spec.text.replace("&&", "&"), window)
        if spec.shortcut:
            action.setShortcut(QKeySequence(spec.shortcut))
        tip = spec.tip or spec.text.replace("&", "").rstrip("…")
        key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{tip} ({key})" if key else tip)
        action.setStatusTip(tip)
        action.setCheckable(spec.checkable)
        action.setData(spec.data)
        slot = getattr(window, spec.slot)
        if spec.data:
            action.triggered.connect(lambda _=False, s=slot, d=spec.data: s(d))
        elif spec.checkable:
            action.toggled.connect(slot)
        else:
            action.triggered.connect(lambda _=False, s=slot: s())
        window.addAction(action)
        actions[spec.name] = action
    return actions


def update_enabled(actions: dict[str, QAction], state: dict[str, Any]) -> None:
    """Enable each action by its rule; ``state`` maps rule names to booleans."""
    for spec in ACTIONS:
        actions[spec.name].setEnabled(bool(state.get(spec.enabled, True)))


def shortcut_table() -> list[tuple[str, str]]:
    rows = []
    for spec in ACTIONS:
        if spec.shortcut:
            seq = QKeySequence(spec.shortcut).toString(QKeySequence.SequenceFormat.NativeText)
            rows.append((spec.text.replace("&", "").rstrip("…"), seq))
    rows.append(("Show the input while held", "Space"))
    rows.append(("Pan / zoom", "Drag / mouse wheel"))
    return rows
