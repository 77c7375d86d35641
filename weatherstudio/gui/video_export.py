"""Export… for a video: codec, quality and range, then :meth:`Session.restore_video` on a worker thread with
a progress dialog (frames, fps, time left) and Cancel, which leaves no file behind."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from weatherstudio.gui.worker import RestoreRequest, SessionThread, error_message
from weatherstudio.gui.worker_progress import WorkerProgress

CODEC_LABELS = {
    "h264": "H.264 (mp4, plays everywhere)",
    "hevc": "HEVC / H.265 (smaller)",
    "vp9": "VP9 (webm)",
    "av1": "AV1 (smallest, slow)",
    "prores": "ProRes (editing)",
    "ffv1": "FFV1 (lossless, mkv)",
}
SPEED_LABELS = {
    "fast": "Fast (larger file)",
    "balanced": "Balanced",
    "small": "Smaller file (slow)",
}
SUFFIX = {"h264": ".mp4", "hevc": ".mp4", "vp9": ".webm", "av1": ".mkv", "prores": ".mov", "ffv1": ".mkv"}


def suggested_video_path(source: Path, codec: str) -> Path:
    """``<stem>_restored<ext>`` beside the source, numbered so nothing is replaced."""
    suffix = SUFFIX[codec]
    path = source.with_name(f"{source.stem}_restored{suffix}")
    n = 2
    while path.exists():
        path = source.with_name(f"{source.stem}_restored_{n}{suffix}")
        n += 1
    return path


class ExportDialog(QDialog):
    """Where to, which codec and quality, which frames."""

    def __init__(self, source: Path, frames: int, parent: QWidget | None = None) -> None:
        from weatherstudio.core.video_io import CODECS

        super().__init__(parent)
        self.setWindowTitle("Export restored video")
        self.setMinimumWidth(520)  # room for the whole output path
        self.source = Path(source)
        self.codec = QComboBox()
        for name in CODECS:
            self.codec.addItem(CODEC_LABELS.get(name, name), name)
        self.quality = QSpinBox(minimum=0, maximum=63)
        self.quality.setToolTip("CRF for H.264/HEVC/VP9/AV1 (lower: better, larger); ProRes: profile 0–3")
        self.speed = QComboBox()
        for name, label in SPEED_LABELS.items():
            self.speed.addItem(label, name)
        self.speed.setToolTip("Encoder speed against file size at the same quality (ProRes and FFV1: one speed)")
        self.path = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.path, 1)
        where.addWidget(browse)
        self.first = QSpinBox(minimum=0, maximum=max(0, frames - 1), prefix="from ")
        self.last = QSpinBox(minimum=0, maximum=max(0, frames - 1), prefix="to ", value=max(0, frames - 1))
        span = QHBoxLayout()
        span.addWidget(self.first)
        span.addWidget(self.last)
        form = QFormLayout(self)
        form.addRow("Codec", self.codec)
        form.addRow("Quality", self.quality)
        form.addRow("Encoder speed", self.speed)
        form.addRow("Frames", span)
        form.addRow("Save as", where)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.overwrite = False
        self.codec.currentIndexChanged.connect(self._on_codec)
        self._on_codec()

    def _on_codec(self) -> None:
        from weatherstudio.core.video_io import CODECS, ENCODER_SPEED

        name = self.codec.currentData()
        choice = CODECS[name]
        self.quality.setEnabled(bool(choice.quality))
        self.quality.setValue(choice.default_quality)
        self.speed.setEnabled(name in ENCODER_SPEED)
        current = Path(self.path.text()) if self.path.text() else None
        if current is None or current.suffix.lower() not in choice.containers:
            self.path.setText(str(suggested_video_path(self.source, name)))

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export restored video", self.path.text())
        if path:
            self.path.setText(path)
            self.overwrite = Path(path).exists()  # the file dialog asked already

    def accept(self) -> None:  # noqa: D102 - Qt override: ask before replacing a file
        from PySide6.QtWidgets import QMessageBox

        out = Path(self.path.text())
        if self.first.value() > self.last.value():
            QMessageBox.warning(self, "Export", "The first frame comes after the last one.")
            return
        if out.exists() and not self.overwrite:
            answer = QMessageBox.question(self, "Replace file?", f"{out.name} already exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.overwrite = True
        super().accept()

    def values(self) -> tuple[Path, str, int | None, str, bool, str]:
        """Output, codec, quality, the range as ``A:B``, whether the user agreed to replace the output, and the
        encoder speed."""
        from weatherstudio.core.video_io import CODECS

        name = self.codec.currentData()
        quality = self.quality.value() if CODECS[name].quality else None
        span = f"{self.first.value()}:{self.last.value() + 1}"
        return Path(self.path.text()), name, quality, span, self.overwrite, self.speed.currentData()


class VideoExportWorker(SessionThread):
    """Runs one export; ``progress(done, total)`` per frame, ``done(path or "", message)`` at the end."""

    progress = Signal(int, int)
    finished_export = Signal(str, str)  # output ("" when cancelled or failed), message

    def __init__(
        self,
        source: Path,
        output: Path,
        request: RestoreRequest,
        codec: str,
        quality: int | None,
        frames: str | None,
        overwrite: bool = False,
        parent: QWidget | None = None,
        speed: str = "fast",
    ) -> None:
        super().__init__(parent, request.threads)
        self.source, self.output, self.request = Path(source), Path(output), request
        self.codec, self.quality, self.frames, self.overwrite = codec, quality, frames, overwrite
        self.speed = speed
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        from weatherstudio.engine.restore import RestoreCancelled

        self._start_in_thread()
        try:
            outcome = self.session.restore_video(
                self.source,
                self.output,
                self.request.choice(),
                self.request.options(),
                frames=self.frames,
                codec=self.codec,
                quality=self.quality,
                speed=self.speed,
                overwrite=self.overwrite,
                progress=self.progress.emit,
                should_cancel=self._cancel.is_set,
            )
        except RestoreCancelled:
            self.finished_export.emit("", "Export cancelled — nothing was written")
            return
        except Exception as exc:  # noqa: BLE001 - the user gets the message
            self.finished_export.emit("", f"Export failed — {error_message(exc)}")
            return
        kept = f"; kept {', '.join(outcome.kept_streams)}" if outcome.kept_streams else ""
        dropped = f"; left out {', '.join(outcome.dropped_streams)}" if outcome.dropped_streams else ""
        notes = "".join(f"; {n}" for n in outcome.notes)
        how = f" ({outcome.decision.message()})" if outcome.decision.guess is not None else ""
        seconds = f"{outcome.seconds:.1f} s"
        message = f"Exported {outcome.frames} frames to {outcome.output} in {seconds}{how}{kept}{dropped}{notes}"
        self.finished_export.emit(str(outcome.output), message)


class ExportProgress(WorkerProgress):
    """Frames done, speed and time left, with Cancel."""

    def __init__(self, worker: VideoExportWorker, parent: QWidget | None = None) -> None:
        super().__init__(worker, "Export video", "Starting the export…", 1, 420, parent)
        self.started = time.perf_counter()
        worker.progress.connect(self._on_progress)
        worker.finished_export.connect(lambda _output, message: self.finish(message))
        worker.start()

    def _on_progress(self, done: int, total: int) -> None:
        self.setMaximum(total)
        self.setValue(done)
        elapsed = time.perf_counter() - self.started
        fps = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / fps if fps > 0 else float("nan")
        self.setLabelText(f"Frame {done} of {total} — {fps:.2f} fps, about {left:.0f} s left")
