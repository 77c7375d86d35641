"""The Fine-tune panel's worker: prepares a :class:`~weatherstudio.engine.finetune.Finetuner` (reads the data,
synthesizes the held-out pair) and runs it, off the GUI thread.

It is a :class:`~weatherstudio.gui.worker.LatestRequestThread`: the panel puts ``prepare`` or ``run`` requests;
a prepared job is kept and run by the next ``run`` of the same spec, so a Start after "Preview pair" does not
read the photos twice. A run is steered by the :class:`~weatherstudio.engine.control.RunControl` the panel
hands in (pause, resume, stop). Images are made into small uint8 thumbnails here; the GUI thread only shows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import Signal

from weatherstudio.gui import image_convert as ic
from weatherstudio.gui.worker import LatestRequestThread, error_message

THUMB = 240  # long side of the thumbnails sent to the panel


def thumbnail_u8(rgb: np.ndarray, box: int = THUMB) -> np.ndarray:
    """A float RGB image in [0, 1] as a uint8 thumbnail with long side ``box`` (never enlarged)."""
    h, w = rgb.shape[:2]
    if max(h, w) > box:
        th, tw = ic.fit_size(h, w, box)
        rgb = cv2.resize(np.ascontiguousarray(rgb, np.float32), (tw, th), interpolation=cv2.INTER_AREA)
    return ic.to_u8(rgb)


@dataclass
class Prepared:
    """A job ready to run: what it trains on and its held-out pair (thumbnails)."""

    description: str
    degraded: np.ndarray
    clean: np.ndarray
    output: Path
    skipped: list[str] = field(default_factory=list)


@dataclass
class RunOutcome:
    """A finished run: the engine's result, and what the model panel needs to select the file."""

    result: Any  # FinetuneResult
    arch: str
    config_name: str


class FinetuneWorker(LatestRequestThread):
    """Prepares and runs fine-tuning jobs; every error is one message (``failed``), never a crash."""

    prepared = Signal(object)  # Prepared
    run_started = Signal()
    stepped = Signal(int, float, float)  # step, total loss, learning rate
    validated = Signal(int, float)  # step, validation PSNR-Y (dB)
    previewed = Signal(object)  # FinetunePreview, its images as uint8 thumbnails
    run_finished = Signal(object)  # RunOutcome
    cancelled = Signal()  # stopped before the first step: nothing written
    failed = Signal(str)

    def __init__(self, parent: Any = None, threads: int | None = None) -> None:
        super().__init__(parent, threads)
        self._job: tuple[Any, Any] | None = None  # (spec, Finetuner) prepared and not yet run

    # Called from the GUI thread -------------------------------------------------------------------------------
    def prepare(self, spec: Any, threads: int | None = None) -> None:
        """Build the job for ``spec`` and emit ``prepared`` (or ``failed``)."""
        self._put(("prepare", spec, None, threads))

    def run_job(self, spec: Any, control: Any, threads: int | None = None) -> None:
        """Run ``spec`` (prepared again unless the last prepare was for the same spec) under ``control``."""
        self._put(("run", spec, control, threads))

    # The thread ------------------------------------------------------------------------------------------------
    def _handle(self, request: tuple[str, Any, Any, int | None]) -> None:
        kind, spec, control, threads = request
        self._use_threads(threads)
        try:
            job = self._prepared_job(spec)
            if kind == "run":
                self._run(job, control)
        except Exception as exc:  # noqa: BLE001 - bad data, a missing file, out of memory: a message
            self.failed.emit(error_message(exc, getattr(spec, "device", "")))

    def _prepared_job(self, spec: Any) -> Any:
        from weatherstudio.engine.finetune import Finetuner

        if self._job is not None and self._job[0] == spec:
            job = self._job[1]
        else:
            self._discard()
            job = Finetuner(spec)
            self._job = (spec, job)
        degraded, clean = job.preview_pair()
        self.prepared.emit(
            Prepared(job.describe(), thumbnail_u8(degraded), thumbnail_u8(clean), job.output, list(job.skipped))
        )
        return job

    def _discard(self) -> None:
        self._job = None  # (a job that never ran has written nothing)

    def _run(self, job: Any, control: Any) -> None:
        from weatherstudio.engine.finetune import FinetuneCallbacks

        self._job = None  # a Finetuner runs once
        if control.stopped or self._stopping:  # stopped while the data was read: nothing to write
            self.cancelled.emit()
            return
        self.run_started.emit()

        def on_step(step: int, losses: dict[str, float], lr: float) -> None:
            loss = losses.get("total", next(iter(losses.values()), math.nan))
            self.stepped.emit(step, float(loss), float(lr))

        def on_validation(step: int, scores: dict[str, Any]) -> None:
            self.validated.emit(step, float(scores.get("val_psnr_y", math.nan)))

        def on_preview(p: Any) -> None:
            images = replace(
                p, degraded=thumbnail_u8(p.degraded), restored=thumbnail_u8(p.restored), clean=thumbnail_u8(p.clean)
            )
            self.previewed.emit(images)

        def should_stop() -> bool:
            return control.should_stop() or self._stopping

        result = job.run(FinetuneCallbacks(on_step, on_validation, on_preview, should_stop))
        self.run_finished.emit(RunOutcome(result, job.spec.arch, result.config_name))

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._discard()
