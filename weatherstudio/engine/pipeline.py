"""Restore image files: read (with metadata), restore, write beside the metadata, and save maps."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from weatherstudio.core.errors import ImageWriteError
from weatherstudio.core.image_io import read_image, write_image
from weatherstudio.engine.restore import CancelFn, ProgressFn, RestoreOptions, RestoreResult, restore
from weatherstudio.models.base import MapSpec, RestorationModel


@dataclass
class FileResult:
    source: Path
    output: Path
    result: RestoreResult
    map_files: list[Path]


#: Inputs whose format is read but not written keep their pixels in this format instead.
WRITE_AS = {".gif": ".png"}


def output_suffix(source: Path) -> str:
    """The suffix a restored copy of ``source`` gets by default: its own, where it can be written."""
    suffix = source.suffix.lower()
    return WRITE_AS.get(suffix, suffix)


def output_path_for(source: Path, out: Path, suffix: str | None = None) -> Path:
    """Where the restored copy of ``source`` goes in folder ``out`` (same name, optional new suffix)."""
    return out / (source.stem + (suffix or output_suffix(source)))


def write_maps(
    maps: dict[str, np.ndarray],
    specs: dict[str, MapSpec],
    folder: Path,
    stem: str,
    context: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Each map as a 16-bit PNG (linear over its declared range) and an exact ``.npy``, each with its sidecar
    JSON (:mod:`.map_writer`, the same files the studio's inspector exports)."""
    from weatherstudio.engine.map_writer import MapExportError, export_all

    try:
        return export_all(folder, stem, maps, specs, (".png", ".npy"), context, overwrite=overwrite)
    except MapExportError as exc:
        raise ImageWriteError(str(exc)) from None


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
    state: dict | None = None,
    keep_state: bool = True,
    loaded: Any = None,
) -> FileResult:
    """Restore one file to ``output`` keeping EXIF, ICC profile, bit depth and alpha of the source.

    ``state`` is a video model's memory after the previous frame (``result.state`` of its FileResult);
    ``loaded``: the source as :func:`~weatherstudio.core.image_io.read_image` returned it, if already read.
    """
    source, output = Path(source), Path(output)
    loaded = loaded if loaded is not None else read_image(source)  # the caller may have read it already
    opts = options or RestoreOptions()
    if maps_dir is not None and not opts.return_maps:
        opts = replace(opts, return_maps=True)
    result = restore(
        loaded.rgb, model, opts, progress=progress, should_cancel=should_cancel, state=state, keep_state=keep_state
    )
    write_image(
        output,
        result.image,
        alpha=loaded.alpha,
        like=loaded,
        quality=quality,
        overwrite=overwrite,
        source_paths=(source, *protected),
    )
    map_files = []
    if maps_dir is not None:
        context = {"source": str(source), "model": model.arch, "config": model.config.get("name", "")}
        map_files = write_maps(result.maps, result.specs, Path(maps_dir), source.stem, context, overwrite=overwrite)
    return FileResult(source, output, result, map_files)
