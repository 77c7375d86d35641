"""Export intermediate maps: ``.npy`` (exact float32) or 16-bit PNG/TIFF, each with a sidecar ``.json``.

A 16-bit file stores ``round((value − lo) / (hi − lo) × 65535)`` with ``(lo, hi)`` the map's
:attr:`MapSpec.value_range`, clipped to it — so a signed map (residual, Laplacian level) is stored with an offset
and 0 lands mid-scale. The sidecar names the encoding, the range, the map's spec and the data's actual
min/max (which tells whether anything was clipped); ``value = lo + stored × (hi − lo) / 65535`` decodes it.
The sidecar of ``x.png`` is ``x.png.json``. Files are written to a hidden temporary name and renamed into place.
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
    suffix: str = ".png",
    context: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write every map as ``<stem>_<map><suffix>`` (plus sidecars) into ``folder``; returns the files written."""
    folder = Path(folder)
    names = [n for n in maps if n in specs]
    if not overwrite:
        clash = [folder / f for f in planned_names(stem, names, suffix) if (folder / f).exists()]
        if clash:
            raise MapExportError(f"{clash[0]}: already exists ({len(clash)} of the maps' files would be replaced)")
    written: list[Path] = []
    for name, file in zip(names, planned_names(stem, names, suffix), strict=True):
        written += export_map(folder / file, maps[name], specs[name], context, overwrite=overwrite)
    return written
