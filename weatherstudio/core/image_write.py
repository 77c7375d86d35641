"""Write float32 RGB in [0, 1] as PNG, JPEG, TIFF, WebP or BMP, keeping the metadata of the image it came from.

Encoding happens in memory; the bytes go to a hidden temporary file in the target folder that is then renamed
over the target (atomic), so a crash never leaves half a photo and a failure never leaves the temporary file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import struct
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin

from .errors import ImageWriteError
from .image_read import LoadedImage

WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
_EIGHT_BIT_ONLY = frozenset({"JPEG", "WEBP", "BMP"})
_XMP_ORIENTATION = re.compile(rb"(tiff:Orientation\s*(?:=\s*[\"']|>)\s*)[2-8]")
_TIFF_ASCII_TAGS = (270, 271, 272, 305, 306, 315, 33432)  # description, make, model, software, date, artist, (c)
_SUB_IFDS = {34665: 34664, 34853: 34852}  # EXIF / GPS pointer → placeholder code tifffile lets us write
_TIFF_COMPRESSIONS = {"deflate": "zlib", "lzw": "lzw", "none": None}  # kept from a source TIFF; tifffile's names


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8, rounded to nearest and clipped (NaN → 0)."""
    return _quantise(x, 255, np.uint8)


def to_uint16(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint16, rounded to nearest and clipped (NaN → 0)."""
    return _quantise(x, 65535, np.uint16)


def _quantise(x: np.ndarray, top: int, dtype: type) -> np.ndarray:
    y = np.multiply(x, top, dtype=np.float32)
    np.nan_to_num(y, copy=False, nan=0.0)
    np.rint(y, out=y)
    np.clip(y, 0, top, out=y)
    return y.astype(dtype)


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    like: LoadedImage | None = None,
    bit_depth: int | None = None,
    quality: int | None = None,
    overwrite: bool = False,
    source_paths: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write ``rgb`` (float H×W×3 in [0, 1]) and optional straight ``alpha`` (H×W) to ``path``; return the path.

    The format follows the extension. With ``like`` (the :class:`LoadedImage` the pixels came from) the file keeps
    its EXIF, ICC profile, XMP, DPI, PNG text, bit depth (16-bit in → 16-bit out for PNG/TIFF; JPEG, WebP and BMP
    are always 8-bit) and greyscale-ness (when the three channels are still equal). The EXIF Orientation tag is
    reset to 1 (and XMP ``tiff:Orientation`` too) because :func:`read_image` already turned the pixels upright;
    the EXIF thumbnail is dropped, since it shows the unrestored, unrotated picture. TIFF output keeps IFD0's text
    tags and the EXIF and GPS sub-directories, and the source TIFF's compression when it is LZW, Deflate or none
    (anything else, and any other source, gives Deflate).

    JPEG quality: ``quality``, else 95 or the source's estimated quality if higher; 4:4:4 chroma at quality ≥ 90.
    WebP is lossless when the source was lossless WebP and no ``quality`` is given. JPEG drops alpha (warning).
    Refuses to write over ``like.source`` or any of ``source_paths``, and over an existing file unless
    ``overwrite``. Raises :class:`ImageWriteError` with one line.
    """
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageWriteError(f"{path}: cannot write '{path.suffix}' files (use .png, .jpg, .tif, .webp or .bmp)")
    _check_target(path, overwrite, [*source_paths, *([like.source] if like is not None else [])])
    rgb, alpha = _check_pixels(path, rgb, alpha)
    depth = bit_depth or (like.bit_depth if like is not None else 8)
    if bit_depth not in (None, 8) and fmt in _EIGHT_BIT_ONLY or depth not in (8, 16):
        raise ImageWriteError(f"{path}: cannot write {depth}-bit {fmt} (JPEG, WebP, BMP: 8 bits; PNG, TIFF: 8 or 16)")
    depth = 8 if fmt in _EIGHT_BIT_ONLY else depth
    if quality is not None and not 1 <= quality <= 100:
        raise ImageWriteError(f"{path}: quality must be between 1 and 100, not {quality}")
    if alpha is not None and fmt == "JPEG":
        warnings.warn(f"{path}: JPEG has no alpha channel; transparency is dropped", stacklevel=2)
        alpha = None
    quant = to_uint16 if depth == 16 else to_uint8
    pix = quant(rgb)
    if like is not None and like.is_grey and alpha is None and fmt != "WEBP" and _channels_equal(pix):
        pix = np.ascontiguousarray(pix[..., 0])
    if alpha is not None:
        pix = np.concatenate([pix, quant(alpha)[..., None]], axis=2)
    try:
        payload = _ENCODERS[fmt](pix, _Meta(like, grey=pix.ndim == 2), quality)
    except ImageWriteError:
        raise
    except Exception as exc:  # encoder failures (EXIF too long for a JPEG segment, ...) become one line
        raise ImageWriteError(f"{path}: cannot encode {fmt} ({' '.join(str(exc).split())})") from exc
    _atomic_write(path, payload, overwrite)
    return path


def _check_target(path: Path, overwrite: bool, sources: list[str | os.PathLike[str]]) -> None:
    for src in sources:
        if _same_file(path, Path(src)):
            raise ImageWriteError(f"{path}: refusing to overwrite an input image")
    if not path.parent.is_dir():
        raise ImageWriteError(f"{path}: the folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise ImageWriteError(f"{path}: already exists (allow overwriting to replace it)")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare the resolved spellings
        return os.path.normcase(a.resolve()) == os.path.normcase(b.resolve())


def _check_pixels(path: Path, rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1 or rgb.dtype.kind != "f":
        raise ImageWriteError(f"{path}: expected float RGB of shape H×W×3, got {rgb.dtype} {rgb.shape}")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != rgb.shape[:2] or alpha.dtype.kind != "f":
            raise ImageWriteError(f"{path}: alpha must be float H×W {rgb.shape[:2]}, got {alpha.dtype} {alpha.shape}")
    if not np.isfinite(rgb).all() or (alpha is not None and not np.isfinite(alpha).all()):
        raise ImageWriteError(f"{path}: the image contains NaN or infinite values")
    return rgb, alpha


def _channels_equal(pix: np.ndarray) -> bool:
    return bool(np.array_equal(pix[..., 0], pix[..., 1]) and np.array_equal(pix[..., 0], pix[..., 2]))


class _Meta:
    """The source's metadata made fit for the output: orientation reset, ICC only if its colour space matches."""

    def __init__(self, like: LoadedImage | None, grey: bool) -> None:
        self.like = like
        self.exif = upright_exif(like.exif) if like is not None and like.exif else None
        icc = like.icc_profile if like is not None else None
        self.icc = icc if icc and icc[16:20] == (b"GRAY" if grey else b"RGB ") else None
        xmp = like.xmp if like is not None else None
        self.xmp = _XMP_ORIENTATION.sub(rb"\g<1>1", xmp) if xmp else None
        self.dpi = like.dpi if like is not None else None
        self.text = like.text if like is not None else {}

    def pillow(self) -> dict:
        kw = {"exif": self.exif, "icc_profile": self.icc, "xmp": self.xmp, "dpi": self.dpi}
        return {k: v for k, v in kw.items() if v}


def upright_exif(raw: bytes) -> bytes | None:
    """EXIF with Orientation set to 1 and the IFD1 thumbnail unlinked, edited in place so every other byte survives.

    Returns None (with a warning) when the EXIF is too broken to edit safely.
    """
    buf = bytearray(raw[6:] if raw.startswith(b"Exif\x00\x00") else raw)
    try:
        order = {b"II": "<", b"MM": ">"}[bytes(buf[:2])]
        ifd = struct.unpack_from(order + "I", buf, 4)[0]
        count = struct.unpack_from(order + "H", buf, ifd)[0]
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, kind, n = struct.unpack_from(order + "HHI", buf, entry)
            if tag == 0x0112 and n == 1 and kind in (3, 4):
                struct.pack_into(order + ("H" if kind == 3 else "I"), buf, entry + 8, 1)
        struct.pack_into(order + "I", buf, ifd + 2 + 12 * count, 0)
    except (KeyError, struct.error):
        warnings.warn("the source's EXIF is malformed and was not copied", stacklevel=3)
        return None
    return b"Exif\x00\x00" + bytes(buf)


def _pil_image(pix: np.ndarray) -> Image.Image:
    return Image.fromarray(pix, {2: "L", 3: "RGB", 4: "RGBA"}[pix.ndim if pix.ndim == 2 else pix.shape[2]])


def _encode_jpeg(pix: np.ndarray, meta: _Meta, quality: int | None) -> bytes:
    like = meta.like
    q = quality if quality is not None else max(95, (like.quality or 0) if like is not None else 0)
    sub = "4:4:4" if q >= 90 else ((like.subsampling if like is not None else None) or "4:2:0")
    buf = io.BytesIO()
    _pil_image(pix).save(buf, "JPEG", quality=q, subsampling=sub, **meta.pillow())
    return buf.getvalue()


def _encode_webp(pix: np.ndarray, meta: _Meta, quality: int | None) -> bytes:
    like = meta.like
    lossless = quality is None and like is not None and like.format == "WEBP" and like.compression == "lossless"
    kw = {"lossless": True, "quality": 100, "exact": True} if lossless else {"quality": quality or 95}
    buf = io.BytesIO()
    _pil_image(pix).save(buf, "WEBP", method=4, **kw, **{k: v for k, v in meta.pillow().items() if k != "dpi"})
    return buf.getvalue()


def _encode_bmp(pix: np.ndarray, meta: _Meta, quality: int | None) -> bytes:
    buf = io.BytesIO()
    _pil_image(pix).save(buf, "BMP", **({"dpi": meta.dpi} if meta.dpi else {}))
    return buf.getvalue()


def _encode_png(pix: np.ndarray, meta: _Meta, quality: int | None) -> bytes:
    """OpenCV writes 8- and 16-bit PNG alike; the metadata chunks go in right after IHDR."""
    import cv2

    bgr = pix if pix.ndim == 2 else np.ascontiguousarray(pix[..., [2, 1, 0, 3][: pix.shape[2]]])
    ok, encoded = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ImageWriteError("OpenCV could not encode the PNG")
    chunks = []
    if meta.icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(meta.icc)))
    if meta.dpi:
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", *(round(d / 0.0254) for d in meta.dpi), 1)))
    if meta.exif:
        chunks.append(_png_chunk(b"eXIf", meta.exif[6:]))
    texts = [*meta.text.items(), *([("XML:com.adobe.xmp", meta.xmp.decode("utf-8", "replace"))] if meta.xmp else [])]
    for key, value in texts:
        keyword = key.encode("latin-1", "replace")[:79]
        if keyword:
            chunks.append(_png_chunk(b"iTXt", keyword + b"\x00" * 5 + value.encode("utf-8")))
    data = encoded.tobytes()
    return data[:33] + b"".join(chunks) + data[33:]  # 8-byte signature + 25-byte IHDR chunk


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _encode_tiff(pix: np.ndarray, meta: _Meta, quality: int | None) -> bytes:
    """tifffile for 8 and 16 bits (Pillow cannot write 16-bit RGB), compressed as :func:`_tiff_compression` says.

    tifffile will not write the EXIF/GPS pointer tags, so placeholders are written and patched after the
    sub-directories (serialised by Pillow at their final offsets) are appended to the file.
    """
    import tifffile

    exif = Image.Exif()
    if meta.exif:
        exif.load(meta.exif)
    extratags = [(tag, "s", 0, str(exif[tag]), True) for tag in _TIFF_ASCII_TAGS if isinstance(exif.get(tag), str)]
    subs = {tag: exif.get_ifd(tag) for tag in _SUB_IFDS if tag in exif}
    subs = {tag: {k: v for k, v in ifd.items() if k != 40965} for tag, ifd in subs.items() if ifd}
    extratags += [(_SUB_IFDS[tag], "I", 1, 0, True) for tag in subs]
    if meta.xmp:
        extratags.append((700, "B", len(meta.xmp), meta.xmp, True))
    compression = _TIFF_COMPRESSIONS[_tiff_compression(meta.like)]
    buf = io.BytesIO()
    tifffile.imwrite(
        buf,
        pix,
        photometric="minisblack" if pix.ndim == 2 else "rgb",
        extrasamples=("unassalpha",) if pix.ndim == 3 and pix.shape[2] == 4 else None,
        compression=compression,
        predictor=compression is not None,
        iccprofile=meta.icc,
        metadata=None,
        software=False,
        resolution=meta.dpi,
        resolutionunit="INCH" if meta.dpi else None,
        extratags=extratags,
    )
    data = bytearray(buf.getvalue())
    if subs:
        with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
            tags, order = tif.pages.first.tags, tif.byteorder
        for tag, values in subs.items():
            data += b"\x00" * (len(data) & 1)
            head = b"II*\x00\x00\x00\x00\x00" if order == "<" else b"MM\x00*\x00\x00\x00\x00"
            ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=head, group=tag)
            for key, value in values.items():
                ifd[key] = value
            offset, entry = len(data), tags[_SUB_IFDS[tag]]
            data += ifd.tobytes(offset)
            struct.pack_into(order + "H", data, entry.offset, tag)  # placeholder code → real pointer tag
            struct.pack_into(order + "I", data, entry.valueoffset, offset)
    return bytes(data)


def _tiff_compression(like: LoadedImage | None) -> str:
    """The source TIFF's compression where it is lossless and writable (deflate, lzw, none), else "deflate"."""
    kept = like.compression if like is not None and like.format == "TIFF" else None
    return kept if kept in _TIFF_COMPRESSIONS else "deflate"


_ENCODERS = {"JPEG": _encode_jpeg, "PNG": _encode_png, "TIFF": _encode_tiff, "WEBP": _encode_webp, "BMP": _encode_bmp}


def _atomic_write(path: Path, payload: bytes, overwrite: bool) -> None:
    """Write to a hidden temporary name beside ``path``, then rename; the temporary file never stays behind."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_without_clobber(tmp, path)
    except FileExistsError:
        raise ImageWriteError(f"{path}: already exists (allow overwriting to replace it)") from None
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _link_without_clobber(tmp: Path, path: Path) -> None:
    """Hard-link ``tmp`` to ``path``, failing if ``path`` appeared meanwhile; rename where links are unsupported."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)
