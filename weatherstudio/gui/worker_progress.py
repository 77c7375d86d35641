"""A progress dialog bound to a worker thread: Cancel asks the worker to stop; once it has finished, the
button reads Close and the label says how it went. The batch and the video export both use it."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QProgressDialog, QWidget


class WorkerProgress(QProgressDialog):
    """Starts ``worker`` (a thread with a ``cancel()``) and follows it until :meth:`finish`."""

    def __init__(self, worker: Any, title: str, text: str, maximum: int, width: int, parent: QWidget | None) -> None:
        super().__init__(text, "Cancel", 0, maximum, parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(width)
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.worker = worker
        self.canceled.connect(worker.cancel)

    def finish(self, text: str) -> None:
        """The worker is done: a full bar, ``text``, and Cancel turned into Close."""
        self.setValue(self.maximum())
        self.setCancelButtonText("Close")
        try:
            self.canceled.disconnect(self.worker.cancel)
        except (RuntimeError, TypeError):
            pass
        self.canceled.connect(self.close)
        self.setLabelText(text)
