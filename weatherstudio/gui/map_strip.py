"""A filmstrip of map thumbnails, one labelled section per :attr:`MapSpec.group` (pyramid levels in a row)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

THUMB = 88


def pixmap_from_u8(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


def short_label(name: str, spec: object, with_scale: bool = True) -> str:
    """The map's name, and its scale on a second line when the maps come in several sizes."""
    scale = getattr(spec, "scale", 1.0)
    label = name.replace("_", " ")
    if not with_scale:
        return label
    return f"{label}\n1/{round(1 / scale)}" if scale < 0.999 else f"{label}\nfull size"


class MapStrip(QScrollArea):
    """Click a thumbnail to select its map (``selected`` carries the map name)."""

    selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filmstrip")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFixedHeight(THUMB + 74)
        self.buttons: dict[str, QToolButton] = {}
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._empty = QLabel("The model's maps appear here after a restore.", objectName="muted")
        self.set_maps({}, {})

    def set_maps(self, thumbs: dict[str, np.ndarray], specs: dict[str, object]) -> None:
        for b in self._group.buttons():
            self._group.removeButton(b)
        self.buttons = {}
        content = QWidget()
        row = QHBoxLayout(content)
        row.setContentsMargins(8, 4, 8, 4)
        row.setSpacing(14)
        groups: dict[str, list[str]] = {}
        for name, spec in specs.items():
            if name in thumbs:
                groups.setdefault(getattr(spec, "group", "") or "maps", []).append(name)
        if not groups:
            self._empty = QLabel("The model's maps appear here after a restore.", objectName="muted")
            row.addWidget(self._empty)
        mixed = len({round(getattr(specs[n], "scale", 1.0), 6) for names in groups.values() for n in names}) > 1
        for group, names in groups.items():
            section = QVBoxLayout()
            section.setSpacing(2)
            title = QLabel(group, objectName="sectionTitle")
            section.addWidget(title)
            strip = QHBoxLayout()
            strip.setSpacing(4)
            for name in names:
                strip.addWidget(self._button(name, thumbs[name], specs[name], mixed))
            strip.addStretch(1)
            section.addLayout(strip)
            row.addLayout(section)
        row.addStretch(1)
        self.setWidget(content)

    def _button(self, name: str, thumb: np.ndarray, spec: object, with_scale: bool) -> QToolButton:
        b = QToolButton()
        b.setCheckable(True)
        b.setAutoRaise(True)
        b.setIcon(QIcon(pixmap_from_u8(thumb)))
        b.setIconSize(QSize(THUMB, THUMB))
        b.setText(short_label(name, spec, with_scale))
        b.setToolTip(f"<b>{name}</b><br>{getattr(spec, 'description', '')}")
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        b.clicked.connect(lambda _=False, n=name: self.selected.emit(n))
        self._group.addButton(b)
        self.buttons[name] = b
        return b

    def mark(self, name: str) -> None:
        if name in self.buttons:
            self.buttons[name].setChecked(True)
