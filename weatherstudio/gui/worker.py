"""The restore worker: one ``QThread`` that owns the networks and runs every inference off the GUI thread.

Requests go in with :meth:`RestoreWorker.submit`, which bumps a generation counter; the latest request wins —
a running restore sees its generation is stale at the next tile (``should_cancel``) and stops, and signals
carry their generation so that the window drops stale results. Arrays are converted for display here (uint8,
difference map, map thumbnails), so the GUI thread only hands finished arrays to Qt.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QThread, Signal

from weatherstudio.core.tiling import Tile
from weatherstudio.gui import image_convert as ic

#: Images larger than this get a quick downscaled preview before the full-resolution restore.
PREVIEW_ABOVE_PIXELS = 1_500_000
PREVIEW_PIXELS = 350_000  # ≈ 725 × 483 for a 3:2 photo: LPNet restores it in ~0.3 s on one core
#: Above this the maps come from a restore of a MAPS_PIXELS copy: full-size float maps of a 24 MP photo
#: would take gigabytes (LPNet's ten pyramid maps alone: ~0.8 GB, twice that while they are stitched).
MAPS_FULL_RES_MAX_PIXELS = 12_000_000
MAPS_PIXELS = 2_000_000
MODEL_CACHE_SIZE = 3


@dataclass(frozen=True)
class RestoreRequest:
    """Everything one restore depends on; the window builds it from the model panel and the open file."""

    path: str
    arch: str
    config: str | None = None
    weights: str | None = None  # a weight file (shipped or the user's); None: untrained (random init)
    device: str = "auto"
    fp16: bool = True
    tile: int | None = None
    overlap: int | None = None
    maps: bool = True
    preview: bool = True
    generation: int = 0


@dataclass
class ModelInfo:
    arch: str
    config: str
    untrained: bool
    parameters: int
    weights: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Loaded:
    """A file read by the worker: the :class:`LoadedImage` and its uint8 display copy."""

    path: str
    image: Any  # LoadedImage
    display: np.ndarray


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
    model: ModelInfo


def ui_friendly_threads() -> int:
    """Threads for inference that leave one core to the GUI, so it keeps repainting while a restore runs."""
    return max(1, (os.cpu_count() or 2) - 1)


class RestoreWorker(QThread):
    """Loads images and models and restores, always for the newest request only."""

    loaded = Signal(int, object)  # generation, Loaded
    model_ready = Signal(int, object)  # generation, ModelInfo
    preview_ready = Signal(int, object)  # generation, uint8 H×W×3 (full size, upsampled)
    tile_ready = Signal(int, int, int, object)  # generation, y, x, uint8 tile
    progress = Signal(int, int, int)  # generation, tiles done, tiles total
    result_ready = Signal(int, object)  # generation, Result
    failed = Signal(int, str, str)  # generation, stage ("load" or "restore"), message
    cancelled = Signal(int)

    def __init__(self, parent: Any = None, threads: int | None = None) -> None:
        super().__init__(parent)
        self.threads = threads  # torch intra-op threads to use (None: leave as they are)
        self._cond = threading.Condition()
        self._pending: RestoreRequest | None = None
        self._generation = 0
        self._cancelled = -1
        self._stopping = False
        self._busy = False
        self._image_cache: tuple[str, float, Any] | None = None
        self._models: dict[tuple, tuple[Any, ModelInfo]] = {}

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

    def is_busy(self) -> bool:
        return self._busy or self._pending is not None

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel, end the thread and join it (call from ``closeEvent``)."""
        with self._cond:
            self._stopping = True
            self._cancelled = self._generation
            self._pending = None
            self._cond.notify_all()
        return self.wait(timeout_ms) if self.isRunning() else True

    # The thread ----------------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.threads:
            import cv2
            import torch

            torch.set_num_threads(self.threads)
            cv2.setNumThreads(self.threads)
            self.setPriority(QThread.Priority.LowPriority)  # Windows/macOS; Linux uses the nice value below
            _lower_priority()
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

    def _stale(self, gen: int) -> bool:
        return self._stopping or gen != self._generation or gen == self._cancelled

    def _handle(self, req: RestoreRequest) -> None:
        import torch

        from weatherstudio.engine.restore import RestoreCancelled

        gen = req.generation
        stage = "load"
        try:
            loaded = self._load_image(req.path, gen)
            if loaded is not None and not self._stale(gen):
                stage = "restore"
                model, info = self._model(req)
                self.model_ready.emit(gen, info)
                self._restore(req, loaded, model, info)
        except RestoreCancelled:
            pass
        except torch.OutOfMemoryError:
            self.failed.emit(gen, stage, f"Out of memory on {req.device}: choose a smaller tile size or the CPU")
        except MemoryError:
            self.failed.emit(gen, stage, "Out of memory: this image is too large for the memory available")
        except Exception as exc:  # noqa: BLE001 - every error reaches the user as a message, never a crash
            from weatherstudio.core.errors import WeatherStudioError
            from weatherstudio.models.weightfile import WeightsError

            if isinstance(exc, WeatherStudioError | WeightsError):
                message = str(exc)
            else:
                if sys.stderr:  # None in a windowed build
                    traceback.print_exc(file=sys.stderr)
                message = f"{type(exc).__name__}: {exc}"
            self.failed.emit(gen, stage, message)
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

    def _model(self, req: RestoreRequest) -> tuple[Any, ModelInfo]:
        key = (req.arch, req.weights, req.config, req.device)
        if key in self._models:
            self._models[key] = self._models.pop(key)  # most recently used last
            return self._models[key]
        self._models[key] = load_for_request(req)
        while len(self._models) > MODEL_CACHE_SIZE:
            self._models.pop(next(iter(self._models)))
        return self._models[key]

    def _restore(self, req: RestoreRequest, loaded: Any, model: Any, info: ModelInfo) -> None:
        from weatherstudio.engine.restore import RestoreOptions, restore

        gen = req.generation
        rgb = loaded.rgb
        options = RestoreOptions(req.device, req.tile, req.overlap, req.fp16, return_maps=False)
        if req.preview and rgb.shape[0] * rgb.shape[1] > PREVIEW_ABOVE_PIXELS:
            preview = _quick_preview(rgb, model, options)
            if self._stale(gen):
                return
            self.preview_ready.emit(gen, preview)

        def on_tile(t: Tile, out: np.ndarray) -> None:
            if not self._stale(gen):
                self.tile_ready.emit(gen, t.y, t.x, ic.to_u8(out))

        pixels = rgb.shape[0] * rgb.shape[1]
        full_maps = req.maps and pixels <= MAPS_FULL_RES_MAX_PIXELS
        result = restore(
            rgb,
            model,
            replace(options, return_maps=full_maps),
            progress=lambda done, total: self.progress.emit(gen, done, total),
            should_cancel=lambda: self._stale(gen),
            on_tile=on_tile,
        )
        maps, specs, notes = result.maps, result.specs, list(result.notes)
        if req.maps and not full_maps and not self._stale(gen):
            maps, specs, note = _maps_from_copy(rgb, model, replace(options, tile=0, return_maps=True))
            notes.append(note)
        if self._stale(gen):
            return
        diff = ic.diff_map(rgb, result.image)
        thumbs = {name: ic.thumbnail(m, specs[name]) for name, m in maps.items() if name in specs}
        self.result_ready.emit(
            gen,
            Result(
                req,
                result.image,
                ic.to_u8(result.image),
                diff,
                ic.diff_levels(diff),
                maps,
                specs,
                thumbs,
                result.seconds,
                result.device,
                result.tiles,
                result.tile,
                notes,
                info,
            ),
        )


def _quick_preview(rgb: np.ndarray, model: Any, options: Any) -> np.ndarray:
    """A first look at a large image: restore an area-averaged ``PREVIEW_PIXELS`` copy, enlarge it as uint8.

    The enlargement is done on uint8 rather than float32: on a 24 MP photo that saves ~0.3 s and 0.6 GB, and
    keeps LPNet's preview under a second.
    """
    import cv2

    from weatherstudio.engine.restore import restore_preview

    h, w = rgb.shape[:2]
    # the copy is small: restore it whole (tiles would only add overhead)
    out = restore_preview(rgb, model, replace(options, tile=0, return_maps=False), PREVIEW_PIXELS, upscale=False)
    return np.ascontiguousarray(cv2.resize(ic.to_u8(out.image), (w, h), interpolation=cv2.INTER_LINEAR))


def _maps_from_copy(rgb: np.ndarray, model: Any, options: Any) -> tuple[dict, dict, str]:
    """A very large image's maps, from a restore of a ``MAPS_PIXELS`` copy; scales are made relative to ``rgb``."""
    from weatherstudio.engine.restore import preview_scale, restore_preview

    s = preview_scale(rgb.shape[0], rgb.shape[1], MAPS_PIXELS)
    small = restore_preview(rgb, model, options, max_pixels=MAPS_PIXELS, upscale=False)
    specs = {k: replace(v, scale=v.scale * s) for k, v in small.specs.items()}
    h, w = round(rgb.shape[0] * s), round(rgb.shape[1] * s)
    limit = MAPS_FULL_RES_MAX_PIXELS // 10**6
    return small.maps, specs, f"maps computed on a {w}×{h} copy (the image is over {limit} MP)"


def _lower_priority() -> None:
    """Let the GUI thread win when it competes with inference for a core (a nice of +5 for this thread)."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5))
        except OSError:
            pass


def load_for_request(req: RestoreRequest) -> tuple[Any, ModelInfo]:
    """The model a request asks for: a weight file, the shipped weights, or untrained (random init)."""
    from weatherstudio.engine.loader import load_model
    from weatherstudio.models.registry import build_model
    from weatherstudio.weights import default_weights

    if req.weights:
        model, meta = load_model(req.arch, req.weights, config=_file_config(req.weights, req.config))
    elif default_weights(req.arch) is None:
        model, meta = load_model(req.arch, None, req.config, allow_untrained=True)
    else:  # shipped weights exist, but not for this config: the user asked for it untrained
        model = build_model(req.arch, req.config).eval()
        meta = {"untrained": True}
    info = ModelInfo(
        req.arch,
        str(meta.get("config_name") or req.config or ""),
        bool(meta.get("untrained")),
        model.num_parameters(),
        req.weights or str(meta.get("path", "")),
        meta,
    )
    return model, info


def _file_config(weights: str, chosen: str | None) -> str | None:
    """A weight file that records its config decides it; a foreign file gets the config the user chose."""
    from weatherstudio.models.weightfile import WeightsError, read_metadata

    try:
        return None if read_metadata(weights).get("config") else chosen
    except WeightsError:
        return chosen
