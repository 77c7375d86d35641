"""Restore an image of any size with any model: whole when it fits, else overlapping blended tiles.

Only the tile being processed lives on the device (and, for a video model, every tile's memory). On CUDA
the network runs in fp16 (autocast) with an automatic fp32 retry when a tile's output holds NaN/Inf, and an
out-of-memory error retries the image with tiles half as large. Progress and cancellation go through
callbacks checked between tiles, so the same function drives a tqdm bar, a Qt progress bar and a test that
cancels. Where the network runs in ONNX Runtime, a still image's tiles run two (one per thread) at a time and
are blended in order as they finish, so the result is the same as one tile at a time. There a pyramid network
(LPNet) runs as two graphs, its coarse levels once at half size and its finest level in tiles cut where its
context ends (:mod:`weatherstudio.engine.pyramid_split`, :func:`pyramid_plan`).

A video model's memory (J4R-Net's H_{t−1}) is passed in and returned, never left in the model: ``restore``
starts from ``state`` (None: a fresh clip, as for any still image) and returns the next frame's state in
:attr:`RestoreResult.state`, one entry per tile. No caller can forget to reset it (BasicVSR-style). Before a
frame, each tile's memory is warped along the optical flow from this frame back to the last one
(``RestoreOptions.align_memory``; :mod:`weatherstudio.core.motion`), so it follows a moving camera.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.core.motion import MotionReference, backward_flow, motion_reference
from weatherstudio.core.tiling import Tile, blend_tile, overlaps, plan_tiles, tile_weight, weights_sum_to_one
from weatherstudio.engine.device import describe_device, resolve_device
from weatherstudio.models.base import MapSpec, RestorationModel

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
TileFn = Callable[[Tile, np.ndarray], None]
CropFn = Callable[[Tile], torch.Tensor]

#: Tiles never shrink below this on out-of-memory retries.
MIN_TILE = 64
#: ``backend="auto"`` uses a CPU runtime from this many pixels on (one 512² tile): below it the one-off graph
#: compile (~0.5–2 s; the first export of a weight file, 1–7 s) outweighs what the runtime saves.
AUTO_RUNTIME_PIXELS = 512 * 512


class RestoreCancelled(WeatherStudioError):
    """The caller's ``should_cancel`` returned True between two tiles."""


@dataclass
class RestoreOptions:
    device: str | torch.device = "auto"
    tile: int | None = None  # None: the model's default; 0: whole image
    overlap: int | None = None  # None: from the model's receptive field
    fp16: bool | None = None  # None: on for CUDA, off for CPU
    return_maps: bool = False
    #: "auto" (a CPU runtime for images of at least a tile, when installed; torch on CUDA and for maps), "torch",
    #: "openvino" or "onnxruntime" — see :mod:`weatherstudio.engine.backends`
    backend: str = "auto"
    #: warp a video network's memory along the optical flow to each new frame (:mod:`weatherstudio.core.motion`)
    align_memory: bool = True


class FrameMemory(dict):
    """A video network's memory after a frame: tile index → that tile's state, and the frame's
    :class:`~weatherstudio.core.motion.MotionReference`, which the next frame's flow is measured against."""

    reference: MotionReference | None = None


@dataclass
class RestoreResult:
    image: np.ndarray  # H×W×3 float32 in [0, 1]
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # name → h×w×c float32
    specs: dict[str, MapSpec] = field(default_factory=dict)
    seconds: float = 0.0
    device: str = ""
    tile: int = 0
    overlap: int = 0
    tiles: int = 1
    fp16: bool = False
    backend: str = "torch"
    notes: list[str] = field(default_factory=list)
    #: a temporal model's memory after this frame, tile index → state (pass it to the next frame); None otherwise
    state: dict[int, Any] | None = None


def default_overlap(model: RestorationModel) -> int:
    """Half the model's effective context on each side of a seam, rounded up to 8, within [16, 256]; twice an
    exact context (each overlap is then cut in its middle, :mod:`weatherstudio.core.tiling`)."""
    if model.exact_context is not None:
        return 2 * int(model.exact_context)
    context = int(model.effective_context)
    return int(min(256, max(16, math.ceil(context / 2 / 8) * 8)))


def tile_geometry(
    model: RestorationModel,
    height: int,
    width: int,
    device: torch.device,
    tile: int | None = None,
    overlap: int | None = None,
) -> tuple[int, int]:
    """The tile side and overlap a restore of ``height × width`` uses (None: the model's defaults; tile 0: whole)."""
    side = model.default_tile if tile is None else int(tile)
    if device.type == "cuda" and tile is None:
        side = max(side, 1024)
    if side <= 0 or (height <= side and width <= side):
        side = max(height, width)
    margin = default_overlap(model) if overlap is None else max(0, int(overlap))
    return side, min(margin, max(0, side // 2))


def pyramid_plan(model: RestorationModel, backend: str, options: RestoreOptions, height: int, width: int) -> str:
    """How a pyramid network runs in a runtime of :data:`~weatherstudio.engine.backends.SPLIT_RUNTIMES` (without
    maps, with the engine's own overlap): ``"split"`` into its two parts (:mod:`weatherstudio.engine.pyramid_split`)
    on a photo larger than the finest part's tile, else ``"whole"``, one graph on the whole image (exact, and faster
    there than the split's extra steps or a blend of 512² tiles); ``""`` for every other network and case."""
    from weatherstudio.engine.backends import SPLIT_RUNTIMES

    net = getattr(model, "net", model)
    if (
        backend not in SPLIT_RUNTIMES
        or not hasattr(net, "pyramid_parts")
        or options.return_maps
        or model.temporal
        or options.overlap is not None
    ):
        return ""
    finest = net.pyramid_parts()[1]
    tile = options.tile if options.tile is not None else finest.default_tile
    if tile <= 0:
        return "whole"
    if tile < 2 * default_overlap(finest):
        return ""  # too small for the finest part's exact seams: the one graph's blend, as asked
    return "split" if max(height, width) > tile else ("whole" if options.tile is None else "")


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, h, w
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), h, w


def _to_hwc(t: torch.Tensor, clip: bool = False) -> np.ndarray:
    """A 1×C×h×w tensor as a contiguous h×w×C float32 array, clipped to [0, 1] with ``clip`` (in the copy; a
    channels-last tensor is already h×w×C in memory and is clipped into a new array, never in place)."""
    arr = t.detach().float().cpu().numpy()[0].transpose(1, 2, 0)
    if arr.flags.c_contiguous:
        return np.clip(arr, 0.0, 1.0) if clip else arr
    hwc = np.ascontiguousarray(arr)
    return np.clip(hwc, 0.0, 1.0, out=hwc) if clip else hwc


def _run_tile(
    model: RestorationModel, x: torch.Tensor, device: torch.device, fp16: bool, return_maps: bool
) -> tuple[np.ndarray, dict[str, np.ndarray], bool]:
    """Run one tile (1×C×h×w on the CPU); returns HWC arrays and whether fp16 held."""
    h, w = x.shape[-2:]
    xin, _, _ = _pad_to_multiple(x, model.size_multiple)
    xin = xin.to(device, non_blocking=True)
    if model.channels_last_input:
        xin = xin.contiguous(memory_format=torch.channels_last)
    before = model.get_state() if fp16 else None  # a video model's memory, for an fp32 retry of this tile
    for half in [True, False] if fp16 else [False]:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=half):
            out = model(xin, return_maps=return_maps)
        if half and not torch.isfinite(out.image).all():
            model.set_state(before)  # the failed pass updated the memory: the retry starts from the frame before
            continue  # fp16 overflowed: the same tile again in fp32
        image = _to_hwc(out.image[..., :h, :w], clip=model.clips_output)
        maps = {}
        for name, m in out.maps.items():
            mh = math.ceil(h * m.shape[-2] / xin.shape[-2]) if m.shape[-2] != xin.shape[-2] else h
            mw = math.ceil(w * m.shape[-1] / xin.shape[-1]) if m.shape[-1] != xin.shape[-1] else w
            maps[name] = _to_hwc(m[..., :mh, :mw])
        return image, maps, half
    raise AssertionError("unreachable")


def restore(
    image: np.ndarray,
    model: RestorationModel,
    options: RestoreOptions | None = None,
    *,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    on_tile: TileFn | None = None,
    state: dict[int, Any] | None = None,
    keep_state: bool = True,
) -> RestoreResult:
    """Restore ``image`` (H×W×3 float32 RGB in [0, 1]) with ``model``.

    ``on_tile(tile, output)`` receives each finished tile's output (before blending) so a viewer can fill in
    the picture. For a temporal model, ``state`` is the previous frame's :attr:`RestoreResult.state` (None: the
    first frame of a clip); the input dict is not changed. ``keep_state=False`` (a still photo: no next frame)
    returns no state — a 12 MP photo's per-tile memories would hold 2 GB for J4R-Net.
    """
    options = options or RestoreOptions()
    channels = model.input_channels
    if image.ndim != 3 or image.shape[2] != channels:
        raise ValueError(f"expected an H×W×{channels} image, got shape {image.shape}")
    device = resolve_device(options.device)
    fp16 = device.type == "cuda" if options.fp16 is None else bool(options.fp16 and device.type == "cuda")
    height, width = image.shape[:2]
    tile, overlap = tile_geometry(model, height, width, device, options.tile, options.overlap)
    # channels-last lets oneDNN / cuDNN pick their fast convolution kernels (≈2× on CPU for LPNet).
    _place(model, device)
    notes: list[str] = []
    backend, model = _backend_model(model, options, device, height * width, notes)
    if device.type == "cpu":
        # Trained weights drive some activations into denormal floats, which x86 CPUs compute ~100× slower;
        # flushing them to zero changes no visible value and saved ~25 % on a 12 MP LPNet restore.
        torch.set_flush_denormal(True)
    started = time.perf_counter()
    plan = pyramid_plan(model, backend, options, height, width)
    if plan == "whole":
        tile = max(height, width)
    elif plan == "split":
        from weatherstudio.engine.backends import BackendError
        from weatherstudio.engine.pyramid_split import restore_split

        try:
            result = restore_split(image, model, options, progress, should_cancel, on_tile, notes)
        except (RestoreCancelled, MemoryError):
            raise
        except Exception as exc:
            if (options.backend or "auto").lower() != "auto":
                raise BackendError(f"{model.arch} could not run as two graphs in {backend}: {exc}") from exc
            notes.append(f"{model.arch} could not run as two graphs in {backend} ({exc}); ran as one")
        else:
            result.seconds = time.perf_counter() - started
            result.device, result.backend, result.notes = describe_device(device), backend, notes
            return result
    reference, flow = None, None
    if model.temporal and model.aligns_state and options.align_memory and (keep_state or bool(state)):
        reference = motion_reference(image)
        previous = getattr(state, "reference", None)
        if state and previous is not None:
            flow = backward_flow(previous, reference)
    while True:
        try:
            result = _restore_tiled(
                image,
                model,
                device,
                tile,
                overlap,
                fp16,
                options.return_maps,
                progress,
                should_cancel,
                on_tile,
                FrameMemory(state or {}) if model.temporal else None,
                keep_state,
                notes,
                flow,
            )
            break
        except torch.OutOfMemoryError:
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if tile <= MIN_TILE:
                raise
            if state:
                raise  # the memory is per tile: other tiles cannot take it over
            smaller = max(MIN_TILE, tile // 2)
            notes.append(f"out of memory with {tile}px tiles; retried with {smaller}px")
            tile, overlap = smaller, min(overlap, smaller // 2)
    if isinstance(result.state, FrameMemory):
        result.state.reference = reference
    result.seconds = time.perf_counter() - started
    result.device = describe_device(device)
    result.backend = backend
    result.notes = notes
    return result


def _place(model: RestorationModel, device: torch.device) -> None:
    """Eval mode, on ``device``, 4-D weights channels-last; a no-op when already so (moving every frame of a
    video cost ~4 ms of a 640×480 LPNet frame's 150)."""
    params = list(model.parameters())
    placed = all(
        p.device == device and (p.dim() != 4 or p.is_contiguous(memory_format=torch.channels_last)) for p in params
    )
    if model.training or not placed:
        model.eval().to(device, memory_format=torch.channels_last)


def _backend_model(
    model: RestorationModel, options: RestoreOptions, device: torch.device, pixels: int, notes: list[str]
) -> tuple[str, RestorationModel]:
    """The backend this restore runs in and the model to call; ``auto`` falls back to torch (with a note) when
    a runtime cannot take the network, a named runtime raises."""
    from weatherstudio.engine.backends import BackendError, resolve_backend, runtime_model

    backend = resolve_backend(options.backend, device, options.return_maps, model.arch)
    auto = (options.backend or "auto").lower() == "auto"
    if backend == "torch" or (auto and pixels < AUTO_RUNTIME_PIXELS):
        return "torch", model
    try:
        return backend, runtime_model(model, backend)
    except Exception as exc:
        if not auto:
            raise BackendError(f"{model.arch} cannot run in {backend}: {exc}") from exc
        notes.append(f"{backend} could not take {model.arch} ({exc}); ran in torch")
        return "torch", model


def _restore_tiled(
    image: np.ndarray,
    model: RestorationModel,
    device: torch.device,
    tile: int,
    overlap: int,
    fp16: bool,
    return_maps: bool,
    progress: ProgressFn | None,
    should_cancel: CancelFn | None,
    on_tile: TileFn | None,
    tile_states: dict[int, Any] | None,
    keep_state: bool,
    notes: list[str],
    flow: np.ndarray | None = None,
    crop: CropFn | None = None,
) -> RestoreResult:
    """The tiles of ``image`` through ``model``, blended; ``crop(tile)`` gives a tile's input (default: that window of
    ``image`` as a 1×C×h×w tensor; a split network builds its own)."""
    height, width = image.shape[:2]
    crop = crop or functools.partial(_crop, image)
    tiles = plan_tiles(height, width, tile, overlap, model.tile_align, model.size_congruence)
    spans = overlaps(tiles)
    cut = model.exact_context is not None
    specs = {s.name: s for s in model.map_specs()} if return_maps else {}
    single = len(tiles) == 1
    out = np.zeros((height, width, 3), np.float32) if not single else None
    # weights that sum to one blend without a running sum (the usual case; ~0.4 s less on a 12 MP photo)
    unit = not single and weights_sum_to_one(tiles, spans, height, width, cut)
    wsum = np.zeros((height, width, 1), np.float32) if not single and not unit else None
    map_acc: dict[str, np.ndarray] = {}
    map_wsum: dict[str, np.ndarray] = {}
    maps_single: dict[str, np.ndarray] = {}
    image_single = None
    total = len(tiles)
    if progress:
        progress(0, total)
    workers = int(getattr(model, "tile_workers", 1))
    side = None
    # tiles side by side where that keeps every thread busy to the end (3 tiles on 2 threads: one tile at a time)
    paired = total >= 2 * workers or (total >= workers and total % workers == 0)
    if workers > 1 and device.type == "cpu" and not return_maps and tile_states is None and paired:
        side = _side_by_side(crop, tiles, model.side_by_side(), device, workers)  # type: ignore[attr-defined]
    try:
        for index, t in enumerate(tiles):
            if should_cancel and should_cancel():
                raise RestoreCancelled("restore cancelled")
            if side is not None:
                tile_out, tile_maps, held = next(side)
            else:
                tile_out, tile_maps, held = _tile_in_turn(
                    crop, t, index, model, device, fp16, return_maps, tile_states, keep_state, flow
                )
            if fp16 and not held:
                fp16 = False
                notes.append("fp16 gave NaN/Inf; switched to fp32")
            if single:
                image_single, maps_single = tile_out, tile_maps
            else:
                _accumulate(
                    t, tile_out, tile_maps, spans[t], out, wsum, unit, cut, specs, map_acc, map_wsum, height, width
                )
            if on_tile:
                on_tile(t, tile_out)
            if progress:
                progress(index + 1, total)
    finally:
        if side is not None:
            side.close()  # a cancelled restore: the tiles queued are dropped, the running ones finish
    states_out = tile_states if keep_state else None
    if single:
        return RestoreResult(
            image_single,
            maps_single,
            specs,
            tile=tile,
            overlap=0,
            tiles=1,
            fp16=fp16,
            state=states_out,
        )
    if wsum is not None:
        np.divide(out, np.maximum(wsum, 1e-8), out=out)
    maps = {k: v / np.maximum(map_wsum[k], 1e-8) for k, v in map_acc.items()}
    return RestoreResult(
        np.clip(out, 0, 1, out=out) if model.clips_output else out,
        maps,
        specs,
        tile=tile,
        overlap=overlap,
        tiles=total,
        fp16=fp16,
        state=states_out,
    )


def _crop(image: np.ndarray, t: Tile) -> torch.Tensor:
    """Tile ``t`` of the H×W×3 image as a 1×3×h×w tensor (its own contiguous copy)."""
    return torch.from_numpy(np.ascontiguousarray(image[t.y : t.y + t.h, t.x : t.x + t.w].transpose(2, 0, 1)))[None]


def _tile_in_turn(
    crop: CropFn,
    t: Tile,
    index: int,
    model: RestorationModel,
    device: torch.device,
    fp16: bool,
    return_maps: bool,
    tile_states: dict[int, Any] | None,
    keep_state: bool,
    flow: np.ndarray | None,
) -> tuple[np.ndarray, dict[str, np.ndarray], bool]:
    """Tile ``index`` through the network on this thread; a video network gets that tile's memory (moved along
    ``flow``) and its new memory goes back into ``tile_states``."""
    x = crop(t)
    if tile_states is not None:
        memory = tile_states.get(index)
        if memory is not None and flow is not None:  # the memory moved to where this frame shows the scene
            memory = model.align_state(memory, flow[t.y : t.y + t.h, t.x : t.x + t.w])
        model.set_state(memory)
    try:
        result = _run_tile(model, x, device, fp16, return_maps)
        if tile_states is not None:
            if keep_state:
                tile_states[index] = model.get_state()
            else:
                tile_states.pop(index, None)  # used: dropped at once
    finally:
        if tile_states is not None:
            model.reset_state()  # the memory lives in the result, never in the model between calls
    return result


def _crop_and_run(
    crop: CropFn, t: Tile, model: RestorationModel, device: torch.device
) -> tuple[np.ndarray, dict[str, np.ndarray], bool]:
    """One tile's input and output, both on the worker's thread (a split network's input takes work to build)."""
    return _run_tile(model, crop(t), device, False, False)


def _side_by_side(
    crop: CropFn, tiles: list[Tile], model: RestorationModel, device: torch.device, workers: int
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray], bool]]:
    """The tiles' outputs in order, ``workers`` tiles running at once, each on one thread of ``model`` (a CPU
    runtime whose one-thread session two threads can call together, :meth:`RuntimeModel.side_by_side`).

    At most ``2 × workers`` tiles are in flight, so memory stays bounded by tiles. Closing the generator drops
    the tiles not yet started and waits for the running ones.
    """
    # the workers flush denormals to zero as the calling thread does (restore: ~25 % of a 12 MP LPNet restore)
    pool = ThreadPoolExecutor(
        workers, thread_name_prefix="weatherstudio-tile", initializer=torch.set_flush_denormal, initargs=(True,)
    )
    pending: deque[Future] = deque()
    queued = iter(tiles)
    try:
        for t in itertools.islice(queued, 2 * workers):
            pending.append(pool.submit(_crop_and_run, crop, t, model, device))
        while pending:
            result = pending.popleft().result()
            nxt = next(queued, None)
            if nxt is not None:
                pending.append(pool.submit(_crop_and_run, crop, nxt, model, device))
            yield result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


def _accumulate(
    t: Tile,
    tile_out: np.ndarray,
    tile_maps: dict[str, np.ndarray],
    span: tuple[tuple[int, int], tuple[int, int]],
    out: np.ndarray,
    wsum: np.ndarray | None,
    unit: bool,
    cut: bool,
    specs: dict[str, MapSpec],
    map_acc: dict[str, np.ndarray],
    map_wsum: dict[str, np.ndarray],
    height: int,
    width: int,
) -> None:
    """Blend one tile's output (and its maps, each at its own scale) into the running image and map sums."""
    before, after = span
    if unit:
        blend_tile(out, tile_out, t, before, after, cut)
    else:
        wgt = tile_weight(t, before, after, cut=cut)[..., None]
        out[t.y : t.y + t.h, t.x : t.x + t.w] += tile_out * wgt
        wsum[t.y : t.y + t.h, t.x : t.x + t.w] += wgt  # type: ignore[index]
    for name, m in tile_maps.items():
        scale = specs[name].scale if name in specs else m.shape[0] / t.h
        full_h, full_w = math.ceil(height * scale), math.ceil(width * scale)
        if name not in map_acc:
            map_acc[name] = np.zeros((full_h, full_w, m.shape[2]), np.float32)
            map_wsum[name] = np.zeros((full_h, full_w, 1), np.float32)
        y0, x0 = round(t.y * scale), round(t.x * scale)
        mh, mw = min(m.shape[0], full_h - y0), min(m.shape[1], full_w - x0)
        mw_ = tile_weight(t, before, after, scale, cut)[:mh, :mw, None]
        map_acc[name][y0 : y0 + mh, x0 : x0 + mw] += m[:mh, :mw] * mw_
        map_wsum[name][y0 : y0 + mh, x0 : x0 + mw] += mw_


def preview_scale(height: int, width: int, max_pixels: int) -> float:
    """The factor (≤ 1) that brings ``height × width`` down to at most ``max_pixels``."""
    return min(1.0, math.sqrt(max_pixels / max(1, height * width)))


def restore_preview(
    image: np.ndarray,
    model: RestorationModel,
    options: RestoreOptions | None = None,
    max_pixels: int = 1_000_000,
    upscale: bool = True,
) -> RestoreResult:
    """Restore a downscaled copy (area-averaged to at most ``max_pixels``): an instant first look at a large photo.

    With ``upscale`` the image is brought back to full size (float32, bilinear); without, the result stays at
    the copy's size (a viewer may enlarge it more cheaply as 8-bit). Maps stay at the copy's size.
    """
    import cv2

    height, width = image.shape[:2]
    scale = preview_scale(height, width, max_pixels)
    if scale >= 1.0:
        return restore(image, model, options)
    small = cv2.resize(
        image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    result = restore(small, model, options)
    if upscale:
        result.image = cv2.resize(result.image, (width, height), interpolation=cv2.INTER_LINEAR)
    result.notes.append(f"preview at {small.shape[1]}×{small.shape[0]}")
    return result
