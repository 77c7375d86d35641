"""The one map writer (studio inspector, ``remove --maps``, the demo): ``.npy`` (exact float32) or 16-bit
PNG/TIFF, each file with a sidecar ``.json``.

A 16-bit file stores ``round((value − lo) / (hi − lo) × 65535)`` with ``(lo, hi)`` the map's
:attr:`MapSpec.value_range`, clipped to it — so a signed map (residual, Laplacian level) is stored with an offset
and 0 lands mid-scale. The sidecar names the encoding, the range, the map's spec and the data's actual
min/max (which tells whether anything was clipped); ``value = lo + stored × (hi − lo) / 65535`` decodes it.
The sidecar of ``x.png`` is ``x.png.json``. Files are written to a hidden temporary name and renamed into place,
and nothing that exists is replaced unless the caller says ``overwrite``.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from weatherstudio.core.map_codec import encode_u16
from weatherstudio.models.base import MapSpec

EXPORT_FORMATS = {".npy": "NumPy float32 (exact)", ".png": "PNG 16-bit", ".tif": "TIFF 16-bit", ".tiff": "TIFF 16-bit"}


class MapExportError(OSError):
    """A map that could not be written; the message is one line for the user."""


def _encode(path: Path, arr: np.ndarray, spec: MapSpec) -> bytes:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr, np.float32))
        return buf.getvalue()
    data = encode_u16(arr, spec.value_range)
    if data.ndim == 3 and data.shape[2] not in (1, 3):  # e.g. a 2-channel offset field: its mean, as grey
        data = encode_u16(arr.mean(axis=2, keepdims=True), spec.value_range)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    if suffix == ".png":
        if data.ndim == 3:
            data = cv2.cvtColor(data[..., :3], cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".png", data)
        if not ok:
            raise MapExportError(f"{path}: PNG encoding failed")
        return encoded.tobytes()
    if suffix in (".tif", ".tiff"):
        import tifffile

        buf = io.BytesIO()
        photometric = "rgb" if data.ndim == 3 and data.shape[2] == 3 else "minisblack"
        tifffile.imwrite(buf, data, photometric=photometric, compression="zlib")
        return buf.getvalue()
    raise MapExportError(f"{path}: maps export as {', '.join(EXPORT_FORMATS)}, not '{suffix}'")


def sidecar(path: Path, arr: np.ndarray, spec: MapSpec, context: dict[str, Any] | None = None) -> dict[str, Any]:
    lo, hi = spec.value_range
    exact = path.suffix.lower() == ".npy"
    finite = arr[np.isfinite(arr)]
    return {
        "file": path.name,
        "map": spec.as_dict(),
        "shape": list(arr.shape),
        "encoding": "float32, exact values" if exact else "uint16: stored = round((value - lo) / (hi - lo) * 65535)",
        "decode": None if exact else "value = lo + stored * (hi - lo) / 65535",
        "value_range": [lo, hi],
        "clipped_to_range": not exact,
        "data_min": float(finite.min()) if finite.size else None,
        "data_max": float(finite.max()) if finite.size else None,
        **(context or {}),
    }


def _atomic_write(path: Path, payload: bytes, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise MapExportError(f"{path}: already exists")
    if not path.parent.is_dir():
        raise MapExportError(f"{path}: the folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except OSError as exc:
        raise MapExportError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def export_map(
    path: str | os.PathLike[str],
    arr: np.ndarray,
    spec: MapSpec,
    context: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write one map and its sidecar (``<file name>.json`` beside it); returns both paths."""
    path = Path(path)
    arr = arr if arr.ndim == 3 else arr[..., None]
    payload = _encode(path, arr, spec)
    meta = sidecar_path(path)
    if meta.exists() and not overwrite:
        raise MapExportError(f"{meta}: already exists")
    _atomic_write(path, payload, overwrite)
    text = json.dumps(sidecar(path, arr, spec, context), indent=2, ensure_ascii=False)
    _atomic_write(meta, text.encode("utf-8"), overwrite)
    return [path, meta]


def sidecar_path(path: Path) -> Path:
    """``detail.png`` → ``detail.png.json`` (so a .png and a .npy of one map keep separate sidecars)."""
    return path.with_name(path.name + ".json")


def planned_names(stem: str, names: list[str], suffix: str) -> list[str]:
    return [f"{stem}_{name}{suffix}" for name in names]


def export_all(
    folder: str | os.PathLike[str],
    stem: str,
    maps: dict[str, np.ndarray],
    specs: dict[str, MapSpec],
    suffix: str | tuple[str, ...] = ".png",
    context: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write every map as ``<stem>_<map><suffix>`` for each suffix (plus sidecars) into ``folder`` (made if
    missing); returns the files written. Nothing is written when any of them exists already (without
    ``overwrite``)."""
    folder = Path(folder)
    suffixes = (suffix,) if isinstance(suffix, str) else tuple(suffix)
    names = [n for n in maps if n in specs]
    files = [(n, f) for sfx in suffixes for n, f in zip(names, planned_names(stem, names, sfx), strict=True)]
    if not overwrite:
        clash = [p for _, f in files for p in (folder / f, sidecar_path(folder / f)) if p.exists()]
        if clash:
            raise MapExportError(f"{clash[0]}: already exists ({len(clash)} of the maps' files would be replaced)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MapExportError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from None
    written: list[Path] = []
    for name, file in files:
        written += export_map(folder / file, maps[name], specs[name], context, overwrite=overwrite)
    return written
