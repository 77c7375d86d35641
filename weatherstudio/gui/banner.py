"""A message strip across the top of the window: information, warnings (untrained weights) and errors."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton

LEVELS = ("info", "warning", "error")
ICONS = {"info": "ℹ", "warning": "⚠", "error": "⛔"}


class Banner(QFrame):
    """Shows one message at a time; tests read :attr:`level` and :meth:`text` (it never blocks)."""

    closed = Signal()

    def __init__(self, parent: QFrame | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.level = ""
        self._icon = QLabel()
        self._label = QLabel()
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 6, 6)
        row.addWidget(self._icon)
        row.addWidget(self._label, 1)
        row.addWidget(close)
        self.hide()

    def show_message(self, level: str, text: str) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown banner level {level!r}")
        self.level = level
        self._icon.setText(ICONS[level])
        self._label.setText(text)
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.show()

    def text(self) -> str:
        return self._label.text() if self.level else ""

    def dismiss(self) -> None:
        self.level = ""
        self._label.clear()
        self.hide()
        self.closed.emit()
