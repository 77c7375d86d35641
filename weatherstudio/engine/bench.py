"""Score a model on paired data with the deraining papers' protocol (Y channel, MATLAB conventions).

Three kinds of sources, all scored the same way (:func:`~weatherstudio.core.metrics.score_pair` per image):

* paired folders (``--rainy``/``--clean``, same file names, as the benchmarks ship them);
* clip folders as ``weatherstudio synth --kind rain-video`` writes them (``<clip>/input``, ``<clip>/target``),
  run frame by frame with the model's memory carried through each clip, plus the clip's temporal
  :func:`~weatherstudio.core.metrics.flicker`;
* weather synthesized with a fixed seed on the held-out "test" split of the clean photos (never trained on),
  the sets that the training configs' ``[eval]`` tables score;
* a video file against a folder of its clean frames (``--video``/``--clean``), scored as one clip.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.core.image_io import list_images, read_image
from weatherstudio.core.metrics import flicker, score_pair
from weatherstudio.engine.restore import RestoreOptions, restore
from weatherstudio.engine.video import SequenceRestorer
from weatherstudio.models.base import RestorationModel

METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")

Pair = tuple[str, np.ndarray, np.ndarray]
Clip = tuple[str, list[np.ndarray], list[np.ndarray]]


@dataclass
class BenchReport:
    n: int
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    ssim_rgb: float
    sec_per_image: float
    input_psnr_y: float
    input_ssim_y: float
    flicker: float | None = None  # clips only: mean over clips, 8-bit Y units
    input_flicker: float | None = None
    frames: int | None = None  # clips only: frames scored (n counts clips)
    per_image: list[dict] = field(default_factory=list)

    def as_dict(self, with_images: bool = False) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "per_image" and v is not None}
        if with_images:
            d["per_image"] = self.per_image
        return d


def paired_files(degraded_dir: Path, clean_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs with the same file name in both folders (as the benchmarks ship them)."""
    degraded = list_images([degraded_dir])
    clean = {p.name: p for p in list_images([clean_dir])}
    pairs = [(p, clean[p.name]) for p in degraded if p.name in clean]
    if not pairs:
        raise WeatherStudioError(f"no pairs: no file name of {degraded_dir} is also in {clean_dir}")
    return pairs


def read_pairs(pairs: Iterable[tuple[Path, Path]]) -> Iterator[Pair]:
    """The images of :func:`paired_files`, read one pair at a time."""
    for rainy_path, clean_path in pairs:
        rainy = read_image(rainy_path).rgb
        clean = read_image(clean_path).rgb
        if rainy.shape != clean.shape:
            raise WeatherStudioError(f"{rainy_path.name}: sizes differ from its clean twin")
        yield rainy_path.name, rainy, clean


def clip_folders(root: Path) -> list[tuple[str, list[Path], list[Path]]]:
    """The clips under ``root`` in ``weatherstudio synth``'s video layout: ``<clip>/input`` and ``<clip>/target``
    with the same frame names (frames in name order)."""
    root = Path(root)
    if not root.is_dir():
        raise WeatherStudioError(f"{root} is not a folder")
    clips = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if not ((d / "input").is_dir() and (d / "target").is_dir()):
            continue
        pairs = paired_files(d / "input", d / "target")
        clips.append((d.name, [a for a, _ in pairs], [b for _, b in pairs]))
    if not clips:
        raise WeatherStudioError(f"no clips under {root}: expected <clip>/input and <clip>/target folders")
    return clips


def read_video_clip(video: Path, clean_dir: Path) -> Iterator[Clip]:
    """A video file and the folder of its clean frames (in name order) as one clip; the counts must agree.

    The video's frames are decoded one at a time (a video is not held in memory twice over).
    """
    from weatherstudio.core.video_io import VideoReader

    clean = list_images([Path(clean_dir)])
    with VideoReader(video) as reader:
        if reader.frame_count != len(clean):
            raise WeatherStudioError(
                f"{video.name} has {reader.frame_count} frames but {clean_dir} holds {len(clean)} clean frames"
            )
        rainy = [reader.frame(i).copy() for i in range(reader.frame_count)]
    frames = [read_image(p).rgb for p in clean]
    if frames and frames[0].shape != rainy[0].shape:
        raise WeatherStudioError(f"{video.name}: its frames are not the size of the clean frames")
    yield video.name, rainy, frames


def read_clips(clips: Iterable[tuple[str, list[Path], list[Path]]]) -> Iterator[Clip]:
    """The frames of :func:`clip_folders`, read one clip at a time."""
    for name, rainy_paths, clean_paths in clips:
        _, rainy, clean = zip(*read_pairs(zip(rainy_paths, clean_paths, strict=True)), strict=True)
        yield name, list(rainy), list(clean)


def iter_scores(
    model: RestorationModel, pairs: Iterable[Pair], options: RestoreOptions | None = None
) -> Iterator[dict]:
    """Restore and score each pair, yielding one record per image (a generator: progress is per image).

    A video model restores each still from a fresh memory.
    """
    for name, rainy, clean in pairs:
        start = time.perf_counter()
        out = restore(rainy, model, options).image
        seconds = time.perf_counter() - start
        base = score_pair(rainy, clean)
        yield {
            "name": name,
            "seconds": seconds,
            **score_pair(out, clean),
            "input_psnr_y": base["psnr_y"],
            "input_ssim_y": base["ssim_y"],
        }


def iter_clip_scores(
    model: RestorationModel, clips: Iterable[Clip], options: RestoreOptions | None = None
) -> Iterator[dict]:
    """Restore each clip frame by frame as the studio and ``remove`` do (a temporal model's memory carried
    from frame to frame, reset per clip) and yield one record per clip: the frames' mean scores, the input's,
    and the output's and input's :func:`~weatherstudio.core.metrics.flicker`."""
    for name, rainy, clean in clips:
        restorer = SequenceRestorer(model, options)
        start = time.perf_counter()
        outs = [restorer.restore_next(f, i).image for i, f in enumerate(rainy)]
        seconds = (time.perf_counter() - start) / max(1, len(rainy))
        frames = [score_pair(o, c) for o, c in zip(outs, clean, strict=True)]
        inputs = [score_pair(r, c) for r, c in zip(rainy, clean, strict=True)]
        yield {
            "name": name,
            "frames": len(rainy),
            "seconds": seconds,
            **{k: float(np.mean([f[k] for f in frames])) for k in METRICS},
            "input_psnr_y": float(np.mean([f["psnr_y"] for f in inputs])),
            "input_ssim_y": float(np.mean([f["ssim_y"] for f in inputs])),
            "flicker": flicker(outs, clean),
            "input_flicker": flicker(rainy, clean),
        }


def synthetic_test_set(
    kind: str,
    preset: str,
    data_root: Path,
    *,
    split: str = "test",
    limit: int | None = None,
    size: int | None = None,
    frames: int = 5,
    seed: int | None = None,
    photos: str = "clean",
    max_side: int | None = None,
) -> Iterator[Pair] | Iterator[Clip]:
    """Weather synthesized with a fixed seed on the photos of ``split`` under ``data_root/photos`` — the sets
    the training configs' ``[eval]`` tables score (:func:`~weatherstudio.engine.objectives.evaluate_spec` reads
    them here): whole photos (long side ≤ ``max_side``, default 640 px) unless ``size`` asks for crops; for
    "rain-video", clips of ``frames`` frames of ``size``² (default 256)."""
    from weatherstudio.engine.datasets import MAX_SIDE, TEST_SEED, PhotoPool, iter_synthetic_clips, iter_synthetic_pairs

    pool = PhotoPool.load(Path(data_root) / photos, split, MAX_SIDE if max_side is None else int(max_side))
    seed = TEST_SEED if seed is None else int(seed)
    n = limit or len(pool)
    if kind == "rain-video":
        return iter_synthetic_clips(pool, [preset], n, frames, size or 256, seed)
    if kind in ("snow", "rain"):
        return iter_synthetic_pairs(pool, kind, [preset], n, size, seed)
    raise WeatherStudioError(f"unknown synthetic test set {kind!r} (snow, rain or rain-video)")


def summarize(records: list[dict]) -> BenchReport:
    """Means over the records of :func:`iter_scores` or :func:`iter_clip_scores`."""
    if not records:
        raise WeatherStudioError("nothing was scored")

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in records]))

    clips = "flicker" in records[0]
    return BenchReport(
        n=len(records),
        psnr_y=mean("psnr_y"),
        ssim_y=mean("ssim_y"),
        psnr_rgb=mean("psnr_rgb"),
        ssim_rgb=mean("ssim_rgb"),
        sec_per_image=mean("seconds"),
        input_psnr_y=mean("input_psnr_y"),
        input_ssim_y=mean("input_ssim_y"),
        flicker=mean("flicker") if clips else None,
        input_flicker=mean("input_flicker") if clips else None,
        frames=int(sum(r["frames"] for r in records)) if clips else None,
        per_image=records,
    )
