"""The window's file commands: open (dialog, recent, drop, sample), save the result, and batch a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from weatherstudio.gui.batch import BatchProgress, BatchWorker
from weatherstudio.gui.save_dialog import SaveDialog
from weatherstudio.samples import default_sample

OPEN_FILTER = (
    "Photos and videos (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.bmp *.gif *.mp4 *.m4v *.mov *.mkv *.webm *.avi);;"
    "Photos (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.bmp *.gif);;Videos (*.mp4 *.m4v *.mov *.mkv *.webm *.avi);;"
    "All files (*)"
)


class FileCommands:
    """Mixed into :class:`~weatherstudio.gui.main_window.MainWindow` (uses its settings, banner, worker...)."""

    # Open ------------------------------------------------------------------------------------------------------
    def open_dialog(self: Any) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a photo", self.settings.get("last_folder"), OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_sample(self: Any) -> bool:
        entry = self.model_panel.entries.get(self.model_panel.arch())
        # a photo with the model's weather (rain/snow) if one ships, else any
        sample = default_sample(getattr(entry.cls, "task", None) if entry else None) or default_sample()
        if sample is None:
            self.show_message("info", "No sample photo ships with this build yet: open one of your own (Ctrl+O).")
            return False
        self.open_path(sample.path, remember=False)
        return True

    def _fill_recent(self: Any) -> None:
        menu = self.recent_menu
        menu.clear()
        files = self.settings.recent_files()
        for path in files:
            action = QAction(Path(path).name, menu)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
            menu.addAction(action)
        if files:
            menu.addSeparator()
            menu.addAction("Clear Menu", self._clear_recent)
        else:
            menu.addAction("No recent files").setEnabled(False)

    def _clear_recent(self: Any) -> None:
        self.settings.clear_recent()
        self._fill_recent()

    def _remember(self: Any, path: str) -> None:
        if path in self._no_remember:
            return
        self.settings.add_recent(path)
        self.settings.set("last_folder", str(Path(path).parent))
        self._fill_recent()

    # Drag and drop ----------------------------------------------------------------------------------------------
    def dragEnterEvent(self: Any, event: Any) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self: Any, event: Any) -> None:  # noqa: N802 - Qt override
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        if paths[0].is_dir():
            self.batch_dialog(paths[0])
        else:
            self.open_path(paths[0])

    # Save ------------------------------------------------------------------------------------------------------
    def save_dialog(self: Any) -> None:
        if self.result is None or self.loaded is None:
            return
        s = self.settings
        dialog = SaveDialog(
            Path(self.doc_path),
            self.loaded.bit_depth,
            s.get("save_format"),
            s.get("save_bit_depth"),
            s.get("jpeg_quality"),
            folder=Path(s.get("last_folder")) if s.get("last_folder") else None,
            parent=self,
        )
        self._save_dialog = dialog
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        path, fmt, depth, quality = dialog.values()
        s.set("save_format", fmt)
        s.set("save_bit_depth", dialog.depth.currentData() or 0)
        s.set("jpeg_quality", dialog.quality.value())
        overwrite = False
        if path.exists() and path.resolve() != Path(self.doc_path).resolve():
            answer = QMessageBox.question(self, "Replace file?", f"{path.name} already exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            overwrite = True
        self.save_result(path, depth, quality, overwrite)

    def save_result(
        self: Any,
        path: str | Path,
        bit_depth: int | None = None,
        quality: int | None = None,
        overwrite: bool = False,
    ) -> Path | None:
        """Write the restored image with the input's metadata; errors (e.g. the input itself) go to the banner."""
        from weatherstudio.core.errors import WeatherStudioError
        from weatherstudio.core.image_io import write_image

        if self.result is None or self.loaded is None:
            self.show_message("error", "Nothing to save yet: open a photo and wait for the result.")
            return None
        try:
            out = write_image(
                path,
                self.result.image,
                alpha=self.loaded.alpha,
                like=self.loaded,
                bit_depth=bit_depth,
                quality=quality,
                overwrite=overwrite,
                source_paths=[self.doc_path],
            )
        except WeatherStudioError as exc:
            self.show_message("error", f"Not saved — {exc}")
            return None
        self.settings.set("last_folder", str(Path(out).parent))
        self.statusBar().showMessage(f"Saved {out}", 8000)
        return Path(out)

    # Batch -----------------------------------------------------------------------------------------------------
    def batch_dialog(self: Any, folder: Path | None = None) -> None:
        if folder is None:
            start = self.settings.get("last_folder")
            chosen = QFileDialog.getExistingDirectory(self, "Folder of photos to restore", start)
            if not chosen:
                return
            folder = Path(chosen)
        out = QFileDialog.getExistingDirectory(self, "Save the restored photos in…", str(folder))
        if out:
            self.start_batch(folder, Path(out))

    def start_batch(self: Any, folder: str | Path, out_dir: str | Path) -> BatchWorker | None:
        """Restore every image in ``folder`` into ``out_dir`` with the current model; returns the running worker."""
        from weatherstudio.core.errors import WeatherStudioError
        from weatherstudio.core.image_io import list_images
        from weatherstudio.gui.worker import RestoreRequest

        try:
            files = list_images(folder)
        except WeatherStudioError as exc:
            self.show_message("error", str(exc))
            return None
        if not files:
            self.show_message("info", f"{folder}: no images to restore (JPEG, PNG, TIFF, WebP, BMP).")
            return None
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        request = RestoreRequest(path="", **self.request_fields())
        worker = BatchWorker(files, Path(out_dir), request, self)
        worker.done.connect(lambda ok, bad, cancelled: self._batch_done(worker, ok, bad, cancelled))
        self.batch_progress = BatchProgress(worker, self)
        self.batches.append(worker)
        self.batch_progress.show()
        return worker

    def _batch_done(self: Any, worker: BatchWorker, ok: int, failed: int, cancelled: bool) -> None:
        state = "cancelled" if cancelled else "finished"
        self.statusBar().showMessage(f"Batch {state}: {ok} restored, {failed} failed → {worker.out_dir}", 10000)
        if failed:
            self.show_message("error", f"Batch: {failed} file(s) failed — " + "; ".join(worker.errors[:3]))
