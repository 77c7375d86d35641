"""Restore image files: read (with metadata), restore, write beside the metadata, and save maps."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weatherstudio.core.errors import ImageWriteError
from weatherstudio.core.image_io import read_image, write_image
from weatherstudio.core.map_codec import encode_u16
from weatherstudio.engine.restore import CancelFn, ProgressFn, RestoreOptions, RestoreResult, restore
from weatherstudio.models.base import MapSpec, RestorationModel


@dataclass
class FileResult:
    source: Path
    output: Path
    result: RestoreResult
    map_files: list[Path]


def output_path_for(source: Path, out: Path, suffix: str | None = None) -> Path:
    """Where the restored copy of ``source`` goes in folder ``out`` (same name, optional new suffix)."""
    return out / (source.stem + (suffix or source.suffix.lower()))


def map_to_uint16(values: np.ndarray, spec: MapSpec | None) -> np.ndarray:
    """Map values to 16 bits linearly from the spec's value range (or the data's own range)."""
    lo, hi = spec.value_range if spec else (float(np.min(values)), float(np.max(values)))
    return encode_u16(values, (lo, hi if hi > lo else lo + 1.0))


def write_maps(maps: dict[str, np.ndarray], specs: dict[str, MapSpec], folder: Path, stem: str) -> list[Path]:
    """Each map as a 16-bit PNG (linear over its declared range) plus exact ``.npy``, and a JSON index."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index = {}
    for name, values in maps.items():
        spec = specs.get(name)
        base = folder / f"{stem}_{name}"
        np.save(base.with_suffix(".npy"), values.astype(np.float32))
        img = map_to_uint16(values, spec)
        if img.ndim == 3 and img.shape[2] == 3:
            img = img[..., ::-1]  # cv2 writes BGR
        elif img.ndim == 3:
            img = img[..., 0] if img.shape[2] == 1 else img.mean(axis=2).astype(np.uint16)
        if not cv2.imwrite(str(base.with_suffix(".png")), np.ascontiguousarray(img)):
            raise ImageWriteError(f"{base}.png: could not write the map")
        written += [base.with_suffix(".png"), base.with_suffix(".npy")]
        index[name] = {
            **(spec.as_dict() if spec else {}),
            "png_mapping": "value = lo + png/65535 · (hi − lo)",
            "shape": list(values.shape),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    idx = folder / f"{stem}_maps.json"
    idx.write_text(json.dumps(index, indent=2, ensure_ascii=False))
    written.append(idx)
    return written


def restore_file(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    model: RestorationModel,
    options: RestoreOptions | None = None,
    *,
    maps_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    protected: tuple[Path, ...] = (),
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    quality: int | None = None,
    tile_states: dict | None = None,
) -> FileResult:
    """Restore one file to ``output`` keeping EXIF, ICC profile, bit depth and alpha of the source.

    ``tile_states`` carries a video model's memory from the previous frame (see :mod:`.video`).
    """
    source, output = Path(source), Path(output)
    loaded = read_image(source)
    opts = options or RestoreOptions()
    if maps_dir is not None and not opts.return_maps:
        opts = RestoreOptions(opts.device, opts.tile, opts.overlap, opts.fp16, True)
    result = restore(loaded.rgb, model, opts, progress=progress, should_cancel=should_cancel, tile_states=tile_states)
    write_image(
        output,
        result.image,
        alpha=loaded.alpha,
        like=loaded,
        quality=quality,
        overwrite=overwrite,
        source_paths=(source, *protected),
    )
    map_files = write_maps(result.maps, result.specs, Path(maps_dir), source.stem) if maps_dir is not None else []
    return FileResult(source, output, result, map_files)
