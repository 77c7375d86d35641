"""The split comparison: the output drawn over the input, clipped to the right of a draggable line.

The output ``ImageItem`` is the child of a rectangle that clips its children, so moving the split only moves
that rectangle — no image data is copied or re-rendered while the user drags.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem


class SplitOverlay(QObject):
    """Owns the clip rectangle (parent of ``output_item``) and the handle line in ``view``."""

    moved = Signal(float)  # the split as a fraction of the image width

    def __init__(self, view: pg.ViewBox, output_item: pg.ImageItem, fraction: float = 0.5) -> None:
        super().__init__()
        self.view = view
        self.fraction = fraction
        self.width = 1.0
        self.height = 1.0
        self.clip = QGraphicsRectItem()
        self.clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self.clip.setPen(QPen(Qt.PenStyle.NoPen))
        self.clip.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        view.addItem(self.clip, ignoreBounds=True)
        output_item.setParentItem(self.clip)
        self.line = pg.InfiniteLine(
            pos=0.5,
            angle=90,
            movable=True,
            pen=pg.mkPen((255, 255, 255, 230), width=2),
            hoverPen=pg.mkPen((120, 180, 255), width=3),
            label="◀ input  ·  restored ▶",
            labelOpts={
                "position": 0.04,
                "color": (255, 255, 255),
                "fill": (0, 0, 0, 150),
                "anchors": [(0.5, 0), (0.5, 0)],
            },
        )
        self.line.addMarker("<|>", position=0.5, size=18)
        self.line.setZValue(20)
        self.line.setToolTip("Drag to move the split between input (left) and restored (right)")
        view.addItem(self.line, ignoreBounds=True)
        self.line.sigPositionChanged.connect(self._on_line)

    def set_image_size(self, width: int, height: int) -> None:
        self.width, self.height = float(max(width, 1)), float(max(height, 1))
        self.line.setBounds((0.0, self.width))
        self.set_fraction(self.fraction)

    def set_fraction(self, fraction: float) -> None:
        self.fraction = min(1.0, max(0.0, float(fraction)))
        self.line.setValue(self.fraction * self.width)
        self._update_clip()

    def set_visible(self, visible: bool) -> None:
        """Show the split (handle and clipping) or let the output show whole."""
        self.line.setVisible(visible)
        self._update_clip(whole=not visible)

    def _on_line(self) -> None:
        self.fraction = min(1.0, max(0.0, self.line.value() / self.width))
        self._update_clip()
        self.moved.emit(self.fraction)

    def _update_clip(self, whole: bool | None = None) -> None:
        whole = (not self.line.isVisible()) if whole is None else whole
        x = 0.0 if whole else self.fraction * self.width
        # Generous margins above/below/right: the clip only ever cuts at the split line.
        self.clip.setRect(QRectF(x, -self.height, self.width * 2 - x + 1, self.height * 3))
