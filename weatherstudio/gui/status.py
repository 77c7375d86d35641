"""The status bar: progress (tiles done / total) with Cancel, pixel under the cursor, zoom, size, device, time."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QToolButton, QWidget


def format_pixel(values: np.ndarray | None, bits: int) -> str:
    """Pixel values as the file stores them: 0–255 for 8-bit, 0–65535 for 16-bit."""
    if values is None:
        return "–"
    top = 65535 if bits > 8 else 255
    return " ".join(f"{round(float(v) * top):d}" for v in values[:3])


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(170)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QToolButton(text="Cancel")
        self.cancel_button.setToolTip("Stop the running restore (Esc)")
        self.cancel_button.hide()
        self.pixel = QLabel()
        self.zoom = QLabel()
        self.size_label = QLabel()
        self.device = QLabel()
        self.time = QLabel()
        # Permanent widgets: a temporary message would hide ordinary ones, and progress must stay visible.
        for w in (self.progress, self.cancel_button, self.pixel, self.zoom, self.size_label, self.device, self.time):
            self.addPermanentWidget(w)
        self.pixel.setToolTip("Pixel under the cursor: input → restored, in the file's units")
        widest = "(0000, 0000)  in 000 000 000  →  out 000 000 000"  # so the bar does not jump as the cursor moves
        self.pixel.setMinimumWidth(self.fontMetrics().horizontalAdvance(widest))
        for label in (self.pixel, self.zoom, self.size_label, self.device, self.time):
            label.hide()  # shown once they have something to say

    @staticmethod
    def _put(label: QLabel, text: str) -> None:
        label.setText(text)
        label.setVisible(bool(text))

    def set_running(self, running: bool, text: str = "") -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        if running:
            self.progress.setRange(0, 0)  # busy until the first tile count arrives
            self.progress.setFormat(text or "Working…")
        if text:
            self.showMessage(text)

    def set_tiles(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"tile {done} / {total}" if total > 1 else ("done" if done else "restoring…"))

    def set_pixel(self, x: float, y: float, before: np.ndarray | None, after: np.ndarray | None, bits: int) -> None:
        if not (math.isfinite(x) and math.isfinite(y)) or before is None:
            self._put(self.pixel, "")
            return
        where = f"({int(x)}, {int(y)})"
        self._put(self.pixel, f"{where}  in {format_pixel(before, bits)}  →  out {format_pixel(after, bits)}")

    def set_zoom(self, percent: float) -> None:
        self._put(self.zoom, f"{percent:.0f}%" if percent >= 10 else f"{percent:.1f}%")

    def set_size(self, width: int, height: int, bits: int) -> None:
        mp = width * height / 1e6
        self._put(self.size_label, f"{width} × {height} ({mp:.1f} MP, {bits}-bit)" if width else "")

    def set_run(self, device: str, seconds: float | None, tiles: int = 1) -> None:
        self._put(self.device, device)
        if seconds is not None:
            self._put(self.time, f"{seconds:.2f} s" + (f" · {tiles} tiles" if tiles > 1 else ""))
