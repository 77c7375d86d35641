"""Batch: restore every image of a folder with the current model into an output folder, with a progress dialog.

Each output keeps its input's format, bit depth and metadata (``write_image(like=...)``) and is named
``<stem>_restored<ext>`` (numbered rather than replacing anything). A file that fails is reported and skipped.
"""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from weatherstudio.gui.save_dialog import suggested_path
from weatherstudio.gui.worker import RestoreRequest, load_for_request

STEPS = 1000  # progress units per image (tiles fill them in)


class BatchWorker(QThread):
    progress = Signal(int, int, str, int, int)  # image index, image count, file name, tiles done, tiles total
    file_done = Signal(str, str)  # input, output
    file_failed = Signal(str, str)  # input, message
    done = Signal(int, int, bool)  # succeeded, failed, cancelled

    def __init__(self, files: list[Path], out_dir: Path, request: RestoreRequest, parent: QWidget | None = None):
        super().__init__(parent)
        self.files = list(files)
        self.out_dir = Path(out_dir)
        self.request = replace(request, maps=False, preview=False)
        self._cancel = threading.Event()
        self.outputs: list[Path] = []
        self.errors: list[str] = []

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        from weatherstudio.core.errors import WeatherStudioError
        from weatherstudio.core.image_io import read_image, write_image
        from weatherstudio.engine.restore import RestoreCancelled, RestoreOptions, restore
        from weatherstudio.models.weightfile import WeightsError

        ok = 0
        try:
            model, _ = load_for_request(self.request)
        except (WeatherStudioError, WeightsError) as exc:
            self.errors.append(str(exc))
            self.file_failed.emit("", str(exc))
            self.done.emit(0, len(self.files), False)
            return
        r = self.request
        options = RestoreOptions(r.device, r.tile, r.overlap, r.fp16, return_maps=False)
        for i, src in enumerate(self.files):
            if self._cancel.is_set():
                break
            self.progress.emit(i, len(self.files), src.name, 0, 1)
            try:
                loaded = read_image(src)
                result = restore(
                    loaded.rgb,
                    model,
                    options,
                    progress=lambda d, t, i=i, n=src.name: self.progress.emit(i, len(self.files), n, d, t),
                    should_cancel=self._cancel.is_set,
                )
                out = write_image(
                    suggested_path(src, src.suffix.lower(), self.out_dir),
                    result.image,
                    alpha=loaded.alpha,
                    like=loaded,
                    source_paths=[src],
                )
                self.outputs.append(out)
                ok += 1
                self.file_done.emit(str(src), str(out))
            except RestoreCancelled:
                break
            except Exception as exc:  # noqa: BLE001 - one bad file must not end the batch
                if not isinstance(exc, WeatherStudioError | WeightsError | MemoryError) and sys.stderr:
                    traceback.print_exc(file=sys.stderr)
                self.errors.append(f"{src.name}: {exc}")
                self.file_failed.emit(str(src), str(exc))
        self.done.emit(ok, len(self.errors), self._cancel.is_set())


class BatchProgress(QProgressDialog):
    """A cancellable progress dialog bound to a :class:`BatchWorker` (which it starts)."""

    def __init__(self, worker: BatchWorker, parent: QWidget | None = None) -> None:
        super().__init__("Preparing the model…", "Cancel", 0, max(1, len(worker.files)) * STEPS, parent)
        self.setWindowTitle("Batch restore")
        self.setMinimumWidth(460)
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.worker = worker
        worker.progress.connect(self._on_progress)
        worker.done.connect(self._on_done)
        self.canceled.connect(worker.cancel)
        worker.start()

    def _on_progress(self, index: int, count: int, name: str, done: int, total: int) -> None:
        self.setValue(index * STEPS + int(STEPS * done / max(total, 1)))
        tiles = f" — tile {done} of {total}" if total > 1 else ""
        self.setLabelText(f"Restoring {index + 1} of {count}: {name}{tiles}")

    def _on_done(self, ok: int, failed: int, cancelled: bool) -> None:
        self.setValue(self.maximum())
        self.setCancelButtonText("Close")
        try:
            self.canceled.disconnect(self.worker.cancel)
        except (RuntimeError, TypeError):
            pass
        self.canceled.connect(self.close)
        state = "Cancelled" if cancelled else "Done"
        text = f"{state}: {ok} restored into {self.worker.out_dir}"
        if failed:
            text += f"; {failed} failed:\n" + "\n".join(self.worker.errors[:5])
        self.setLabelText(text)
