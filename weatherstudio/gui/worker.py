"""The studio's worker threads: thin runners of :class:`weatherstudio.engine.session.Session` calls.

:class:`SessionThread` is the one mechanism: a ``QThread`` at a lower priority that owns a session, applies
the thread count a request asks for, and turns every error into a one-line message. :class:`RestoreWorker`
restores the newest request only — :meth:`~RestoreWorker.submit` bumps a generation counter, a running
restore sees it is stale at the next tile and stops, and signals carry their generation so that the window
drops stale results. Arrays are converted for display here (uint8, difference map, map thumbnails), so the
GUI thread only hands finished arrays to Qt. The batch worker (:mod:`.batch`) is the same kind of thread.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QThread, Signal

from weatherstudio.core.tiling import Tile
from weatherstudio.engine.session import UNTRAINED, Decision, ModelChoice, ModelInfo, Session
from weatherstudio.gui import image_convert as ic

__all__ = ["Decision", "Loaded", "ModelInfo", "RestoreRequest", "RestoreWorker", "Result", "SessionThread"]


@dataclass(frozen=True)
class RestoreRequest:
    """Everything one restore depends on; the window builds it from the model panel and the open file."""

    path: str
    arch: str
    config: str | None = None
    weights: str | None = None  # a weight file (shipped or the user's); None: untrained (random init)
    device: str = "auto"
    backend: str = "auto"  # where a CPU restore runs (see weatherstudio.engine.backends)
    fp16: bool = True
    tile: int | None = None
    overlap: int | None = None
    maps: bool = True
    align_memory: bool = True  # a video network's memory follows the camera (RestoreOptions.align_memory)
    preview: bool = True
    threads: int | None = None  # CPU threads (None: all cores)
    frame: int | None = None  # a video's frame (None: a photo)
    generation: int = 0

    def choice(self) -> ModelChoice:
        """The session's model choice: the panel lists shipped files by path, so no file means untrained."""
        if self.arch == "auto":
            return ModelChoice("auto", allow_untrained=True)
        return ModelChoice(self.arch, self.config, self.weights or UNTRAINED, allow_untrained=True)

    def options(self) -> Any:
        from weatherstudio.engine.restore import RestoreOptions

        return RestoreOptions(
            self.device,
            self.tile,
            self.overlap,
            self.fp16,
            return_maps=False,
            backend=self.backend,
            align_memory=self.align_memory,
        )


@dataclass
class Loaded:
    """A file read by the worker: the :class:`LoadedImage` and its uint8 display copy (a video: one frame)."""

    path: str
    image: Any  # LoadedImage
    display: np.ndarray
    frame: int | None = None
    video: Any = None  # VideoInfo of a video
    times: list[float] | None = None  # a video's frame times in seconds from its first frame


@dataclass
class Result:
    request: RestoreRequest
    image: np.ndarray  # H×W×3 float32
    display: np.ndarray  # uint8
    diff: np.ndarray  # H×W float32 |out − in|
    diff_levels: tuple[float, float]
    maps: dict[str, np.ndarray]
    specs: dict[str, Any]  # name → MapSpec
    thumbnails: dict[str, np.ndarray]
    seconds: float
    device: str
    tiles: int
    tile: int
    notes: list[str]
    model: ModelInfo | None  # None: passed through unchanged (auto found a clear photo)
    decision: Decision | None = None


def ui_friendly_threads() -> int:
    """Threads for inference that leave one core to the GUI (the studio's "use all cores" off)."""
    return max(1, (os.cpu_count() or 2) - 1)


def error_message(exc: BaseException, device: str = "") -> str:
    """One line for the user, whatever went wrong (a traceback goes to stderr for the unexpected)."""
    import torch

    from weatherstudio.core.errors import WeatherStudioError

    if isinstance(exc, torch.OutOfMemoryError):
        return f"Out of memory on {device or 'the device'}: choose a smaller tile size or the CPU"
    if isinstance(exc, MemoryError):
        return "Out of memory: this image is too large for the memory available"
    if isinstance(exc, WeatherStudioError):
        return str(exc)
    if sys.stderr:  # None in a windowed build
        traceback.print_exception(exc, file=sys.stderr)
    return f"{type(exc).__name__}: {exc}"


class SessionThread(QThread):
    """A worker thread that runs :class:`Session` calls at a lower priority than the GUI."""

    def __init__(self, parent: Any = None, threads: int | None = None) -> None:
        super().__init__(parent)
        self.threads = threads  # CPU threads to use (None: all cores)
        self.session = Session()

    def _start_in_thread(self) -> None:
        self.session.set_threads(self.threads)
        self.setPriority(QThread.Priority.LowPriority)  # Windows/macOS; Linux uses the nice value below
        _lower_priority()

    def _use_threads(self, threads: int | None) -> None:
        if threads != self.threads or self.session.threads is None:
            self.threads = threads
            self.session.set_threads(threads)


class LatestRequestThread(SessionThread):
    """A session thread that works on the newest request only: :meth:`_put` replaces whatever is queued, the
    thread loop hands each taken request to :meth:`_handle`, and :meth:`stop` ends and joins it."""

    def __init__(self, parent: Any = None, threads: int | None = None) -> None:
        super().__init__(parent, threads)
        self._cond = threading.Condition()
        self._pending: Any = None
        self._stopping = False
        self._busy = False

    def _put(self, request: Any) -> None:
        with self._cond:
            self._pending = request
            self._cond.notify_all()

    def _on_stop(self) -> None:
        """Called under the lock as the thread is asked to stop."""

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """End the thread (the queued request is dropped) and join it (call from ``closeEvent``)."""
        with self._cond:
            self._stopping = True
            self._pending = None
            self._on_stop()
            self._cond.notify_all()
        return self.wait(timeout_ms) if self.isRunning() else True

    def is_busy(self) -> bool:
        return self._busy or self._pending is not None

    def run(self) -> None:
        self._start_in_thread()
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                request, self._pending = self._pending, None
                self._busy = True
            try:
                self._handle(request)
            finally:
                self._busy = False

    def _handle(self, request: Any) -> None:
        raise NotImplementedError


class RestoreWorker(LatestRequestThread):
    """Loads images and models and restores, always for the newest request only."""

    loaded = Signal(int, object)  # generation, Loaded
    decided = Signal(int, object, object)  # generation, Decision, ModelInfo (None when passed through)
    model_ready = Signal(int, object)  # generation, ModelInfo
    preview_ready = Signal(int, object)  # generation, uint8 H×W×3 (full size, upsampled)
    tile_ready = Signal(int, int, int, object)  # generation, y, x, uint8 tile
    progress = Signal(int, int, int)  # generation, tiles done, tiles total
    result_ready = Signal(int, object)  # generation, Result
    failed = Signal(int, str, str)  # generation, stage ("load" or "restore"), message
    cancelled = Signal(int)

    def __init__(self, parent: Any = None, threads: int | None = None) -> None:
        super().__init__(parent, threads)
        self._generation = 0
        self._cancelled = -1
        self._image_cache: tuple[str, float, Any] | None = None
        self._times: tuple[Any, list[float]] | None = None  # the open video's frame times

    # Called from the GUI thread -------------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return self._generation

    def submit(self, request: RestoreRequest) -> int:
        """Queue ``request`` (replacing any queued one) and cancel the running one; returns its generation."""
        with self._cond:
            self._generation += 1
            self._pending = replace(request, generation=self._generation)
            self._cond.notify_all()
            return self._generation

    def cancel(self) -> None:
        """Stop the current request at the next tile (a queued one is dropped too)."""
        with self._cond:
            self._cancelled = self._generation
            self._pending = None

    def _on_stop(self) -> None:
        self._cancelled = self._generation  # the running restore stops at its next tile

    def _stale(self, gen: int) -> bool:
        return self._stopping or gen != self._generation or gen == self._cancelled

    def _handle(self, req: RestoreRequest) -> None:
        from weatherstudio.engine.restore import RestoreCancelled

        gen = req.generation
        stage = "load"
        try:
            if req.frame is not None:
                loaded = self._load_frame(req.path, req.frame, gen)
            else:
                loaded = self._load_image(req.path, gen)
            if loaded is not None and not self._stale(gen):
                stage = "restore"
                self._use_threads(req.threads)
                self._restore(req, loaded)
        except RestoreCancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - every error reaches the user as a message, never a crash
            self.failed.emit(gen, stage, error_message(exc, req.device))
        if gen == self._cancelled:
            self.cancelled.emit(gen)

    def _load_image(self, path: str, gen: int) -> Any:
        from weatherstudio.core.image_io import read_image

        p = Path(path)
        try:
            mtime = p.stat().st_mtime
        except OSError:
            mtime = -1.0
        cached = self._image_cache
        if cached and cached[0] == str(p) and cached[1] == mtime:
            return cached[2]
        loaded = read_image(p)
        if self._stale(gen):
            return None
        self._image_cache = (str(p), mtime, loaded)
        self.loaded.emit(gen, Loaded(str(p), loaded, ic.to_u8(loaded.rgb)))
        return loaded

    def _load_frame(self, path: str, index: int, gen: int) -> Any:
        loaded = self.session.video_frame(path, index)
        if self._stale(gen):
            return None
        reader = self.session.video(path)
        info = reader.info
        if self._times is None or self._times[0] != info:
            stamps = reader.timestamps
            self._times = (info, [float((p - stamps[0]) * info.time_base) for p in stamps])
        times = self._times[1]
        self.loaded.emit(gen, Loaded(path, loaded, ic.to_u8(loaded.rgb), index, info, times))
        return loaded

    def _restore(self, req: RestoreRequest, loaded: Any) -> None:
        gen = req.generation
        rgb = loaded.rgb

        def on_decision(decision: Decision, info: ModelInfo | None) -> None:
            self.decided.emit(gen, decision, info)
            if info is not None:
                self.model_ready.emit(gen, info)

        def on_preview(small: np.ndarray) -> None:
            if not self._stale(gen):
                self.preview_ready.emit(gen, ic.enlarge_u8(small, rgb.shape[:2]))

        def on_tile(t: Tile, out: np.ndarray) -> None:
            if not self._stale(gen):
                self.tile_ready.emit(gen, t.y, t.x, ic.to_u8(out))

        result = self.session.restore_image(
            rgb,
            req.choice(),
            req.options(),
            maps=req.maps,
            preview=req.preview,
            on_decision=on_decision,
            on_preview=on_preview,
            on_tile=on_tile,
            progress=lambda done, total: self.progress.emit(gen, done, total),
            should_cancel=lambda: self._stale(gen),
            frame_of=(req.path, req.frame) if req.frame is not None else None,
        )
        if self._stale(gen):
            return
        diff = ic.diff_map(rgb, result.image)
        specs = result.specs
        thumbs = {name: ic.thumbnail(m, specs[name]) for name, m in result.maps.items() if name in specs}
        self.result_ready.emit(
            gen,
            Result(
                req,
                result.image,
                ic.to_u8(result.image),
                diff,
                ic.diff_levels(diff),
                result.maps,
                specs,
                thumbs,
                result.seconds,
                result.device,
                result.tiles,
                result.tile,
                result.notes,
                result.model,
                result.decision,
            ),
        )


def _lower_priority() -> None:
    """Let the GUI thread win when it competes with inference for a core (a nice of +5 for this thread)."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5))
        except OSError:
            pass


class FrameDecoder(LatestRequestThread):
    """Decodes the video frame the timeline points at, newest request only, so the input shows at once
    while the restore worker (its own reader) is still busy with an older frame."""

    frame_ready = Signal(str, int, object, object)  # path, index, uint8 display, LoadedImage
    keyframe_ready = Signal(str, int, object)  # path, index asked for, uint8 of the keyframe before it
    failed = Signal(str, int, str)  # path, index, message

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent, None)

    def _start_in_thread(self) -> None:
        """Decoding uses FFmpeg's own threads: leave torch's and OpenCV's (process-wide) settings alone."""
        self.setPriority(QThread.Priority.LowPriority)

    def request(self, path: str, index: int) -> None:
        self._put((path, index))

    def _handle(self, request: tuple[str, int]) -> None:
        path, index = request
        try:
            self._decode(path, index)
        except Exception as exc:  # noqa: BLE001 - a frame that cannot be decoded is a message
            self.failed.emit(path, index, error_message(exc))

    def _decode(self, path: str, index: int) -> None:
        """Frame ``index``; on the way, the keyframe it is decoded from (a provisional picture while the
        slider moves); abandoned as soon as a newer frame is asked for."""
        from weatherstudio.core.image_read import LoadedImage

        reader = self.session.video(path)

        def on_keyframe(i: int, rgb: np.ndarray) -> None:
            self.keyframe_ready.emit(path, index, ic.to_u8(rgb))

        rgb = reader.frame(index, on_keyframe=on_keyframe, should_stop=lambda: self._pending is not None)
        if rgb is None:
            return
        loaded = LoadedImage(rgb, None, reader.info.bit_depth, "VIDEO", "RGB", Path(path))
        self.frame_ready.emit(path, index, ic.to_u8(rgb), loaded)
