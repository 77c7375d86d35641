"""One studio session under the window and the command line (no Qt): models, threads, restores, batches.

A :class:`Session` owns what both front ends used to keep separately:

* **which network, which weights** — :func:`load_choice` is the one rule: a weight file (its recorded config
  wins over the chosen one), else the shipped weights of the chosen variant, else untrained (only where
  allowed); ``auto`` asks the weather classifier and takes the best shipped network for that weather
  (:mod:`.weather`), and a clear photo is passed through unchanged;
* a small cache of loaded models, the device and the CPU threads;
* one restore of an image (a photo or a video frame) with a quick preview of a large one, maps (from a
  smaller copy when full-size maps would not fit in memory), progress and cancel;
* a batch over files through :func:`.pipeline.restore_file`, a video model's memory carried file to file.

The studio's worker threads and ``weatherstudio remove`` are thin callers of these methods.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.engine.restore import CancelFn, ProgressFn, RestoreOptions, RestoreResult, TileFn, restore
from weatherstudio.engine.weather import (
    AUTO,
    WeatherGuess,
    classify,
    classify_frames,
    load_classifier,
    network_for,
    sample_frames,
)
from weatherstudio.models.base import RestorationModel

UNTRAINED = "untrained"
#: Images larger than this get a quick downscaled preview before the full-resolution restore.
PREVIEW_ABOVE_PIXELS = 1_500_000
PREVIEW_PIXELS = 350_000  # ≈ 725 × 483 for a 3:2 photo: LPNet restores it in ~0.3 s on one core
#: Above this the maps come from a restore of a MAPS_PIXELS copy: full-size float maps of a 24 MP photo
#: would take gigabytes (LPNet's ten pyramid maps alone: ~0.8 GB, twice that while they are stitched).
MAPS_FULL_RES_MAX_PIXELS = 12_000_000
MAPS_PIXELS = 2_000_000
MODEL_CACHE_SIZE = 3


@dataclass(frozen=True)
class ModelChoice:
    """What the user chose: a network (or ``auto``), its variant, and weights.

    ``weights``: a file; None for the shipped weights of the variant; :data:`UNTRAINED` for random init.
    ``allow_untrained``: whether a variant that ships no weights may run untrained (the studio says so in
    a banner; the command line needs ``--untrained``).
    """

    arch: str = AUTO
    config: str | None = None
    weights: str | None = None
    allow_untrained: bool = False


def model_choice(
    arch: str, config: str | None = None, weights: str | None = None, allow_untrained: bool = False
) -> ModelChoice:
    """The user's words as a choice: ``auto`` with a weight file means the network that file is for."""
    from weatherstudio.models.weightfile import WeightsError, read_metadata, read_tensors

    if arch == AUTO and weights and weights != UNTRAINED:
        file_arch = read_metadata(weights).get("arch")
        if not file_arch:
            read_tensors(Path(weights))  # a file that cannot be read (or is refused) says so first
            raise WeightsError(f"{weights}: the file does not say which network it is for; name it with --model")
        arch = file_arch
    return ModelChoice(arch, config, weights, allow_untrained)


@dataclass
class ModelInfo:
    arch: str
    config: str
    untrained: bool
    parameters: int
    weights: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReadyModel:
    model: RestorationModel
    info: ModelInfo


@dataclass
class Decision:
    """The network ``auto`` chose for one image (or the user's own choice), and why."""

    choice: ModelChoice
    guess: WeatherGuess | None = None
    pass_through: bool = False

    video: bool = False

    def message(self) -> str:
        if self.guess is None:
            return ""
        if self.pass_through and self.video:
            return f"clear ({self.guess.confidence:.0%}): no rain or snow found, frames kept as they are (re-encoded)"
        if self.pass_through:
            return f"clear ({self.guess.confidence:.0%}): no rain or snow found, passed through unchanged"
        return f"{self.guess.describe()} → {self.choice.arch}"


@dataclass
class ImageResult:
    """A restore of one image, with the network and the decision that made it."""

    image: np.ndarray  # H×W×3 float32
    maps: dict[str, np.ndarray]
    specs: dict[str, Any]
    seconds: float
    device: str
    tiles: int
    tile: int
    notes: list[str]
    model: ModelInfo | None
    decision: Decision
    state: dict[int, Any] | None = None


def _file_config(weights: str, chosen: str | None) -> str | None:
    """A weight file that records its config decides it; a foreign file gets the config the user chose."""
    from weatherstudio.models.weightfile import WeightsError, read_metadata

    try:
        return None if read_metadata(weights).get("config") else chosen
    except WeightsError:
        return chosen


def load_choice(choice: ModelChoice) -> ReadyModel:
    """The one rule for a network's weights, for the studio and the command line alike (see the module)."""
    from weatherstudio.models.registry import build_model, default_config_name, get_entry
    from weatherstudio.models.weightfile import WeightsError, load_weights
    from weatherstudio.weights import default_weights, shipped_weights

    if choice.arch == AUTO:
        raise WeatherStudioError("'auto' is decided per image: call Session.decide first")
    get_entry(choice.arch)  # an unknown name fails here, with the known ones listed
    if choice.weights and choice.weights != UNTRAINED:
        model, meta = load_weights(choice.weights, arch=choice.arch, config=_file_config(choice.weights, choice.config))
        meta = {**meta, "path": str(choice.weights)}
        untrained = False
    else:
        path = None
        if choice.weights != UNTRAINED:
            if choice.config is None:
                path = default_weights(choice.arch)
            else:
                found = [w for w in shipped_weights(choice.arch) if w.config_name == choice.config]
                path = found[0].path if found else None
        if path is not None:
            model, meta = load_weights(path, arch=choice.arch)
            meta = {**meta, "path": str(path)}
            untrained = False
        else:
            if choice.weights != UNTRAINED and not choice.allow_untrained:
                variant = f" ({choice.config})" if choice.config else ""
                raise WeightsError(
                    f"no trained weights ship for {choice.arch!r}{variant}; pass a weight file "
                    "(or train one with 'weatherstudio train')"
                )
            model = build_model(choice.arch, choice.config).eval()
            meta = {"untrained": True, "arch": choice.arch}
            untrained = True
    config = str(meta.get("config_name") or choice.config or default_config_name(choice.arch))
    info = ModelInfo(
        choice.arch, config, untrained, model.num_parameters(), "" if untrained else meta["path"], dict(meta)
    )
    return ReadyModel(model, info)


def _memory_key(ready: ReadyModel | None, options: RestoreOptions) -> tuple:
    """What a carried memory depends on: the network (its weights) and the tile plan and device."""
    info = ready.info if ready is not None else None
    net = (info.arch, info.config, info.weights) if info is not None else None
    return (net, options.tile, options.overlap, str(options.device))


def set_threads(threads: int | None) -> int:
    """Use ``threads`` CPU threads for inference (None or 0: all cores); returns the number in use."""
    import cv2
    import torch

    n = int(threads) if threads else (os.cpu_count() or 1)
    n = max(1, n)
    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    return n


def copy_unchanged(
    source: Path, output: Path, overwrite: bool = False, protected: tuple[Path, ...] = (), quality: int | None = None
) -> Path:
    """A clear photo passed through: its bytes copied to ``output`` (temporary name, then renamed) — or, when the
    output is another format, its pixels written as that format with the source's metadata."""
    for other in (source, *protected):
        if output.resolve() == Path(other).resolve() or (output.exists() and output.samefile(other)):
            raise WeatherStudioError(f"{output}: is an input; choose another output")
    if output.exists() and not overwrite:
        raise WeatherStudioError(f"{output}: exists; pass --overwrite to replace it")
    if output.suffix.lower() != source.suffix.lower():
        from weatherstudio.core.image_io import read_image, write_image

        loaded = read_image(source)
        write_image(output, loaded.rgb, alpha=loaded.alpha, like=loaded, quality=quality, overwrite=overwrite)
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return output


@dataclass
class FileOutcome:
    """One file of a batch: where it went (or the error), and what restored it."""

    source: Path
    output: Path | None
    result: RestoreResult | None = None
    decision: Decision | None = None
    model: ModelInfo | None = None
    map_files: list[Path] = field(default_factory=list)
    error: str = ""


@dataclass
class VideoOutcome:
    """An exported video: where it went, what restored it, how many frames, and what it could not keep."""

    output: Path
    frames: int
    seconds: float
    decision: Decision
    model: ModelInfo | None
    dropped_streams: list[str] = field(default_factory=list)
    kept_streams: list[str] = field(default_factory=list)  # audio/subtitle streams copied unchanged
    notes: list[str] = field(default_factory=list)  # e.g. the source is cut short


def parse_frame_range(text: str | None, count: int) -> range:
    """``A:B`` (frames A to B − 1; either side may be empty) within a video of ``count`` frames."""
    if not text:
        return range(count)
    start_s, sep, end_s = text.partition(":")
    try:
        start = int(start_s) if start_s.strip() else 0
        end = int(end_s) if sep and end_s.strip() else (count if sep else start + 1)
    except ValueError:
        raise WeatherStudioError(f"--frames {text!r}: give A:B, frame numbers from 0") from None
    start, end = max(0, start), min(count, end)
    if start >= end:
        raise WeatherStudioError(f"--frames {text!r}: no frames in that range (the video has {count})")
    return range(start, end)


class Session:
    """The engine the studio and the command line share (see the module docstring)."""

    def __init__(self, device: str = "auto", threads: int | None = None, cache_size: int = MODEL_CACHE_SIZE) -> None:
        self.device = device
        self.threads = set_threads(threads) if threads is not None else None
        self.cache_size = cache_size
        self._models: OrderedDict[tuple, ReadyModel] = OrderedDict()
        self._classifier: Any = None
        self._reader: Any = None  # the open VideoReader (one file at a time)
        self._memory: tuple[Any, ...] | None = None  # (path, model key, frame index, state) of the last frame
        self._video_decision: tuple[Any, Decision] | None = None  # what auto chose for the open video

    def set_threads(self, threads: int | None) -> int:
        self.threads = set_threads(threads)
        return self.threads

    # Networks ------------------------------------------------------------------------------------------------
    def model(self, choice: ModelChoice) -> ReadyModel:
        """The network ``choice`` names, loaded once and kept among the last few used."""
        key = (choice.arch, choice.config, choice.weights, choice.allow_untrained)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        ready = load_choice(choice)
        self._models[key] = ready
        while len(self._models) > self.cache_size:
            self._models.popitem(last=False)
        return ready

    def classify(self, rgb: np.ndarray) -> WeatherGuess:
        """The weather in an H×W×3 float image (the shipped classifier)."""
        if self._classifier is None:
            self._classifier, _ = load_classifier()
        return classify(self._classifier, rgb)

    def decide(self, choice: ModelChoice, rgb: np.ndarray, video: bool = False) -> Decision:
        """``choice`` as it is, or, for ``auto``, the best shipped network for the weather in ``rgb``."""
        if choice.arch != AUTO:
            return Decision(choice)
        return self._decision(choice, self.classify(rgb), video)

    def decide_video(self, choice: ModelChoice, reader: Any) -> Decision:
        """``choice`` as it is, or, for ``auto``, the best shipped video network for the weather of
        :data:`~weatherstudio.engine.weather.VIDEO_SAMPLES` frames spread over ``reader``'s clip (a frame that
        does not decode is left out; none decoding raises the first one's error)."""
        from weatherstudio.core.video_io import VideoError

        if choice.arch != AUTO:
            return Decision(choice)
        frames, errors = [], []
        for index in sample_frames(reader.frame_count):
            try:
                frames.append(reader.frame(index))
            except VideoError as exc:
                errors.append(exc)
        if not frames:
            raise errors[0]
        if self._classifier is None:
            self._classifier, _ = load_classifier()
        return self._decision(choice, classify_frames(self._classifier, frames), video=True)

    def _decision(self, choice: ModelChoice, guess: WeatherGuess, video: bool) -> Decision:
        arch = network_for(guess.weather, video=video)
        if arch is None:
            return Decision(choice, guess, pass_through=True, video=video)
        return Decision(ModelChoice(arch, None, None, choice.allow_untrained), guess, video=video)

    # Video frames --------------------------------------------------------------------------------------------
    def video(self, path: str | os.PathLike[str]) -> Any:
        """The :class:`~weatherstudio.core.video_io.VideoReader` of ``path``, kept open between calls."""
        from weatherstudio.core.video_io import VideoReader

        path = Path(path)
        stamp = path.stat().st_mtime if path.exists() else None
        if self._reader is None or self._reader.path != path or self._reader_stamp != stamp:
            if self._reader is not None:
                self._reader.close()
            self._reader = None
            self._reader = VideoReader(path)
            self._reader_stamp = stamp
            self._memory = None
        return self._reader

    def video_frame(self, path: str | os.PathLike[str], index: int) -> Any:
        """Frame ``index`` of a video as a :class:`~weatherstudio.core.image_io.LoadedImage` (for the viewer)."""
        from weatherstudio.core.image_read import LoadedImage

        reader = self.video(path)
        rgb = reader.frame(index)
        return LoadedImage(rgb, None, reader.info.bit_depth, "VIDEO", "RGB", Path(path))

    def frame_memory(
        self, path: str | os.PathLike[str], index: int, ready: ReadyModel, options: RestoreOptions, should_cancel=None
    ) -> dict[int, Any] | None:
        """A temporal network's memory before frame ``index``: the last frame's when it was ``index − 1``, else
        warmed up on the ``warmup_frames`` before it (None for a still-image network)."""
        if not ready.model.temporal:
            return None
        key = _memory_key(ready, options)
        if self._memory is not None and self._memory[:3] == (Path(path), key, index - 1):
            return self._memory[3]
        reader = self.video(path)
        state = None
        for i in range(max(0, index - int(ready.model.warmup_frames)), index):
            state = restore(reader.frame(i), ready.model, options, state=state, should_cancel=should_cancel).state
        return state

    def remember_frame(
        self, path: str | os.PathLike[str], index: int, ready: ReadyModel | None, options: RestoreOptions, state: Any
    ) -> None:
        """Keep frame ``index``'s memory so that frame ``index + 1`` carries on from it."""
        keep = ready is not None and state
        self._memory = (Path(path), _memory_key(ready, options), index, state) if keep else None

    # Restoring -----------------------------------------------------------------------------------------------
    def restore_image(
        self,
        rgb: np.ndarray,
        choice: ModelChoice,
        options: RestoreOptions | None = None,
        *,
        maps: bool = False,
        preview: bool = False,
        state: dict[int, Any] | None = None,
        frame_of: tuple[str, int] | None = None,
        on_decision: Callable[[Decision, ModelInfo | None], None] | None = None,
        on_preview: Callable[[np.ndarray], None] | None = None,
        on_tile: TileFn | None = None,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        video: bool = False,
    ) -> ImageResult:
        """Restore one image (a photo, or a video frame with the previous frame's ``state``).

        ``preview``: a large image first gets a restore of a :data:`PREVIEW_PIXELS` copy, handed to
        ``on_preview`` at its small size; ``maps``: the maps too (from a :data:`MAPS_PIXELS` copy above
        :data:`MAPS_FULL_RES_MAX_PIXELS`, with a note). ``on_decision`` hears which network runs, before it does.
        ``frame_of = (video path, index)``: ``rgb`` is that frame, and a temporal network gets its memory as if
        the clip had run (:meth:`frame_memory`); the frame's own memory is kept for the next one.
        """
        from weatherstudio.engine.device import describe_device, resolve_device
        from weatherstudio.engine.restore import RestoreCancelled, preview_scale, restore_preview

        options = replace(options or RestoreOptions(device=self.device), return_maps=False)
        if frame_of is not None and choice.arch == AUTO:  # one decision per video, on the frames export uses
            key = (Path(frame_of[0]), getattr(self, "_reader_stamp", None))
            if self._video_decision is None or self._video_decision[0] != key:
                self._video_decision = (key, self.decide_video(choice, self.video(frame_of[0])))
            decision = self._video_decision[1]
        else:
            decision = self.decide(choice, rgb, video=video)
        if decision.pass_through:
            if on_decision:
                on_decision(decision, None)
            device = describe_device(resolve_device(options.device))
            return ImageResult(rgb, {}, {}, 0.0, device, 0, 0, [decision.message()], None, decision)
        ready = self.model(decision.choice)
        if on_decision:
            on_decision(decision, ready.info)
        model = ready.model
        if frame_of is not None and state is None:
            state = self.frame_memory(frame_of[0], frame_of[1], ready, options, should_cancel)
        pixels = rgb.shape[0] * rgb.shape[1]
        if preview and on_preview and pixels > PREVIEW_ABOVE_PIXELS:
            small = restore_preview(rgb, model, replace(options, tile=0), PREVIEW_PIXELS, upscale=False)
            if should_cancel and should_cancel():
                raise RestoreCancelled("restore cancelled")
            on_preview(small.image)
        full_maps = maps and pixels <= MAPS_FULL_RES_MAX_PIXELS
        started = time.perf_counter()
        result = restore(
            rgb,
            model,
            replace(options, return_maps=full_maps),
            progress=progress,
            should_cancel=should_cancel,
            on_tile=on_tile,
            state=state,
            keep_state=frame_of is not None or state is not None or video,
        )
        out_maps, specs, notes = result.maps, result.specs, list(result.notes)
        if maps and not full_maps:
            if should_cancel and should_cancel():
                raise RestoreCancelled("restore cancelled")
            s = preview_scale(rgb.shape[0], rgb.shape[1], MAPS_PIXELS)
            small = restore_preview(
                rgb, model, replace(options, tile=0, return_maps=True), max_pixels=MAPS_PIXELS, upscale=False
            )
            out_maps = small.maps
            specs = {k: replace(v, scale=v.scale * s) for k, v in small.specs.items()}
            h, w = round(rgb.shape[0] * s), round(rgb.shape[1] * s)
            notes.append(f"maps computed on a {w}×{h} copy (the image is over {MAPS_FULL_RES_MAX_PIXELS // 10**6} MP)")
        if decision.guess is not None:
            notes.insert(0, f"auto: {decision.message()}")
        if frame_of is not None:
            self.remember_frame(frame_of[0], frame_of[1], ready, options, result.state)
        seconds = time.perf_counter() - started
        from weatherstudio.engine.backends import where_it_ran

        return ImageResult(
            result.image,
            out_maps,
            specs,
            seconds,
            where_it_ran(result.device, result.backend),
            result.tiles,
            result.tile,
            notes,
            ready.info,
            decision,
            result.state,
        )

    def restore_files(
        self,
        sources: Iterable[Path],
        output_for: Callable[[Path], Path],
        choice: ModelChoice,
        options: RestoreOptions | None = None,
        *,
        maps_dir: Path | None = None,
        overwrite: bool = False,
        protected: tuple[Path, ...] = (),
        quality: int | None = None,
        sequence: bool | None = None,
        progress: Callable[[int, Path, int, int], None] | None = None,
        should_cancel: CancelFn | None = None,
    ) -> Iterator[FileOutcome]:
        """Restore each file to ``output_for(file)``, yielding one outcome per file (a failure is reported
        and the batch goes on). A temporal network reads the files as consecutive frames (in the order
        given) with its memory carried from one to the next, unless ``sequence`` is False.

        ``progress(index, file, tiles_done, tiles_total)``; ``should_cancel`` is checked between tiles.
        """
        from weatherstudio.core.image_io import read_image
        from weatherstudio.engine.pipeline import restore_file
        from weatherstudio.engine.restore import RestoreCancelled
        from weatherstudio.models.weightfile import WeightsError

        options = options or RestoreOptions(device=self.device)
        state: dict[int, Any] | None = None
        sources = list(sources)
        for index, src in enumerate(sources):
            if should_cancel and should_cancel():
                return
            dest = output_for(src)
            decision = None
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                choice_here = choice
                loaded = None
                if choice.arch == AUTO:
                    loaded = read_image(src)  # read once: the classifier and the restore share it
                    decision = self.decide(choice, loaded.rgb)
                    if decision.pass_through:
                        copied = copy_unchanged(src, dest, overwrite, protected, quality)
                        yield FileOutcome(src, copied, decision=decision)
                        continue
                    choice_here = decision.choice
                ready = self.model(choice_here)
                carry = ready.model.temporal and sequence is not False
                res = restore_file(
                    src,
                    dest,
                    ready.model,
                    options,
                    maps_dir=maps_dir,
                    overwrite=overwrite,
                    protected=protected,
                    progress=(lambda d, t, i=index, s=src: progress(i, s, d, t)) if progress else None,
                    should_cancel=should_cancel,
                    quality=quality,
                    state=state if carry else None,
                    keep_state=carry and index + 1 < len(sources),  # the last file's memory has no next frame
                    loaded=loaded,
                )
                state = res.result.state if carry else None
                yield FileOutcome(src, dest, res.result, decision, ready.info, res.map_files)
            except RestoreCancelled:
                return
            except (WeatherStudioError, WeightsError, MemoryError, OSError, torch.OutOfMemoryError) as exc:
                if isinstance(exc, MemoryError | torch.OutOfMemoryError):
                    message = f"{src}: out of memory (try a smaller --tile or the CPU)"
                elif isinstance(exc, OSError) and not isinstance(exc, WeatherStudioError):
                    message = f"{dest}: {exc.strerror or exc}"
                else:
                    message = str(exc)
                yield FileOutcome(src, None, decision=decision, error=message)

    def restore_video(
        self,
        source: Path,
        output: Path,
        choice: ModelChoice,
        options: RestoreOptions | None = None,
        *,
        frames: str | None = None,
        codec: str | None = None,
        quality: int | None = None,
        speed: str = "fast",
        overwrite: bool = False,
        maps_dir: Path | None = None,
        fps: float = 24.0,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: CancelFn | None = None,
    ) -> VideoOutcome:
        """Restore a video file into ``output``: frames streamed through the network (a temporal network's
        memory carried frame to frame, one state per tile; a range that starts mid-clip is warmed up on the
        ``warmup_frames`` before it), the source's timestamps, sound and subtitles kept (see
        :mod:`weatherstudio.core.video_io`). Cancel leaves no file. ``progress(done, total)`` per frame.
        ``source`` may be a folder of frames (played at ``fps``); ``maps_dir`` gets every frame's maps;
        ``speed``: the encoder's speed against file size (:data:`~weatherstudio.core.video_io.SPEEDS`)."""
        from weatherstudio.core.streaming import ReadAhead, WriteBehind
        from weatherstudio.core.video_io import VideoWriter, open_video
        from weatherstudio.engine.pipeline import write_maps
        from weatherstudio.engine.restore import RestoreCancelled

        options = replace(options or RestoreOptions(device=self.device), return_maps=False)
        started = time.perf_counter()
        with open_video(source, fps, streaming=True) as reader:
            span = parse_frame_range(frames, reader.frame_count)
            decision = self.decide_video(choice, reader)  # the frames the studio's decision uses
            ready = None if decision.pass_through else self.model(decision.choice)
            writer = VideoWriter(output, reader, codec, quality, overwrite=overwrite, start=span.start, speed=speed)
            behind = WriteBehind(writer.write, writer.finish, writer.abort)
            try:
                state = None
                if ready is not None and ready.model.temporal:
                    for i in range(max(0, span.start - int(ready.model.warmup_frames)), span.start):
                        state = restore(reader.frame(i), ready.model, options, state=state).state
                # decode ahead and encode behind on their own threads: the network sets the pace
                with ReadAhead(lambda i: reader.frame(i), span) as decoded:
                    for done, (index, frame) in enumerate(decoded):
                        if should_cancel and should_cancel():
                            raise RestoreCancelled("export cancelled")
                        if ready is None:
                            out = frame
                        else:
                            opts = replace(options, return_maps=maps_dir is not None)
                            result = restore(frame, ready.model, opts, state=state, should_cancel=should_cancel)
                            out, state = result.image, result.state
                            options = replace(options, tile=result.tile)  # an out-of-memory retry's tiles stay
                            if maps_dir is not None:
                                stem = f"{Path(source).stem}_{index:06d}"
                                write_maps(result.maps, result.specs, Path(maps_dir), stem, overwrite=overwrite)
                        behind.write(index, out)
                        if progress:
                            progress(done + 1, len(span))
                path = behind.finish()
            except BaseException:
                behind.abort()
                raise
        dropped = [f"{s.kind} stream {s.index} ({s.codec})" for s in writer.dropped]
        kept = [f"{s.kind} ({s.codec})" for s in reader.info.streams if s not in writer.dropped]
        seconds = time.perf_counter() - started
        info = ready.info if ready else None
        return VideoOutcome(path, len(span), seconds, decision, info, dropped, kept, list(reader.info.notes))
