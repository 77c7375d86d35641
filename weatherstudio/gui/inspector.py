"""The map inspector: every map the model returned, large, with a colour map, histogram and exact values.

Maps are placed in input-pixel coordinates (a map at :attr:`MapSpec.scale` s is stretched by 1/s), so the view
shares zoom and pan with the before/after viewer and the cursor reads the map pixel (x·s, y·s).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel

from weatherstudio.engine import map_writer as map_export
from weatherstudio.gui import image_convert as ic
from weatherstudio.gui.map_strip import MapStrip
from weatherstudio.gui.viewer import make_view

EXPORT_FILTER = "16-bit PNG (*.png);;16-bit TIFF (*.tif);;NumPy float32, exact (*.npy)"


class MapInspector(QWidget):
    exported = Signal(list)  # the paths written
    export_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.maps: dict[str, np.ndarray] = {}
        self.specs: dict[str, Any] = {}
        self.context: dict[str, Any] = {}
        self.stem = "maps"
        self.current = ""
        self.image_size = (0, 0)
        self.last_folder = ""
        self._keep = ""
        self._stale = False
        self._chosen_colormap = ""  # the user's choice for the selected map ("" = the map kind's default)

        self.title = QLabel("No map selected", objectName="sectionTitle")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.description = QElidingLabel("", objectName="muted")  # one line, elided; the full text in its tooltip
        self.description.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.channel = QComboBox()
        self.channel.addItems(["All channels", "R", "G", "B"])
        self.channel.setToolTip("Show one channel of an RGB map with a colour map, or all three as colour")
        self.colormap = QComboBox()
        for name in ic.COLORMAPS:
            self.colormap.addItem(ic.COLORMAP_LABELS[name], name)
        self.stretch = QCheckBox("Stretch")
        self.stretch.setChecked(True)
        self.stretch.setToolTip(
            "Levels from the data (0.5–99.5 %, symmetric for signed maps) instead of the map's declared value range"
        )
        self.export_button = QToolButton(text="Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        self.export_selected_action = menu.addAction("Selected map…", self.export_selected_dialog)
        self.export_all_action = menu.addAction("All maps…", self.export_all_dialog)
        self.export_button.setMenu(menu)

        bar = QHBoxLayout()
        bar.setContentsMargins(8, 6, 8, 0)
        bar.addWidget(self.title, 1)
        self.colormap.setToolTip("Colour map for one-channel views")
        for widget in (self.channel, self.colormap, self.stretch):
            bar.addWidget(widget)
        bar.addWidget(self.export_button)

        self.plot, self.vb = make_view()
        self.plot.ci.setContentsMargins(0, 4, 10, 4)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.item)
        self.hist = pg.HistogramLUTItem(image=self.item)
        self.plot.addItem(self.hist, row=0, col=1)
        self.info = QLabel("", objectName="muted")
        self.value = QLabel("", objectName="muted")
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        info_row = QHBoxLayout()
        info_row.setContentsMargins(8, 2, 8, 2)
        info_row.addWidget(self.info, 1)
        info_row.addWidget(self.value)
        self.strip = MapStrip()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        description_row = QHBoxLayout()  # margins outside the label: QElidingLabel elides to its full width
        description_row.setContentsMargins(8, 0, 8, 0)
        description_row.addWidget(self.description)
        layout.addLayout(description_row)
        layout.addWidget(self.plot, 1)
        layout.addLayout(info_row)
        layout.addWidget(self.strip)

        self.strip.selected.connect(self.select)
        self.channel.currentIndexChanged.connect(self._show)
        self.colormap.currentIndexChanged.connect(self._on_colormap)
        self.stretch.toggled.connect(self._show)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse)
        self._set_enabled(False)

    # Content --------------------------------------------------------------------------------------------------
    def set_maps(
        self,
        maps: dict[str, np.ndarray],
        specs: dict[str, Any],
        thumbs: dict[str, np.ndarray],
        image_size: tuple[int, int],
        stem: str = "maps",
        context: dict[str, Any] | None = None,
        show: bool = True,
    ) -> None:
        """New maps (after a restore); keeps the selected map when the new model has one of that name.

        With ``show`` False (the inspector is hidden) the large view is only drawn on :meth:`refresh`.
        """
        self.maps, self.specs, self.image_size, self.stem = maps, specs, image_size, stem
        self.context = dict(context or {})
        self.strip.set_maps(thumbs, specs)
        self._keep = self.current if self.current in maps else next((n for n in specs if n in maps), "")
        self.current = ""
        self._stale = True
        self._set_enabled(False)
        if show:
            self.refresh()

    def refresh(self) -> None:
        """Draw the selected map if new maps arrived while the inspector was hidden."""
        if not self._stale:
            return
        self._stale = False
        if self._keep:
            self.select(self._keep)
        else:
            self.clear()

    def clear(self) -> None:
        self.current = ""
        self.item.clear()
        self.title.setText("No map selected")
        self._describe("Restore an image to see the model's intermediate maps." if not self.maps else "")
        self.info.clear()
        self.value.clear()
        self._set_enabled(False)

    def _describe(self, text: str) -> None:
        self.description.setText(text)
        self.description.setToolTip(text)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.channel, self.colormap, self.stretch):
            w.setEnabled(on)
        self.export_selected_action.setEnabled(on)
        self.export_all_action.setEnabled(bool(self.maps))
        self.export_button.setEnabled(bool(self.maps))

    def select(self, name: str) -> None:
        self._stale = False
        if name not in self.maps:
            raise KeyError(f"no map named {name!r}; maps: {', '.join(self.maps)}")
        first = not self.current
        changed = name != self.current
        self.current = name
        spec = self.specs[name]
        self.strip.mark(name)
        self.title.setText(name)
        self._describe(spec.description)
        channels = self.maps[name].shape[2] if self.maps[name].ndim == 3 else 1
        self.channel.setEnabled(channels >= 3)
        if changed:
            self._chosen_colormap = ""
        if channels < 3 or changed:
            self.channel.blockSignals(True)
            self.channel.setCurrentIndex(0)
            self.channel.blockSignals(False)
        self._set_enabled(True)
        self.channel.setEnabled(channels >= 3)
        self._show()
        if first:
            self.fit()

    def _show(self) -> None:
        if not self.current:
            return
        spec = self.specs[self.current]
        arr = self.maps[self.current]
        channel = ic.CHANNELS[self.channel.currentIndex()]
        view = ic.map_view(arr, spec, channel, self.stretch.isChecked())
        h, w = arr.shape[:2]
        scale = spec.scale or 1.0
        self.colormap.setEnabled(not view.rgb)
        self.colormap.blockSignals(True)
        self.colormap.setCurrentIndex(max(0, self.colormap.findData(self._chosen_colormap or view.colormap)))
        self.colormap.blockSignals(False)
        self.item.setImage(view.image, autoLevels=False, levels=view.levels)
        self.item.setRect(QRectF(0, 0, w / scale, h / scale))
        self._apply_colormap()
        self.hist.gradient.setVisible(not view.rgb)  # an RGB view has no colour map to edit
        self.hist.setLevels(*view.levels)
        lo_l, hi_l = view.levels
        pad = 0.25 * (hi_l - lo_l)
        self.hist.setHistogramRange(lo_l - pad, hi_l + pad)
        lo, hi = spec.value_range
        units = f" {spec.units}" if spec.units else ""
        scale_text = "full size" if scale >= 1 else f"1/{round(1 / scale)} scale"
        self.info.setText(
            f"{spec.kind.value} · {w} × {h} px ({scale_text}) · {arr.shape[2] if arr.ndim == 3 else 1} ch · "
            f"range [{lo:g}, {hi:g}]{units} · levels [{view.levels[0]:.3g}, {view.levels[1]:.3g}]"
        )

    def _on_colormap(self) -> None:
        self._chosen_colormap = self.colormap.currentData() or ""
        self._apply_colormap()

    def _apply_colormap(self) -> None:
        name = self.colormap.currentData()
        if name:
            self.hist.gradient.setColorMap(ic.gradient_colormap(name))

    def set_colors(self, background: str, foreground: str) -> None:
        self.plot.setBackground(background)
        self.hist.axis.setPen(foreground)
        self.hist.axis.setTextPen(foreground)

    def fit(self) -> None:
        w, h = self.image_size
        if w:
            self.vb.setRange(QRectF(0, 0, w, h), padding=0.01)

    # Cursor --------------------------------------------------------------------------------------------------
    def value_at(self, x: float, y: float) -> np.ndarray | None:
        """The selected map's values at input-image coordinates (x, y), or None outside."""
        if not self.current or not (math.isfinite(x) and math.isfinite(y)):
            return None
        arr = self.maps[self.current]
        s = self.specs[self.current].scale or 1.0
        mx, my = int(math.floor(x * s)), int(math.floor(y * s))
        if not (0 <= my < arr.shape[0] and 0 <= mx < arr.shape[1]):
            return None
        return np.atleast_1d(arr[my, mx])

    def _on_mouse(self, pos: object) -> None:
        if not self.current or not self.vb.sceneBoundingRect().contains(pos):
            self.value.clear()
            return
        p = self.vb.mapSceneToView(pos)
        v = self.value_at(p.x(), p.y())
        if v is None:
            self.value.clear()
            return
        s = self.specs[self.current].scale or 1.0
        units = f" {self.specs[self.current].units}" if self.specs[self.current].units else ""
        values = ", ".join(f"{c:+.4f}" if ic.is_signed(self.specs[self.current]) else f"{c:.4f}" for c in v)
        self.value.setText(f"map pixel ({int(p.x() * s)}, {int(p.y() * s)}): {values}{units}")

    # Export --------------------------------------------------------------------------------------------------
    def export_selected(self, path: str | Path, overwrite: bool = False) -> list[Path]:
        if not self.current:
            raise map_export.MapExportError("no map is selected")
        written = map_export.export_map(
            path, self.maps[self.current], self.specs[self.current], self.context, overwrite=overwrite
        )
        self.exported.emit(written)
        return written

    def export_all(self, folder: str | Path, suffix: str = ".png", overwrite: bool = False) -> list[Path]:
        written = map_export.export_all(
            folder, self.stem, self.maps, self.specs, suffix, self.context, overwrite=overwrite
        )
        self.exported.emit(written)
        return written

    def export_selected_dialog(self) -> None:
        if not self.current:
            return
        start = str(Path(self.last_folder or Path.home()) / f"{self.stem}_{self.current}.png")
        path, _ = QFileDialog.getSaveFileName(self, "Export map", start, EXPORT_FILTER)
        if path:
            self.last_folder = str(Path(path).parent)
            self._guard(lambda: self.export_selected(path, overwrite=True))

    def export_all_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export all maps to folder", self.last_folder)
        if not folder:
            return
        self.last_folder = folder
        fmt, ok = _ask_format(self)
        if ok:
            self._guard(lambda: self.export_all(folder, fmt))

    def _guard(self, fn: Any) -> None:
        try:
            fn()
        except OSError as exc:
            self.export_failed.emit(str(exc))


def _ask_format(parent: QWidget) -> tuple[str, bool]:
    from PySide6.QtWidgets import QInputDialog

    choices = ["16-bit PNG (.png)", "16-bit TIFF (.tif)", "NumPy float32, exact (.npy)"]
    text, ok = QInputDialog.getItem(parent, "Export all maps", "Format:", choices, 0, False)
    return (text[text.rindex("(") + 1 : -1], ok)
