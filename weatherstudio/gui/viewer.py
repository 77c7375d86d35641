"""The before/after viewer: side by side (linked zoom and pan), split, toggle and difference modes.

Images are shown by pyqtgraph ``ImageItem``s fed C-contiguous row-major uint8 (zero-copy into a ``QImage``: no
levels, so no rescaling pass) or, for the difference, float32 with explicit levels and a colour bar. The output
is painted progressively: tiles are copied into the output buffer and the item is refreshed at most every
``REFRESH_MS``.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from weatherstudio.gui.image_convert import DIFF_COLORMAP
from weatherstudio.gui.split_view import SplitOverlay

MODES = ("side", "split", "toggle", "diff")
MODE_LABELS = {"side": "Side by side", "split": "Split", "toggle": "Toggle", "diff": "Difference"}
REFRESH_MS = 120
HINT = (
    "<p style='font-size:20px'>Open a photo to take the rain or snow out of it</p>"
    "<p>Drop an image here, or use <b>File ▸ Open…</b> (Ctrl+O).<br>"
    "JPEG, PNG, TIFF (8/16-bit), WebP and BMP; EXIF and colour profiles are kept.</p>"
)


def make_view() -> tuple[pg.GraphicsLayoutWidget, pg.ViewBox]:
    widget = pg.GraphicsLayoutWidget()
    widget.ci.setContentsMargins(0, 0, 0, 0)
    vb = widget.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
    vb.setDefaultPadding(0.01)
    return widget, vb


def view_state(vb: pg.ViewBox) -> tuple[float, float, float]:
    """Centre (x, y) and data units per screen pixel: what 'the same zoom and pan' means across views."""
    rect = vb.viewRect()
    width = max(vb.width(), 1.0)
    return rect.center().x(), rect.center().y(), rect.width() / width


def apply_view_state(vb: pg.ViewBox, state: tuple[float, float, float]) -> None:
    cx, cy, per_px = state
    w, h = max(vb.width(), 1.0) * per_px, max(vb.height(), 1.0) * per_px
    vb.setRange(QRectF(cx - w / 2, cy - h / 2, w, h), padding=0)


class CompareViewer(QWidget):
    hovered = Signal(float, float)  # image coordinates under the cursor (NaN when outside)
    view_changed = Signal()
    mode_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = "split"
        self.show_input = False
        self.size: tuple[int, int] = (0, 0)  # width, height
        self.input_u8: np.ndarray | None = None
        self.output_u8: np.ndarray | None = None
        self.output_state = ""  # "", "preview", "partial", "done"
        self._dirty = False
        self.auto_fit = True  # refit on resize until the user zooms or pans
        self._refresh = QTimer(self, singleShot=True, interval=REFRESH_MS, timeout=self._refresh_output)

        self.left, self.left_vb = make_view()
        self.right, self.right_vb = make_view()
        self.left_input = pg.ImageItem(axisOrder="row-major")
        self.left_vb.addItem(self.left_input)
        self.right_input = pg.ImageItem(axisOrder="row-major")
        self.output = pg.ImageItem(axisOrder="row-major")
        self.diff = pg.ImageItem(axisOrder="row-major")
        self.right_vb.addItem(self.right_input)
        self.split = SplitOverlay(self.right_vb, self.output)
        self.right_vb.addItem(self.diff)
        self.diff.setZValue(10)
        self.colorbar = pg.ColorBarItem(
            values=(0, 0.1),
            colorMap=pg.colormap.get(DIFF_COLORMAP),
            label="|restored − input|",
            width=16,
            interactive=True,
            limits=(0.0, 1.0),
            rounding=0.001,
        )
        self.colorbar.setImageItem(self.diff)

        self.left_caption = QLabel("Input", objectName="caption")
        self.right_caption = QLabel("Restored", objectName="caption")
        self.left_box = _column(self.left_caption, self.left)
        right_box = _column(self.right_caption, self.right)
        views = QWidget()
        row = QHBoxLayout(views)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        row.addWidget(self.left_box)
        row.addWidget(right_box)
        self.hint = QLabel(HINT, objectName="hint", alignment=Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(views)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)

        for widget, vb in ((self.left, self.left_vb), (self.right, self.right_vb)):
            widget.scene().sigMouseMoved.connect(lambda pos, vb=vb: self._on_mouse(vb, pos))
            vb.sigRangeChanged.connect(lambda *_: self.view_changed.emit())
            vb.sigRangeChangedManually.connect(self._on_manual_zoom)
            vb.sigRangeChanged.connect(self._update_smoothing)
        self.set_mode("split")

    # Content --------------------------------------------------------------------------------------------------
    def has_image(self) -> bool:
        return self.input_u8 is not None

    def set_input(self, u8: np.ndarray, fit: bool = True) -> None:
        """Show a new input (uint8 H×W×3); the output is cleared until a result arrives."""
        new_size = (u8.shape[1], u8.shape[0]) != self.size
        self.input_u8 = u8
        self.size = (u8.shape[1], u8.shape[0])
        for item in (self.left_input, self.right_input):
            item.setImage(u8, autoLevels=False)
        self.clear_output()
        self.split.set_image_size(*self.size)
        self.stack.setCurrentIndex(1)
        if fit or new_size:
            self.fit()

    def clear_output(self) -> None:
        self.output_u8 = None
        self.output_state = ""
        self.output.clear()
        self.diff.clear()
        self._update_captions()

    def set_output(self, u8: np.ndarray, state: str = "done") -> None:
        """Show a whole output (a preview or the final result); tiles may then be painted into it."""
        if self.input_u8 is None or u8.shape != self.input_u8.shape:
            return
        self.output_u8 = u8 if u8.flags.writeable else u8.copy()
        self.output_state = state
        self.output.setImage(self.output_u8, autoLevels=False)
        self._update_captions()

    def paint_tile(self, y: int, x: int, tile: np.ndarray) -> None:
        """Copy a finished tile into the output; the picture refreshes at most every ``REFRESH_MS``."""
        if self.input_u8 is None:
            return
        if self.output_u8 is None:  # no preview: start from the input, tiles replace it as they come
            self.output_u8 = self.input_u8.copy()
            self.output.setImage(self.output_u8, autoLevels=False)
        self.output_u8[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        self.output_state = "partial"
        self._dirty = True
        if not self._refresh.isActive():
            self._refresh.start()

    def _refresh_output(self) -> None:
        if self._dirty and self.output_u8 is not None:
            self._dirty = False
            self.output.updateImage()
            self._update_captions()

    def set_diff(self, diff: np.ndarray, levels: tuple[float, float]) -> None:
        self.diff.setImage(diff, autoLevels=False, levels=levels)
        self.colorbar.setLevels(levels)

    # Modes ------------------------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown view mode {mode!r}; use one of {', '.join(MODES)}")
        state = view_state(self.right_vb) if self.stack.currentIndex() == 1 else None
        self.mode = mode
        side = mode == "side"
        self.left_box.setVisible(side)
        if side:
            self.right_vb.setXLink(self.left_vb)
            self.right_vb.setYLink(self.left_vb)
        else:
            self.right_vb.setXLink(None)
            self.right_vb.setYLink(None)
        layout = self.right.ci
        if mode == "diff" and self.colorbar not in layout.items:
            layout.addItem(self.colorbar, row=0, col=1)
        elif mode != "diff" and self.colorbar in layout.items:
            layout.removeItem(self.colorbar)
        self._apply_visibility()
        if self.auto_fit:
            QTimer.singleShot(0, self.fit)
        elif state is not None and self.input_u8 is not None:
            QTimer.singleShot(0, lambda: self._restore_view(state))
        self.mode_changed.emit(mode)

    def _restore_view(self, state: tuple[float, float, float]) -> None:
        apply_view_state(self.left_vb if self.mode == "side" else self.right_vb, state)

    def set_show_input(self, show: bool) -> None:
        """Show the input in place of the output (while a key is held, or toggled)."""
        self.show_input = bool(show)
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        mode, hold = self.mode, self.show_input
        self.split.set_visible(mode == "split" and not hold)
        self.output.setVisible(mode != "diff" and not hold)
        self.split.clip.setVisible(mode != "diff" and not hold)
        self.diff.setVisible(mode == "diff" and not hold)
        self._update_captions()

    def _update_captions(self) -> None:
        w, h = self.size
        state = {"preview": " — preview, full resolution on its way", "partial": " — filling in…"}.get(
            self.output_state, "" if self.output_u8 is not None else " — waiting…"
        )
        if self.show_input:
            text = "Input (showing the original)"
        else:
            text = {
                "side": f"Restored{state}",
                "split": f"Split: input on the left, restored on the right — drag the line{state}",
                "toggle": f"Restored{state}  ·  hold Space to see the input",
                "diff": "Difference |restored − input|, largest channel",
            }[self.mode]
        self.right_caption.setText(text)
        self.left_caption.setText(f"Input  ·  {w} × {h}" if w else "Input")

    # Zoom ----------------------------------------------------------------------------------------------------
    def main_view(self) -> pg.ViewBox:
        return self.left_vb if self.mode == "side" else self.right_vb

    def fit(self) -> None:
        w, h = self.size
        self.auto_fit = True
        if w:
            self.main_view().setRange(QRectF(0, 0, w, h), padding=0.01)

    def _update_smoothing(self, *_: object) -> None:
        """Filtered when zoomed out (no aliasing on a 24 MP photo), crisp pixels from 1:1 up."""
        smooth = self.zoom_percent() < 99.5
        for widget in (self.left, self.right):
            widget.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)

    def _on_manual_zoom(self, *_: object) -> None:
        self.auto_fit = False

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.auto_fit:
            QTimer.singleShot(0, self.fit)

    def actual_size(self) -> None:
        """1:1 — one image pixel on one device pixel, keeping the centre."""
        self.auto_fit = False
        vb = self.main_view()
        cx, cy, _ = view_state(vb)
        apply_view_state(vb, (cx, cy, self.devicePixelRatioF()))

    def zoom_by(self, factor: float) -> None:
        self.auto_fit = False
        vb = self.main_view()
        cx, cy, per_px = view_state(vb)
        apply_view_state(vb, (cx, cy, per_px / factor))

    def zoom_percent(self) -> float:
        _, _, per_px = view_state(self.main_view())
        return 100.0 * self.devicePixelRatioF() / per_px if per_px > 0 else 100.0

    # Cursor --------------------------------------------------------------------------------------------------
    def _on_mouse(self, vb: pg.ViewBox, pos: object) -> None:
        if self.input_u8 is None or not vb.sceneBoundingRect().contains(pos):
            self.hovered.emit(math.nan, math.nan)
            return
        p = vb.mapSceneToView(pos)
        w, h = self.size
        inside = 0 <= p.x() < w and 0 <= p.y() < h
        self.hovered.emit(p.x() if inside else math.nan, p.y() if inside else math.nan)

    def set_colors(self, background: str, foreground: str) -> None:
        """Follow the theme: the canvas behind the images and the colour bar's text."""
        for widget in (self.left, self.right):
            widget.setBackground(background)
        for name in ("right", "left", "top", "bottom"):
            axis = self.colorbar.getAxis(name)
            axis.setPen(foreground)
            axis.setTextPen(foreground)
            if axis.labelText:
                axis.setLabel(axis.labelText, color=foreground)


def _column(caption: QLabel, view: QWidget) -> QWidget:
    box = QWidget()
    col = QVBoxLayout(box)
    col.setContentsMargins(0, 0, 0, 0)
    col.setSpacing(0)
    col.addWidget(caption)
    col.addWidget(view, 1)
    return box
