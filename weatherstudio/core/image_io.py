"""Image I/O for photographers: what goes in comes back out — bit depth, alpha, EXIF, ICC profile — minus the weather.

This module is the public face; reading lives in :mod:`.image_read`, writing in :mod:`.image_write`.

    loaded = read_image("IMG_0042.jpg")          # upright float32 RGB in [0, 1] + metadata
    write_image("IMG_0042_clean.jpg", restored, alpha=loaded.alpha, like=loaded, source_paths=[loaded.source])
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import ImageReadError, ImageWriteError, WeatherStudioError
from .image_read import MAX_PIXELS, LoadedImage, apply_orientation, read_image
from .image_write import WRITE_FORMATS, to_uint8, to_uint16, upright_exif, write_image

__all__ = [
    "MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "WRITE_FORMATS",
    "ImageReadError",
    "ImageWriteError",
    "LoadedImage",
    "WeatherStudioError",
    "apply_orientation",
    "is_supported",
    "list_images",
    "natural_key",
    "read_image",
    "to_uint8",
    "to_uint16",
    "upright_exif",
    "write_image",
]

SUPPORTED_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dib", ".gif"}
)
"""File extensions (lower case) that :func:`read_image` reads and :func:`list_images` keeps."""


def is_supported(path: str | os.PathLike[str]) -> bool:
    """True when the extension (any case) is one :func:`read_image` reads."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


def natural_key(name: str) -> tuple:
    """Sort key that orders ``img2`` before ``img10`` and ignores case."""
    parts = re.split(r"(\d+)", name.casefold())
    return (tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name)


def list_images(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, recursive: bool = False
) -> list[Path]:
    """Expand files and folders into the image files to process, in order.

    Files given by name are kept in the order given when their extension is supported (hidden or not).
    A folder contributes its supported, non-hidden files in natural name order (``2`` before ``10``); with
    ``recursive`` its non-hidden subfolders too. Duplicates are dropped. A path that does not exist raises
    :class:`ImageReadError`.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += _folder_images(p, recursive)
        elif p.is_file():
            if is_supported(p):
                found.append(p)
        else:
            raise ImageReadError(f"{p}: no such file or folder")
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _folder_images(folder: Path, recursive: bool) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        files += [Path(root, n) for n in names if not n.startswith(".") and is_supported(n)]
    files = [f for f in files if f.is_file()]
    return sorted(files, key=lambda f: tuple(natural_key(part) for part in f.relative_to(folder).parts))
