"""Write synthetic training pairs for a folder of clean photos (used by ``weatherstudio synth``).

Layout of ``out_dir`` (identical file names across subfolders, so a benchmark can take ``--rainy
out/input --clean out/target``):

* ``snow``: ``input/`` (x, 8-bit), ``target/`` (y, 8-bit), ``mask/`` (z, 16-bit grey), ``aberration/``
  (a, 16-bit RGB)
* ``rain``: ``input/``, ``target/``, ``mask/`` (α, 16-bit grey), ``streak/`` (s, 16-bit RGB),
  ``atmosphere/`` (A, 16-bit RGB)
* ``rain-video`` / ``snow-video``: one folder per photo, ``<stem>/input/frame_0000.png`` … with the same
  subfolders inside.
* ``synth.json``: the summary returned by :func:`synthesize_folder`.

Each photo gets its own random stream derived from (seed, file name), so a folder's result does not depend
on which other files are in it or on ``limit``. Files are written under a temporary name and renamed; the
clean folder is never written to.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from weatherstudio.core.image_io import list_images, read_image
from weatherstudio.synth.rain import RAIN_PRESETS, synthesize_rain
from weatherstudio.synth.snow import SNOW_PRESETS, synthesize_snow
from weatherstudio.synth.video import synthesize_rain_video, synthesize_snow_video

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
KINDS = ("snow", "rain", "snow-video", "rain-video")
Progress = Callable[[int, int], None]

# role -> (subfolder, bits) for each kind's outputs
_LAYOUT: dict[str, dict[str, tuple[str, int]]] = {
    "snow": {"x": ("input", 8), "y": ("target", 8), "z": ("mask", 16), "a": ("aberration", 16)},
    "rain": {
        "x": ("input", 8),
        "y": ("target", 8),
        "alpha": ("mask", 16),
        "s": ("streak", 16),
        "a": ("atmosphere", 16),
    },
}


def presets_for(kind: str) -> list[str]:
    """The preset names valid for a kind."""
    return sorted(SNOW_PRESETS if kind.startswith("snow") else RAIN_PRESETS)


def write_png(path: str | os.PathLike[str], array: np.ndarray, bits: int = 8) -> None:
    """Write a [0, 1] float map (H×W) or RGB image (H×W×3) as an 8- or 16-bit PNG, atomically."""
    path = Path(path)
    peak = 255.0 if bits == 8 else 65535.0
    dtype = np.uint8 if bits == 8 else np.uint16
    q = (np.clip(array, 0.0, 1.0) * peak + 0.5).astype(dtype)
    if q.ndim == 3:
        q = np.ascontiguousarray(q[:, :, ::-1])
    ok, buf = cv2.imencode(".png", q)
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def _sample_seed(seed: int, name: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8"))])


def _output_names(files: list[Path]) -> list[str]:
    """Output stems: the file stem, or stem_suffix when two inputs share a stem."""
    stems = [f.stem for f in files]
    return [f"{f.stem}_{f.suffix[1:].lower()}" if stems.count(f.stem) > 1 else f.stem for f in files]


def _check_not_clean(dirs: list[Path], clean: Path) -> None:
    for d in dirs:
        if d.resolve() == clean:
            raise ValueError(f"output folder {d} is the clean folder; refusing to write into it")


def synthesize_folder(
    kind: str,
    preset: str,
    clean_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    limit: int | None = None,
    progress: Progress | None = None,
    *,
    n_frames: int = 8,
    frame_size: tuple[int, int] | None = None,
    scale: float | None = None,
) -> dict[str, Any]:
    """Make a synthetic pair (or clip, for the video kinds) of every photo in ``clean_dir``; write to ``out_dir``.

    ``kind`` is "snow", "rain", "snow-video" or "rain-video"; ``preset`` one of :func:`presets_for` (kind).
    ``limit`` keeps the first files (sorted by name); ``progress(done, total)`` is called after each photo.
    Video kinds make ``n_frames`` frames of ``frame_size`` (height, width; None: the photo's size).
    Returns a summary (also written to ``out_dir/synth.json``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")
    if preset not in presets_for(kind):
        raise ValueError(f"unknown preset {preset!r} for {kind}; choose from {presets_for(kind)}")
    clean = Path(clean_dir).resolve()
    out = Path(out_dir)
    if not clean.is_dir():
        raise FileNotFoundError(f"clean folder {clean_dir} does not exist")
    _check_not_clean([out], clean)
    files = list_images([clean])
    if limit is not None:
        files = files[: max(0, int(limit))]
    names = _output_names(files)
    base = "snow" if kind.startswith("snow") else "rain"
    layout = _LAYOUT[base]
    video = kind.endswith("video")
    if not video:
        _check_not_clean([out / sub for sub, _ in layout.values()], clean)
    total = len(files)
    if progress is not None:
        progress(0, total)
    start = time.perf_counter()
    written = 0
    mask_means: list[float] = []
    skipped: list[str] = []
    for i, (path, name) in enumerate(zip(files, names, strict=True)):
        try:
            photo = read_image(path).rgb
        except ValueError:
            skipped.append(path.name)
            if progress is not None:
                progress(i + 1, total)
            continue
        rng = np.random.default_rng(_sample_seed(seed, path.name))
        if video:
            clip_dir = out / name
            _check_not_clean([clip_dir / sub for sub, _ in layout.values()], clean)
            if base == "rain":
                samples = synthesize_rain_video(photo, n_frames, preset, rng, size=frame_size, scale=scale)
            else:
                samples = synthesize_snow_video(photo, n_frames, preset, rng, size=frame_size, scale=scale)
            for t, sample in enumerate(samples):
                for role, (sub, bits) in layout.items():
                    write_png(clip_dir / sub / f"frame_{t:04d}.png", getattr(sample, role), bits)
                    written += 1
                mask_means.append(float(sample[2].mean()))  # z for snow, s for rain
        else:
            sample = (
                synthesize_snow(photo, preset, rng, scale=scale)
                if base == "snow"
                else synthesize_rain(photo, preset, rng, scale=scale)
            )
            for role, (sub, bits) in layout.items():
                write_png(out / sub / f"{name}.png", getattr(sample, role), bits)
                written += 1
            mask_means.append(float(sample[2].mean()))  # z for snow, s for rain
        if progress is not None:
            progress(i + 1, total)
    seconds = time.perf_counter() - start
    done = total - len(skipped)
    summary: dict[str, Any] = {
        "kind": kind,
        "preset": preset,
        "seed": int(seed),
        "clean_dir": str(clean),
        "out_dir": str(out.resolve()),
        "count": done,
        "files_written": written,
        "skipped": skipped,
        "layout": {role: sub for role, (sub, _) in layout.items()},
        "bits": {sub: bits for sub, bits in layout.values()},
        "names": names if not video else [f"{n}/" for n in names],
        "mean_level": float(np.mean(mask_means)) if mask_means else 0.0,
        "mean_level_of": "z" if base == "snow" else "s",
        "seconds": round(seconds, 3),
        "pairs_per_second": round(done / seconds, 3) if seconds > 0 else None,
    }
    if video:
        summary["n_frames"] = int(n_frames)
        summary["frame_size"] = list(frame_size) if frame_size is not None else None
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".synth.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "synth.json")
    return summary
