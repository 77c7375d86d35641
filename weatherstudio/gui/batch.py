"""Batch: restore every image of a folder with the current model into an output folder, with a progress dialog.

The work is :meth:`weatherstudio.engine.session.Session.restore_files`, the same loop as
``weatherstudio remove`` (a video network carries its memory from file to file); this module only runs it on a
:class:`~weatherstudio.gui.worker.SessionThread` and shows its progress. Each output keeps its input's format,
bit depth and metadata and is named ``<stem>_restored<ext>`` (numbered rather than replacing anything).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from weatherstudio.gui.save_dialog import suggested_path
from weatherstudio.gui.worker import RestoreRequest, SessionThread, error_message
from weatherstudio.gui.worker_progress import WorkerProgress

STEPS = 1000  # progress units per image (tiles fill them in)


class BatchWorker(SessionThread):
    progress = Signal(int, int, str, int, int)  # image index, image count, file name, tiles done, tiles total
    file_done = Signal(str, str)  # input, output
    file_failed = Signal(str, str)  # input, message
    done = Signal(int, int, bool)  # succeeded, failed, cancelled

    def __init__(self, files: list[Path], out_dir: Path, request: RestoreRequest, parent: QWidget | None = None):
        super().__init__(parent, request.threads)
        self.files = list(files)
        self.out_dir = Path(out_dir)
        self.request = replace(request, maps=False, preview=False)  # a batch computes no maps, no previews
        self._cancel = threading.Event()
        self.outputs: list[Path] = []
        self.errors: list[str] = []

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        from weatherstudio.engine.pipeline import output_suffix

        self._start_in_thread()
        ok = 0
        n = len(self.files)
        try:
            outcomes = self.session.restore_files(
                self.files,
                lambda src: suggested_path(src, output_suffix(src), self.out_dir),
                self.request.choice(),
                self.request.options(),
                progress=lambda i, src, d, t: self.progress.emit(i, n, src.name, d, t),
                should_cancel=self._cancel.is_set,
            )
            for outcome in outcomes:
                if outcome.error:
                    self.errors.append(f"{outcome.source.name}: {outcome.error}")
                    self.file_failed.emit(str(outcome.source), outcome.error)
                    continue
                self.outputs.append(outcome.output)
                ok += 1
                self.file_done.emit(str(outcome.source), str(outcome.output))
        except Exception as exc:  # noqa: BLE001 - the network could not load: every file fails with the message
            message = error_message(exc, self.request.device)
            self.errors.append(message)
            self.file_failed.emit("", message)
        self.done.emit(ok, len(self.errors), self._cancel.is_set())


class BatchProgress(WorkerProgress):
    """A cancellable progress dialog bound to a :class:`BatchWorker` (which it starts)."""

    def __init__(self, worker: BatchWorker, parent: QWidget | None = None) -> None:
        maximum = max(1, len(worker.files)) * STEPS
        super().__init__(worker, "Batch restore", "Preparing the model…", maximum, 460, parent)
        worker.progress.connect(self._on_progress)
        worker.done.connect(self._on_done)
        worker.start()

    def _on_progress(self, index: int, count: int, name: str, done: int, total: int) -> None:
        self.setValue(index * STEPS + int(STEPS * done / max(total, 1)))
        tiles = f" — tile {done} of {total}" if total > 1 else ""
        self.setLabelText(f"Restoring {index + 1} of {count}: {name}{tiles}")

    def _on_done(self, ok: int, failed: int, cancelled: bool) -> None:
        state = "Cancelled" if cancelled else "Done"
        text = f"{state}: {ok} restored into {self.worker.out_dir}"
        if failed:
            text += f"; {failed} failed:\n" + "\n".join(self.worker.errors[:5])
        self.finish(text)
