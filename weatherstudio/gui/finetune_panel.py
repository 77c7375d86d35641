"""The Fine-tune panel (Tools ▸ Fine-tune…): fine-tune a network on the user's own photos, watched live.

The panel only builds a :class:`~weatherstudio.engine.finetune.FinetuneSpec` from its fields and the model
panel (network, starting weights, device) and hands it to the :class:`~.finetune_worker.FinetuneWorker`; the
engine does the rest. The worker reports every step; the panel stores the points and redraws its curves on a
timer (at most :data:`REDRAW_MS` apart), so a fast run cannot flood the event loop.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.engine.finetune import PHOTO_WEATHER, PRESETS, FinetuneData, FinetunePreview, FinetuneSpec
from weatherstudio.gui.banner import Banner
from weatherstudio.gui.finetune_worker import FinetuneWorker, Prepared, RunOutcome
from weatherstudio.gui.map_strip import pixmap_from_u8

REDRAW_MS = 100  # curves and the speed label are redrawn at most 10× a second
THUMB_HEIGHT = 88  # the held-out pair and the restored image, side by side
EMA = 0.9  # smoothing of the loss curve's bold line
SOURCES = (("photos", "Clean photos (weather synthesized)"), ("pairs", "Paired folders (degraded + clean)"))
WEATHER_LABELS = {"snow": "Snow", "rain": "Rain", "rain-video": "Rain (video clips)"}
IDLE, PREPARING, STARTING, RUNNING, PAUSED, STOPPING = "idle", "preparing", "starting", "running", "paused", "stopping"


class FolderField(QWidget):
    """A folder path: a line to type or paste it, and Browse…."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.edit = QLineEdit(placeholderText="Choose a folder…")
        self.edit.setMinimumWidth(80)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.title, self.edit.text())
        if folder:
            self.edit.setText(folder)

    def path(self) -> Path | None:
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def set_path(self, path: str | Path | None) -> None:
        self.edit.setText(str(path) if path else "")


class Thumb(QWidget):
    """A picture scaled to fit its box (aspect kept) with a caption under it."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.u8: np.ndarray | None = None
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(60, 48)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.image.setFixedHeight(THUMB_HEIGHT)
        self.image.setFrameShape(QFrame.Shape.StyledPanel)
        self.caption = QLabel(caption, objectName="muted", alignment=Qt.AlignmentFlag.AlignCenter)
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2)
        col.addWidget(self.image)
        col.addWidget(self.caption)

    def set_image(self, u8: np.ndarray | None, caption: str | None = None) -> None:
        self.u8 = u8
        if caption is not None:
            self.caption.setText(caption)
            self.caption.setToolTip(caption)
        self._paint()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._paint()

    def _paint(self) -> None:
        if self.u8 is None:
            self.image.clear()
            return
        size = self.image.contentsRect().size()
        pix = pixmap_from_u8(self.u8)
        self.image.setPixmap(
            pix.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        )


class _Plot(pg.PlotWidget):
    """A plot that asks for little room: the dock's other rows come first, the plots take what is left."""

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(200, 150)


def _plot(title: str, left: str) -> pg.PlotWidget:
    plot = _Plot()
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(False, False)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMinimumHeight(130)
    plot.setProperty("title", title)
    plot.setTitle(title, size="9pt")
    plot.setLabel("left", left)
    plot.setLabel("bottom", "step")
    plot.getPlotItem().layout.setContentsMargins(2, 2, 8, 2)
    plot.getAxis("left").enableAutoSIPrefix(False)  # "0.004", not "4 (×0.001)"
    plot.getAxis("left").setWidth(44)
    return plot


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _section(text: str) -> QLabel:
    return QLabel(text, objectName="sectionTitle")


def _form() -> QFormLayout:
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


class FinetunePanel(QWidget):
    """Data, network and training fields; Preview pair; Start, Pause/Resume, Stop; live curves; the result."""

    preview_shown = Signal()  # the held-out pair of the prepared data is shown
    run_finished = Signal(object)  # RunOutcome
    run_failed = Signal(str)  # the message shown in the panel

    def __init__(
        self,
        model_panel: Any,
        threads: Callable[[], int | None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model_panel = model_panel
        self._threads = threads or model_panel.threads
        self._worker: FinetuneWorker | None = None
        self._control: Any = None  # RunControl of the run in progress
        self.state = IDLE
        self.outcome: RunOutcome | None = None
        self.dock: QDockWidget | None = None
        self._reset_points(200)

        self.banner = Banner()
        self.source = QComboBox()
        for key, label in SOURCES:
            self.source.addItem(label, key)
        self.photos = FolderField("Folder of clean photos")
        self.weather = QComboBox()
        self.preset = QComboBox()
        self.degraded = FolderField("Folder of degraded photos")
        self.clean = FolderField("Folder of the clean photos (same file names)")
        self._weather_row = weather_row = QWidget()
        row = QHBoxLayout(weather_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.weather, 1)
        row.addWidget(QLabel("Preset"))
        row.addWidget(self.preset, 1)

        self.network = QComboBox()
        for arch in PHOTO_WEATHER:
            self.network.addItem(arch, arch)
        self.start_label = QLabel(objectName="muted", wordWrap=True)
        self.steps = QSpinBox(minimum=1, maximum=1_000_000, singleStep=50, value=200)
        self.lr = QLineEdit(placeholderText="default (a fifth of the network's)")
        validator = QDoubleValidator(0.0, 1.0, 12)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.lr.setValidator(validator)
        self.crop = QSpinBox(minimum=0, maximum=2048, singleStep=16, suffix=" px")
        self.crop.setSpecialValueText("Default")
        self.project_test = QCheckBox("Also score the project's test photos")
        self.project_test.setToolTip("Shows what the run forgets elsewhere (a source checkout with the data only)")
        self._project_data = _has_project_data()
        self.project_test.setChecked(self._project_data)
        self.project_test.setVisible(self._project_data)

        self.description = QLabel(objectName="muted", wordWrap=True)
        self.thumbs = {name: Thumb(name.capitalize()) for name in ("degraded", "restored", "clean")}
        thumbs = QGridLayout()
        thumbs.setSpacing(6)
        for col, t in enumerate(self.thumbs.values()):
            thumbs.addWidget(t, 0, col)
        self.preview_button = QPushButton("Preview pair")
        self.preview_button.setToolTip("Read the data and show one held-out validation pair")
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop at the next step; the best weights so far are saved")
        buttons = QHBoxLayout()
        for b in (self.preview_button, self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        self.progress = QProgressBar(textVisible=False, maximumHeight=8)
        self.rate = QLabel(objectName="muted")
        self.loss_plot = _plot("Training loss", "")
        self.psnr_plot = _plot("Validation PSNR-Y", "dB")
        self.loss_raw = self.loss_plot.plot([], [])
        self.loss_smooth = self.loss_plot.plot([], [])
        for curve in (self.loss_raw, self.loss_smooth):
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
        self.psnr_curve = self.psnr_plot.plot([], [], symbol="o", symbolSize=6)
        self.start_line = pg.InfiniteLine(angle=0, movable=False)
        self.start_line.hide()
        self.psnr_plot.addItem(self.start_line)

        self.summary = QLabel(objectName="muted", wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.output_label = QElidingLabel("", objectName="muted")
        self.output_label.setElideMode(Qt.TextElideMode.ElideMiddle)
        self.output_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.use_button = QPushButton("Use these weights")
        self.use_button.setToolTip("Select the fine-tuned file in the Model panel and restore the photo with it")

        self.form = form = _form()
        form.addRow("Network", self.network)
        form.addRow("", self.start_label)
        form.addRow("Data", self.source)
        form.addRow("Folder", self.photos)
        form.addRow("Weather", weather_row)
        form.addRow("Degraded", self.degraded)
        form.addRow("Clean", self.clean)
        steps_row = QWidget()
        row = QHBoxLayout(steps_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.steps, 1)
        row.addWidget(QLabel("Crop"))
        row.addWidget(self.crop, 1)
        train = _form()
        train.addRow("Steps", steps_row)
        train.addRow("Learning rate", self.lr)
        train.addRow("", self.project_test)
        plots = QHBoxLayout()
        plots.setSpacing(6)
        plots.addWidget(self.loss_plot, 1)
        plots.addWidget(self.psnr_plot, 1)
        result = QHBoxLayout()
        result.addWidget(self.output_label, 1)
        result.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 8)
        layout.setSpacing(4)
        layout.addWidget(self.banner)
        layout.addWidget(_section("What to fine-tune"))
        layout.addLayout(form)
        layout.addWidget(_section("Training"))
        layout.addLayout(train)
        layout.addSpacing(4)
        layout.addLayout(thumbs)
        layout.addWidget(self.description)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.rate)
        layout.addLayout(plots, 1)
        layout.addWidget(self.summary)
        layout.addLayout(result)

        self.redraw_timer = QTimer(self, interval=REDRAW_MS, timeout=self._redraw)
        self.source.currentIndexChanged.connect(self._on_source)
        self.network.currentIndexChanged.connect(self._on_network)
        self.weather.currentIndexChanged.connect(self._on_weather)
        self.preview_button.clicked.connect(self.preview)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.use_button.clicked.connect(self.use_weights)
        model_panel.changed.connect(self._follow_model_panel)
        self._on_source()
        self._on_network()
        self._follow_model_panel()
        self._clear_result()
        self._apply_colors()
        self._set_state(IDLE)

    # Fields -----------------------------------------------------------------------------------------------
    def arch(self) -> str:
        return self.network.currentData()

    def set_network(self, arch: str) -> None:
        index = self.network.findData(arch)
        if index < 0:
            raise KeyError(f"{arch!r} cannot be fine-tuned: one of {', '.join(PHOTO_WEATHER)}")
        self.network.setCurrentIndex(index)

    def set_photos(self, folder: str | Path, weather: str | None = None, preset: str | None = None) -> None:
        """Clean photos with weather synthesized (the network's first weather and preset by default)."""
        self.source.setCurrentIndex(self.source.findData("photos"))
        self.photos.set_path(folder)
        if weather is not None:
            self._select(self.weather, weather)
        if preset is not None:
            self._select(self.preset, preset)

    def set_pairs(self, degraded: str | Path, clean: str | Path) -> None:
        self.source.setCurrentIndex(self.source.findData("pairs"))
        self.degraded.set_path(degraded)
        self.clean.set_path(clean)

    @staticmethod
    def _select(combo: QComboBox, value: str) -> None:
        index = combo.findData(value)
        if index < 0:
            raise KeyError(f"{value!r}: one of {', '.join(combo.itemData(i) for i in range(combo.count()))}")
        combo.setCurrentIndex(index)

    def _on_source(self) -> None:
        photos = self.source.currentData() == "photos"
        for field, show in ((self.photos, photos), (self._weather_row, photos), (self.degraded, not photos)):
            self.form.setRowVisible(field, show)
        self.form.setRowVisible(self.clean, not photos)

    def _on_network(self) -> None:
        arch = self.arch()
        self.weather.blockSignals(True)
        self.weather.clear()
        for weather in PHOTO_WEATHER.get(arch, ()):
            self.weather.addItem(WEATHER_LABELS.get(weather, weather), weather)
        self.weather.blockSignals(False)
        self._on_weather()
        self._show_start_weights()

    def _on_weather(self) -> None:
        self.preset.clear()
        for preset in PRESETS.get(self.weather.currentData() or "", ()):
            self.preset.addItem(preset, preset)

    def _follow_model_panel(self) -> None:
        """The network follows the model panel's (unless that is Auto, or a run is on)."""
        if self.state == IDLE and self.model_panel.arch() in PHOTO_WEATHER:
            self.set_network(self.model_panel.arch())
        self._show_start_weights()

    def start_weights(self) -> Path | None:
        """The model panel's weights file when it is a trained file for this network; None: the shipped default."""
        if self.model_panel.arch() != self.arch():
            return None
        weights = self.model_panel.request_fields().get("weights")
        return Path(weights) if weights and Path(weights).is_file() else None

    def _show_start_weights(self) -> None:
        from weatherstudio.weights import default_weights

        arch = self.arch()
        chosen = self.start_weights()
        if chosen is not None:
            text = f"Starts from {chosen.name} (the Model panel's weights)"
        elif (shipped := default_weights(arch)) is not None:
            text = f"Starts from {shipped.name} (shipped)"
        else:
            text = f"⚠ No trained {arch} weights ship: choose a file in the Model panel"
        if self.model_panel.is_auto():
            text = "The Model panel is on Auto: choose the network to fine-tune here.\n" + text
        self.start_label.setText(text)

    def spec(self) -> FinetuneSpec:
        """The run the fields describe; a :class:`WeatherStudioError` names a field that is missing or wrong."""
        if self.source.currentData() == "photos":
            folder = self.photos.path()
            if folder is None:
                raise WeatherStudioError("Choose the folder of clean photos to fine-tune on.")
            data = FinetuneData(photos=folder, weather=self.weather.currentData(), preset=self.preset.currentData())
        else:
            degraded, clean = self.degraded.path(), self.clean.path()
            if degraded is None or clean is None:
                raise WeatherStudioError("Choose both folders: the degraded photos and the clean ones.")
            for p in (degraded, clean):
                if not p.is_dir():
                    raise WeatherStudioError(f"{p}: no such folder")
            data = FinetuneData(degraded=degraded, clean=clean)
        lr = None
        if self.lr.text().strip():
            try:
                lr = float(self.lr.text().replace(",", "."))
            except ValueError:
                raise WeatherStudioError(f"Learning rate {self.lr.text()!r}: give a number such as 2e-5") from None
            if not 0 < lr < 1:
                raise WeatherStudioError(f"Learning rate {lr:g}: give a positive number below 1 (e.g. 2e-5)")
        return FinetuneSpec(
            self.arch(),
            data,
            weights=self.start_weights(),
            steps=self.steps.value(),
            lr=lr,
            crop=self.crop.value() or None,
            project_test=self._project_data and self.project_test.isChecked(),
            device=self.model_panel.request_fields().get("device") or "auto",
        )

    def _spec_or_message(self) -> FinetuneSpec | None:
        try:
            return self.spec()
        except WeatherStudioError as exc:
            self._error(str(exc))
            return None

    # Commands ---------------------------------------------------------------------------------------------
    def open_panel(self) -> None:
        """Show the panel's dock (Tools ▸ Fine-tune…)."""
        if self.dock is not None:
            self.dock.show()
            self.dock.raise_()

    def preview(self) -> None:
        """Read the data on the worker and show one held-out pair (degraded / clean)."""
        if self.state != IDLE or (spec := self._spec_or_message()) is None:
            return
        self.banner.dismiss()
        self._set_state(PREPARING)
        self.rate.setText("Reading the data…")
        self.worker().prepare(spec, self._threads())

    def start(self) -> None:
        """Fine-tune with the fields' settings (the data is read first unless just previewed)."""
        from weatherstudio.engine.control import RunControl

        if self.state != IDLE or (spec := self._spec_or_message()) is None:
            return
        self.banner.dismiss()
        self._clear_result()
        self._reset_points(spec.steps)
        self._redraw(force=True)
        self._control = RunControl()
        self._set_state(STARTING)
        self.rate.setText("Reading the data and scoring the starting weights…")
        self.worker().run_job(spec, self._control, self._threads())

    def toggle_pause(self) -> None:
        """Pause the run at the next step, or resume it."""
        if self._control is None:
            return
        if self.state == RUNNING:
            self._control.pause()
            self._set_state(PAUSED)
            self.rate.setText(f"Paused at step {self.step} of {self.total}")
        elif self.state == PAUSED:
            self._control.resume()
            self._times.clear()  # the pause is no part of the speed
            self._set_state(RUNNING)

    def stop(self) -> None:
        """Stop at the next step; the engine keeps the best weights seen and writes them."""
        if self._control is None or self.state not in (STARTING, RUNNING, PAUSED):
            return
        self._control.stop()
        self._set_state(STOPPING)
        self.rate.setText("Stopping — scoring the last weights and saving the best…")

    def use_weights(self) -> None:
        """Make the fine-tuned file the model panel's weights (the window restores the photo with it)."""
        if self.outcome is None:
            return
        mp, output = self.model_panel, self.outcome.result.output
        if mp.arch() != self.outcome.arch:
            mp.set_arch(self.outcome.arch)
        mp.set_config(self.outcome.config_name)
        mp.refresh_weights(select=output)
        self.rate.setText(f"The Model panel now uses {Path(output).name}")

    def is_running(self) -> bool:
        return self.state in (STARTING, RUNNING, PAUSED, STOPPING)

    def confirm_stop(self) -> bool:
        """Ask whether to stop the run in progress (a test replaces this method)."""
        answer = QMessageBox.question(
            self.window(),
            "Stop fine-tuning?",
            "A fine-tuning run is in progress. Stop it and close WeatherStudio?\n"
            "The best weights found so far are saved.",
        )
        return answer == QMessageBox.StandardButton.Yes

    def may_close(self) -> bool:
        """For the window's close: True when nothing runs, or the user agreed to stop (the run is then joined)."""
        if not self.is_running():
            return True
        if not self.confirm_stop():
            return False
        self.shutdown()
        return True

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop any run and join the worker thread; True when it ended in time."""
        self.redraw_timer.stop()
        if self._control is not None:
            self._control.stop()
        if self._worker is None:
            return True
        return self._worker.stop(timeout_ms)

    def message(self) -> str:
        """The panel's message (an error about the data, …), or ""."""
        return self.banner.text()

    # The worker ----------------------------------------------------------------------------------------------
    def worker(self) -> FinetuneWorker:
        """The worker thread (started on first use)."""
        if self._worker is None:
            w = FinetuneWorker(self, self._threads())
            w.prepared.connect(self._on_prepared)
            w.run_started.connect(self._on_run_started)
            w.stepped.connect(self._on_step)
            w.validated.connect(self._on_validated)
            w.previewed.connect(self._on_previewed)
            w.run_finished.connect(self._on_finished)
            w.cancelled.connect(self._on_cancelled)
            w.failed.connect(self._on_failed)
            w.start()
            self._worker = w
        return self._worker

    def _on_prepared(self, p: Prepared) -> None:
        self.thumbs["degraded"].set_image(p.degraded, "Degraded")
        self.thumbs["restored"].set_image(None, "Restored: at Start")
        self.thumbs["clean"].set_image(p.clean, "Clean")
        skipped = f"\nSkipped: {', '.join(p.skipped[:5])}" + ("…" if len(p.skipped) > 5 else "") if p.skipped else ""
        self.description.setText(p.description + skipped)
        if self.state == PREPARING:
            self._set_state(IDLE)
            self.rate.setText("The held-out pair: the run is scored on images like this one")
            self.preview_shown.emit()

    def _on_run_started(self) -> None:
        if self.state == STARTING:
            self._set_state(RUNNING)
        self.redraw_timer.start()

    def _on_step(self, step: int, loss: float, lr: float) -> None:
        """Every step: store the point (cheap); the timer redraws."""
        self.step = step
        self.steps_x.append(step)
        self.loss_y.append(loss)
        last = self.smooth_y[-1] if self.smooth_y else loss
        self.smooth_y.append(EMA * last + (1 - EMA) * loss if math.isfinite(loss) else last)
        self._times.append((time.perf_counter(), step))
        self._dirty = True

    def _on_validated(self, step: int, psnr: float) -> None:
        self.val_x.append(step)
        self.val_y.append(psnr)
        self._dirty = True

    def _on_previewed(self, p: FinetunePreview) -> None:
        self.thumbs["degraded"].set_image(p.degraded, "Degraded")
        what = "Start" if p.step == 0 else f"Step {p.step}"
        self.thumbs["restored"].set_image(p.restored, f"{what} · {p.psnr_y:.2f} dB")
        self.thumbs["restored"].setToolTip(f"Restored by the weights of {what.lower()}: {p.psnr_y:.2f} dB PSNR-Y")
        self.thumbs["clean"].set_image(p.clean, "Clean")

    def _on_finished(self, outcome: RunOutcome) -> None:
        self._end_run()
        self.outcome = outcome
        s = outcome.result.summary()
        lines = [
            f"Validation PSNR-Y {s['val_before']:.2f} → {s['val_after']:.2f} dB"
            + (f" (best at step {s['best_step']})" if s["best_step"] else " (the starting weights stayed best)"),
        ]
        if s["test_before"] is not None and s["test_after"] is not None:
            lines.append(f"Project test photos {s['test_before']:.2f} → {s['test_after']:.2f} dB")
        how = "Stopped after" if s["stopped"] else "Finished:"
        lines.append(f"{how} {s['steps']} steps in {_duration(s['seconds'])} ({s['precision']})")
        self.summary.setText("\n".join(lines))
        self.output_label.setText(f"Saved {s['output']}")
        self.output_label.setToolTip(s["output"])
        self.use_button.setEnabled(True)
        self.rate.setText(f"Done: {s['steps']} steps" + (" (stopped)" if s["stopped"] else ""))
        self.run_finished.emit(outcome)

    def _on_cancelled(self) -> None:
        self._end_run()
        self.rate.setText("Stopped before the first step: nothing was written")

    def _on_failed(self, message: str) -> None:
        self._end_run()
        self.rate.setText("")
        self._error(message)

    def _end_run(self) -> None:
        self.redraw_timer.stop()
        self._control = None
        self._set_state(IDLE)
        self._redraw(force=True)

    def _error(self, message: str) -> None:
        self.banner.show_message("error", message)
        self.run_failed.emit(message)

    # Drawing ---------------------------------------------------------------------------------------------------
    def _reset_points(self, total: int) -> None:
        self.total = total
        self.step = 0
        self.steps_x: list[int] = []
        self.loss_y: list[float] = []
        self.smooth_y: list[float] = []
        self.val_x: list[int] = []
        self.val_y: list[float] = []
        self._times: deque[tuple[float, int]] = deque(maxlen=40)
        self._dirty = True

    def _redraw(self, force: bool = False) -> None:
        """Curves, progress and speed from the stored points (the timer's tick: only when something changed)."""
        if not (self._dirty or force):
            return
        self._dirty = False
        self.loss_raw.setData(self.steps_x, self.loss_y)
        self.loss_smooth.setData(self.steps_x, self.smooth_y)
        self.psnr_curve.setData(self.val_x, self.val_y)
        if self.loss_y:  # the smoothed curve in full, the raw one's rare spikes clipped
            raw = np.asarray(self.loss_y[-2000:], np.float64)
            raw = raw[np.isfinite(raw)]
            if raw.size:
                top = max(float(np.percentile(raw, 95)), max(self.smooth_y[-2000:]))
                self.loss_plot.setYRange(float(raw.min()), top, padding=0.05)
        if self.val_y and math.isfinite(self.val_y[0]):
            self.start_line.setValue(self.val_y[0])
            self.start_line.show()
        else:
            self.start_line.hide()
        for plot in (self.loss_plot, self.psnr_plot):
            plot.setXRange(0, max(self.total, 1), padding=0.02)
        self.progress.setMaximum(max(self.total, 1))
        self.progress.setValue(self.step)
        if self.state == RUNNING:
            self.rate.setText(self._speed_text())

    def _speed_text(self) -> str:
        text = f"Step {self.step} of {self.total}"
        if len(self._times) >= 2:
            (t0, s0), (t1, s1) = self._times[0], self._times[-1]
            rate = (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0
            if rate > 0:
                left = (self.total - self.step) / rate
                text += f" · {rate:.1f} steps/s · about {_duration(left)} left"
        return text

    def _clear_result(self) -> None:
        self.outcome = None
        self.summary.setText("The scores before and after, and the file, appear here when the run ends.")
        self.output_label.setText("")
        self.output_label.setToolTip("")
        self.use_button.setEnabled(False)

    def _set_state(self, state: str) -> None:
        self.state = state
        idle = state == IDLE
        fields = (self.network, self.source, self.photos, self._weather_row, self.degraded, self.clean)
        for w in (*fields, self.steps, self.crop, self.lr, self.project_test):
            w.setEnabled(idle)
        self.preview_button.setEnabled(idle)
        self.start_button.setEnabled(idle)
        self.pause_button.setEnabled(state in (RUNNING, PAUSED))
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        self.stop_button.setEnabled(state in (STARTING, RUNNING, PAUSED))
        self.use_button.setEnabled(idle and self.outcome is not None)

    def _apply_colors(self) -> None:
        """Plots in the palette's colours (the theme can change while the panel lives)."""
        pal = self.palette()
        base, text = pal.color(pal.ColorRole.Base), pal.color(pal.ColorRole.Text)
        muted, accent = pal.color(pal.ColorRole.PlaceholderText), pal.color(pal.ColorRole.Highlight)
        faint = QColor(accent)
        faint.setAlpha(90)
        for plot in (self.loss_plot, self.psnr_plot):
            plot.setBackground(base)
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(muted))
                axis.setTextPen(pg.mkPen(text))
            plot.setTitle(plot.property("title"), color=text.name(), size="9pt")
        self.loss_raw.setPen(pg.mkPen(faint, width=1))
        self.loss_smooth.setPen(pg.mkPen(accent, width=2))
        self.psnr_curve.setPen(pg.mkPen(accent, width=2))
        self.psnr_curve.setSymbolBrush(accent)
        self.psnr_curve.setSymbolPen(pg.mkPen(accent))
        self.start_line.setPen(pg.mkPen(muted, width=1, style=Qt.PenStyle.DashLine))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_colors()


def _has_project_data() -> bool:
    """Whether the project's own data is here (a source checkout): then its test photos can be scored too."""
    from weatherstudio.engine.training import default_data_root

    root = default_data_root()
    return root is not None and (root / "clean").is_dir()


class FinetuneDock:
    """The Fine-tune dock of a window, built the first time it is opened (Tools ▸ Fine-tune…): a window that
    never fine-tunes holds no plots and no worker."""

    def __init__(self, window: QMainWindow, model_panel: Any, threads: Callable[[], int | None] | None) -> None:
        self.window, self.model_panel, self.threads = window, model_panel, threads
        self._panel: FinetunePanel | None = None
        self.action = QAction("&Fine-tune…", window)
        self.action.setStatusTip("Fine-tune the network on your own photos")
        self.action.triggered.connect(lambda: self.panel().open_panel())
        window.tools_menu.addAction(self.action)

    def panel(self) -> FinetunePanel:
        """The panel, built (hidden) on first use."""
        if self._panel is None:
            panel = FinetunePanel(self.model_panel, self.threads)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            scroll.setWidget(panel)
            scroll.setMinimumWidth(420)
            dock = QDockWidget("Fine-tune", self.window, objectName="finetune_dock")
            dock.setWidget(scroll)
            self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            dock.hide()
            panel.dock = dock
            panel.action = self.action
            self.window.view_menu.addAction(dock.toggleViewAction())
            self._panel = panel
        return self._panel

    def may_close(self) -> bool:
        return self._panel is None or self._panel.may_close()

    def shutdown(self) -> None:
        if self._panel is not None:
            self._panel.shutdown()


def install(window: QMainWindow, model_panel: Any, threads: Callable[[], int | None] | None = None) -> FinetuneDock:
    """Tools ▸ Fine-tune…: the panel goes in a right-hand dock, built when first opened."""
    return FinetuneDock(window, model_panel, threads)
