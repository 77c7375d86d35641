"""WeatherStudio's main window: the before/after viewer and the map inspector, the model panel, status and menus.

The window never runs a network itself: it builds a :class:`RestoreRequest` from the open file and the model
panel and hands it to the :class:`RestoreWorker`; results come back through queued signals tagged with a
generation, and anything from an older generation is dropped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from weatherstudio.gui import theme
from weatherstudio.gui.actions import build_actions, shortcut_table, update_enabled
from weatherstudio.gui.banner import Banner
from weatherstudio.gui.finetune_panel import install as install_finetune
from weatherstudio.gui.gc_guard import collect_on_gui_thread
from weatherstudio.gui.inspector import MapInspector
from weatherstudio.gui.menus import build_menus, build_toolbar
from weatherstudio.gui.model_panel import ModelPanel
from weatherstudio.gui.settings import Settings
from weatherstudio.gui.status import StatusBar
from weatherstudio.gui.viewer import MODES, CompareViewer, apply_view_state, view_state
from weatherstudio.gui.window_files import FileCommands
from weatherstudio.gui.window_video import VideoCommands, is_video
from weatherstudio.gui.worker import Loaded, ModelInfo, RestoreRequest, RestoreWorker, Result

DEBOUNCE_MS = 300
#: Widgets that use Space themselves (typing, pressing a button): holding Space there does not show the input.
_SPACE_USERS = ("QLineEdit", "QAbstractSpinBox", "QAbstractButton", "QComboBox", "QAbstractItemView")


class MainWindow(FileCommands, VideoCommands, QMainWindow):
    image_opened = Signal(str)  # a file was read and is shown
    restore_done = Signal()  # the full-resolution result is shown
    restore_failed = Signal(str)
    message_shown = Signal(str, str)  # level, text

    def __init__(
        self,
        settings: Settings | None = None,
        theme_name: str | None = None,
        worker_threads: int | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.setWindowTitle("WeatherStudio")
        self.setAcceptDrops(True)
        self.loaded: Any = None  # LoadedImage of the shown input
        self.doc_path = ""  # the file shown
        self.requested_path = ""  # the file the latest request restores (differs while a new one loads)
        self.result: Result | None = None
        self.generation = 0
        self.running = False
        self.batches: list[Any] = []
        self.decisions: dict[int, Any] = {}  # generation → what auto chose (the latest only)
        self._untrained_warning = False
        self.requested_frame: int | None = None
        self._no_remember: set[str] = set()
        self._holding_space = False
        self._closed = False

        self.banner = Banner()
        self.viewer = CompareViewer()
        self.inspector = MapInspector()
        self.tabs = QTabWidget(documentMode=True)
        self.tabs.addTab(self.viewer, "Compare")
        self.tabs.addTab(self.inspector, "Maps")
        self._init_video()
        central = QWidget()
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addWidget(self.banner)
        col.addWidget(self.tabs, 1)
        col.addWidget(self.timeline)
        self.setCentralWidget(central)

        self.model_panel = ModelPanel()
        self.model_dock = QDockWidget("Model", self, objectName="model_dock")
        self.model_dock.setWidget(self.model_panel)
        self.model_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.model_dock)
        self.status = StatusBar()
        self.setStatusBar(self.status)

        self.commands = build_actions(self)  # name → QAction (QWidget.actions() stays Qt's)
        self.recent_menu = build_menus(self, self.commands)
        self.toolbar = build_toolbar(self, self.commands)
        self.view_menu.addAction(self.model_dock.toggleViewAction())
        collect_on_gui_thread()  # worker threads never trigger a collection that destroys Qt objects
        self.finetune = install_finetune(self, self.model_panel, lambda: self.request_fields()["threads"])

        self.fixed_threads = worker_threads  # --threads N: overrides the panel's "use all cores"
        self.worker = RestoreWorker(self, worker_threads)
        w = self.worker
        w.loaded.connect(self._on_loaded)
        w.decided.connect(self._on_decided)
        w.model_ready.connect(self._on_model)
        w.preview_ready.connect(self._on_preview)
        w.tile_ready.connect(self._on_tile)
        w.progress.connect(self._on_progress)
        w.result_ready.connect(self._on_result)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.start()

        self.debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS, timeout=self.run_restore)
        self.model_panel.changed.connect(self.debounce.start)
        self.model_panel.changed.connect(self.forget_restored_frames)  # another network: other frames
        self.model_panel.rerun.connect(self.rerun)
        self.status.cancel_button.clicked.connect(self.cancel)
        self.viewer.hovered.connect(self._on_hover)
        self.viewer.view_changed.connect(self._show_zoom)
        self.inspector.vb.sigRangeChanged.connect(self._show_zoom)
        self.tabs.currentChanged.connect(self._on_tab)
        self.inspector.exported.connect(
            lambda paths: self.status.showMessage(f"Exported {len(paths)} files to {Path(paths[0]).parent}", 8000)
        )
        self.inspector.export_failed.connect(lambda msg: self.show_message("error", f"Export failed — {msg}"))
        QApplication.instance().installEventFilter(self)

        self._restore_settings(theme_name)
        self._fill_recent()
        self._update_actions()

    # Settings and theme ---------------------------------------------------------------------------------------
    def _restore_settings(self, theme_name: str | None) -> None:
        s = self.settings
        self.model_panel.load(s)
        if not self.restoreGeometry(s.get("geometry")):
            self.resize(1440, 900)
        self.restoreState(s.get("window_state"))
        self.set_theme(theme_name or s.get("theme"), persist=theme_name is None)
        mode = s.get("view_mode")
        self.set_mode(mode if mode in MODES else "split")
        self.inspector.last_folder = s.get("last_folder")
        hints = QApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_system_scheme)

    def _on_system_scheme(self, *_: object) -> None:
        if self.theme == "system":
            self.set_theme("system")

    def save_settings(self) -> None:
        s = self.settings
        s.set("geometry", self.saveGeometry())
        s.set("window_state", self.saveState())
        s.set("view_mode", self.viewer.mode)
        self.model_panel.save(s)
        s.sync()

    def set_theme(self, name: str, persist: bool = True) -> None:
        self.theme = name if name in theme.THEMES else "system"
        colors = theme.apply(QApplication.instance(), self.theme)
        self.viewer.set_colors(colors.canvas, colors.muted)
        self.inspector.set_colors(colors.canvas, colors.muted)
        self.commands[f"theme_{self.theme}"].setChecked(True)
        if persist:
            self.settings.set("theme", self.theme)

    # Messages ---------------------------------------------------------------------------------------------
    def show_message(self, level: str, text: str) -> None:
        """A message in the banner (never a modal box): errors, warnings, information."""
        self.banner.show_message(level, text)
        self.message_shown.emit(level, text)

    # Restore flow -----------------------------------------------------------------------------------------
    def open_path(self, path: str | Path, remember: bool = True, frame: int = 0) -> None:
        """Read ``path`` in the worker and restore it; it replaces the shown image once it has been read.

        A video opens at ``frame``."""
        path = str(Path(path))
        if not remember:
            self._no_remember.add(path)
        if is_video(path):
            self.open_video(path)
            self.run_restore(path, frame=frame)
            return
        self.run_restore(path)

    def rerun(self) -> None:
        self.run_restore()

    def run_restore(self, path: str | None = None, frame: int | None = None, ahead: bool = False) -> int:
        """Restore ``path`` (a video: ``frame``, default the one under the slider). ``ahead``: a frame playback
        restores before it is shown — no preview, no maps."""
        path = path or self.requested_path or self.doc_path
        if not path:
            return 0
        self.requested_path = path
        self.debounce.stop()
        self.frame_debounce.stop()
        if frame is None:
            frame = self.current_frame()
        self.requested_frame = frame
        fields = self.request_fields()
        if ahead:
            fields.update(maps=False, preview=False)
        request = RestoreRequest(path=path, frame=frame, **fields)
        self.generation = self.worker.submit(request)
        self.running = True
        verb = "Opening" if path != self.doc_path else "Restoring"
        how = "the network its weather calls for" if request.arch == "auto" else request.arch
        self.status.set_running(True, f"{verb} {Path(path).name} with {how}…")
        self._update_actions()
        return self.generation

    def request_fields(self) -> dict[str, Any]:
        """The model panel's choices, with ``--threads`` applied."""
        fields = self.model_panel.request_fields()
        if self.fixed_threads:
            fields["threads"] = self.fixed_threads
        return fields

    def cancel(self) -> None:
        if not self.running:
            return
        self.worker.cancel()
        self._finish_run("Cancelled — showing what was finished")

    def _current(self, gen: int) -> bool:
        return gen == self.generation

    def _finish_run(self, message: str = "") -> None:
        self.running = False
        self.status.set_running(False)
        if message:
            self.status.showMessage(message, 6000)
        self._update_actions()

    def _on_loaded(self, gen: int, loaded: Loaded) -> None:
        # Keyed by path, not generation: a newer request for the same file reuses this read (the worker caches it).
        if loaded.path != self.requested_path:
            return
        new_file = loaded.path != self.doc_path
        if loaded.frame is not None:
            new_file = self._on_video_loaded(loaded)
            if loaded.frame != self.timeline.frame:
                return  # a frame playback restores ahead: the viewer keeps the one under the slider
        elif self.video_path:
            self.leave_video()
        self.loaded, self.doc_path, self.result = loaded.image, loaded.path, None
        self.viewer.set_input(loaded.display, fit=new_file or loaded.frame is None)
        self.inspector.set_maps({}, {}, {}, (loaded.image.width, loaded.image.height))
        self.status.set_size(loaded.image.width, loaded.image.height, loaded.image.bit_depth)
        self.setWindowTitle(f"{Path(loaded.path).name} — WeatherStudio")
        if self.banner.level == "error":
            self.banner.dismiss()
        self._remember(loaded.path)
        self._update_actions()
        for note in getattr(loaded.image, "notes", []):
            self.show_message("info", f"{Path(loaded.path).name}: {note}")
        self.image_opened.emit(loaded.path)

    def _on_decided(self, gen: int, decision: Any, info: ModelInfo | None) -> None:
        """What ``auto`` chose for this photo or video, and how sure the classifier is (the user can override it)."""
        if not self._current(gen) or decision.guess is None:
            return
        self.decisions = {gen: decision}
        self.model_panel.set_status(f"Auto: {decision.message()}")
        if decision.pass_through:
            what = "video" if decision.video else "photo"
            self.show_message(
                "info",
                f"This {what} looks {decision.message()}. Choose a network in the Model panel to restore it anyway.",
            )

    def _on_model(self, gen: int, info: ModelInfo) -> None:
        if not self._current(gen):
            return
        label = f"{info.arch} ({info.config}) · {info.parameters:,} parameters"
        decision = self.decisions.get(gen)
        if decision is not None and decision.guess is not None:
            label = f"Auto: {decision.message()}\n{label}"
        if info.untrained:
            self.show_message(
                "warning",
                f"{info.arch} ({info.config}) runs with untrained, random weights — no "
                "trained weights ship for it yet, so this result is not a real restoration.",
            )
            self._untrained_warning = True
            self.model_panel.set_status(f"{label}\n⚠ untrained (random init)")
        else:
            if self.banner.level == "warning" and self._untrained_warning:  # other warnings stay
                self.banner.dismiss()
            self._untrained_warning = False
            self.model_panel.set_status(f"{label}\nweights: {Path(info.weights).name}")

    def _shown(self, gen: int) -> bool:
        """The running request restores what is on screen (not a frame playback restores ahead)."""
        return self._current(gen) and (self.requested_frame is None or self.requested_frame == self.timeline.frame)

    def _on_preview(self, gen: int, u8: np.ndarray) -> None:
        if self._shown(gen):
            self.viewer.set_output(u8, "preview")

    def _on_tile(self, gen: int, y: int, x: int, tile: np.ndarray) -> None:
        if self._shown(gen) and self.running:
            self.viewer.paint_tile(y, x, tile)

    def _on_progress(self, gen: int, done: int, total: int) -> None:
        if self._current(gen) and self.running:
            self.status.set_tiles(done, total)

    def _on_result(self, gen: int, result: Result) -> None:
        if not self._current(gen):
            return
        self._cache_result(result)
        if result.request.frame is not None and result.request.frame != self.timeline.frame:
            self._finish_run()
            if self.play_timer.isActive():
                self._prefetch_from(self.timeline.frame + 1)
            return  # restored ahead for playback
        self.result = result
        self.viewer.set_output(result.display, "done")
        self.viewer.set_diff(result.diff, result.diff_levels)
        h, w = result.image.shape[:2]
        model = result.model
        context = {
            "source": self.doc_path,
            "model": model.arch if model else "none (passed through)",
            "config": model.config if model else "",
            "weights": (model.weights or "untrained (random init)") if model else "",
        }
        self.inspector.set_maps(
            result.maps,
            result.specs,
            result.thumbnails,
            (w, h),
            Path(self.doc_path).stem,
            context,
            show=self.tabs.currentWidget() is self.inspector,
        )
        self.status.set_run(result.device, result.seconds, result.tiles)
        if self.banner.level == "error":  # a run that succeeded supersedes an earlier failure's message
            self.banner.dismiss()
        if model is None:  # auto found no weather: nothing was restored
            self._finish_run(result.notes[0] if result.notes else "Passed through unchanged")
            self.restore_done.emit()
            return
        notes = f" ({'; '.join(result.notes)})" if result.notes else ""
        self._finish_run(f"Restored in {result.seconds:.2f} s on {result.device}{notes}")
        self.restore_done.emit()

    def _on_failed(self, gen: int, stage: str, message: str) -> None:
        if not self._current(gen):
            return
        self.set_playing(False)  # a frame that fails stops playback (no retry at the frame rate)
        self._finish_run()
        if stage == "load":
            self.requested_path = self.doc_path  # keep working on the image that is shown
            if self.video_path:
                self.video_open_failed()
        text = f"Could not open the image — {message}" if stage == "load" else f"Restore failed — {message}"
        self.show_message("error", text)
        self.restore_failed.emit(text)

    def _on_cancelled(self, gen: int) -> None:
        if self._current(gen) and self.running:
            self._finish_run("Cancelled")

    def _update_actions(self) -> None:
        has_image = self.viewer.has_image()
        update_enabled(
            self.commands,
            {
                "always": True,
                "image": has_image,
                "result": self.result is not None,
                "running": self.running,
                "maps": bool(self.inspector.maps),
                "video": bool(self.video_path),
            },
        )

    # View ----------------------------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.viewer.set_mode(mode)
        self.commands[f"mode_{mode}"].setChecked(True)
        self.tabs.setCurrentWidget(self.viewer)

    def set_show_input(self, on: bool) -> None:
        self.viewer.set_show_input(on or self._holding_space)

    def _zoom_target(self) -> Any:
        return self.inspector if self.tabs.currentWidget() is self.inspector else self.viewer

    def zoom_fit(self) -> None:
        self._zoom_target().fit()

    def zoom_actual(self) -> None:
        if self._zoom_target() is self.viewer:
            self.viewer.actual_size()
        else:
            cx, cy, _ = view_state(self.inspector.vb)
            apply_view_state(self.inspector.vb, (cx, cy, self.devicePixelRatioF()))

    def zoom_in(self) -> None:
        self._zoom_by(1.25)

    def zoom_out(self) -> None:
        self._zoom_by(0.8)

    def _zoom_by(self, factor: float) -> None:
        if self._zoom_target() is self.viewer:
            self.viewer.zoom_by(factor)
        else:
            cx, cy, per_px = view_state(self.inspector.vb)
            apply_view_state(self.inspector.vb, (cx, cy, per_px / factor))

    def _show_zoom(self, *_: object) -> None:
        if not self.viewer.has_image():
            return
        if self._zoom_target() is self.viewer:
            self.status.set_zoom(self.viewer.zoom_percent())
        else:
            _, _, per_px = view_state(self.inspector.vb)
            self.status.set_zoom(100.0 * self.devicePixelRatioF() / per_px if per_px > 0 else 100.0)

    def show_compare(self) -> None:
        self.tabs.setCurrentWidget(self.viewer)

    def show_maps(self) -> None:
        self.tabs.setCurrentWidget(self.inspector)

    def _on_tab(self, index: int) -> None:
        # The inspector and the viewer share zoom and pan: carry the view across when switching.
        if self.tabs.widget(index) is self.inspector:
            self.inspector.refresh()
        if self.tabs.widget(index) is self.inspector and self.viewer.has_image():
            if self.viewer.auto_fit:
                QTimer.singleShot(0, self.inspector.fit)
            else:
                state = view_state(self.viewer.main_view())
                QTimer.singleShot(0, lambda: apply_view_state(self.inspector.vb, state))
        elif self.tabs.widget(index) is self.viewer and self.inspector.current and not self.viewer.auto_fit:
            state = view_state(self.inspector.vb)
            QTimer.singleShot(0, lambda: apply_view_state(self.viewer.main_view(), state))
        QTimer.singleShot(0, self._show_zoom)

    def _on_hover(self, x: float, y: float) -> None:
        if self.loaded is None or not (math.isfinite(x) and math.isfinite(y)):
            self.status.set_pixel(math.nan, math.nan, None, None, 8)
            return
        xi, yi = int(x), int(y)
        before = self.loaded.rgb[yi, xi]
        after = None
        if self.result is not None:
            after = self.result.image[yi, xi]
        elif self.viewer.output_u8 is not None:
            after = self.viewer.output_u8[yi, xi] / 255.0
        self.status.set_pixel(x, y, before, after, self.loaded.bit_depth)

    def export_map_dialog(self) -> None:
        self.show_maps()
        self.inspector.export_selected_dialog()

    def export_all_maps_dialog(self) -> None:
        self.inspector.export_all_dialog()

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{name}</td><td><b>{keys}</b></td></tr>" for name, keys in shortcut_table())
        box = QMessageBox(
            QMessageBox.Icon.NoIcon,
            "Keyboard shortcuts",
            f"<table cellpadding=3>{rows}</table>",
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setModal(False)
        box.show()

    def show_about(self) -> None:
        from weatherstudio import __version__

        QMessageBox.about(
            self,
            "About WeatherStudio",
            f"<b>WeatherStudio {__version__}</b><br>Removes rain and "
            "snow from photos, and shows what the networks see.",
        )

    # Keys and closing -------------------------------------------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Hold Space to see the input (anywhere in the window except in a text or number field)."""
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and event.key() == Qt.Key.Key_Space:
            focus = QApplication.focusWidget()
            typing = focus is not None and any(focus.inherits(c) for c in _SPACE_USERS)
            ours = obj.isWidgetType() and obj.window() is self
            if ours and not typing and self.viewer.has_image():
                if not event.isAutoRepeat():
                    self._holding_space = kind == QEvent.Type.KeyPress
                    self.viewer.set_show_input(self._holding_space or self.commands["show_input"].isChecked())
                return True
        return super().eventFilter(obj, event)

    @property
    def finetune_panel(self) -> Any:
        """The Fine-tune panel (built on first use)."""
        return self.finetune.panel()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Save the settings, then stop and join every thread (no 'QThread destroyed while running').

        A fine-tuning run in progress is stopped only if the user agrees (else the window stays open)."""
        if not self._closed and not self.finetune.may_close():
            event.ignore()
            return
        if not self._closed:
            self._closed = True
            self.save_settings()
            QApplication.instance().removeEventFilter(self)
            hints = QApplication.styleHints()
            if hasattr(hints, "colorSchemeChanged"):
                hints.colorSchemeChanged.disconnect(self._on_system_scheme)
            self.debounce.stop()
            self._stop_video_threads()
            self.worker.stop()
            self.finetune.shutdown()
            for batch in self.batches:
                batch.cancel()
                batch.wait(30_000)
        super().closeEvent(event)
