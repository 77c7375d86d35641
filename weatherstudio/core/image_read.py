"""Read a photo into upright float32 RGB in [0, 1], keeping everything needed to write it back faithfully.

Pillow decodes the 8-bit formats; 16-bit PNG goes through OpenCV (Pillow cannot hold 16-bit RGB) and TIFF
deeper than 8 bits through tifffile, whose LZW, Deflate, PackBits and JPEG codecs come from imagecodecs. Of an
animation (GIF, APNG, WebP) the first frame is read, with a note. Every failure becomes one :class:`ImageReadError`
line naming the file.
"""

from __future__ import annotations

import functools
import io
import os
import re
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageChops,
    ImageCms,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from .errors import ImageReadError

MAX_PIXELS = 200_000_000
"""Default limit of :func:`read_image` (width × height); bigger images are refused as possible decompression bombs."""

_PIL_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "DIB", "GIF")  # never EPS & co. (they run external programs)
_PLUGINS = (BmpImagePlugin, GifImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin)  # registered on import
_ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP"})  # may hold an animation, of which the first frame is read
_PIL_LOCK = threading.Lock()  # guards Pillow's global MAX_IMAGE_PIXELS while we swap our limit in
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_TIFF_DATA_TAGS = ((273, 279), (324, 325))  # (StripOffsets, StripByteCounts), (TileOffsets, TileByteCounts)
_TIFF_INT_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8: the types offsets and byte counts come in
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
_SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
# Image-structure tags of a TIFF's IFD0 that must not travel as EXIF to another file.
_TIFF_STRUCTURE_TAGS = frozenset(
    {
        254,
        255,
        256,
        257,
        258,
        259,
        262,
        263,
        266,
        273,
        277,
        278,
        279,
        280,
        281,
        284,
        292,
        293,
        317,
        320,
        322,
        323,
        324,
        325,
        330,
        338,
        339,
        340,
        341,
        347,
        700,
        33723,
        34377,
        34675,
        37724,
        50838,
        50839,
    }
)
# End of entropy-coded data: 0xFF followed by a marker (not 0x00 stuffing, not RSTn, not a fill byte).
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# IJG's standard luminance quantisation table (ITU-T T.81 Annex K), used to estimate JPEG quality.
_IJG_LUMA = (
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
)


@dataclass(eq=False)
class LoadedImage:
    """A decoded image, upright, plus what :func:`~weatherstudio.core.image_io.write_image` needs to give it back.

    ``rgb`` is C-contiguous float32 H×W×3 in [0, 1] (greyscale repeated on the three channels, CMYK converted),
    ``alpha`` float32 H×W (straight, not premultiplied) or None. ``orientation`` is the EXIF orientation that was
    applied to make the pixels upright (1 = none); ``exif`` still holds the original tag (the writer resets it).
    ``exif`` is raw EXIF as Pillow stores it (starting ``b"Exif\\0\\0"``), ``icc_profile`` describes ``rgb``.
    ``mode`` describes the source ("RGB", "L", "RGBA", "P", "CMYK", "I;16", "RGB;16", ...). ``notes`` are one-line
    remarks for the user on how the file was read (without the file name), e.g. that only the first frame of an
    animated GIF is used.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    format: str
    mode: str
    source: Path
    exif: bytes | None = None
    icc_profile: bytes | None = None
    xmp: bytes | None = None
    orientation: int = 1
    dpi: tuple[float, float] | None = None
    quality: int | None = None  # JPEG quality estimated from the luminance quantisation table
    subsampling: str | None = None  # JPEG chroma subsampling: "4:4:4", "4:2:2" or "4:2:0"
    compression: str | None = None  # TIFF: "none", "lzw", "deflate", ...; WebP: "lossless" or "lossy"
    text: dict[str, str] = field(default_factory=dict)  # PNG text chunks
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def is_grey(self) -> bool:
        """True when the source stored one colour channel (greyscale, with or without alpha)."""
        return self.mode.split(";")[0] in _GREY_MODES


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> LoadedImage:
    """Read a JPEG, PNG, TIFF (8/16-bit), WebP, BMP or GIF file; see :class:`LoadedImage` for what comes back.

    EXIF orientation is applied so the pixels are upright. Of an animated GIF, PNG or WebP the first frame is read
    and a note says so. Images with more than ``max_pixels`` pixels (default :data:`MAX_PIXELS`) are refused before
    decoding. Raises :class:`ImageReadError` with one line.
    """
    path = Path(path)
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    data = _read_bytes(path)
    fmt = "image"
    try:
        if data[:4] in _TIFF_MAGIC and not _tiff_is_complete(data):
            raise ImageReadError(f"{path}: truncated TIFF (file ends early)")
        im = _open_pillow(path, data, limit)
        if im is None:  # a TIFF layout Pillow cannot parse: tifffile may
            fmt = "TIFF"
            return _read_tiff(path, data, None, limit)
        fmt = {"MPO": "JPEG", "DIB": "BMP"}.get(im.format or "", im.format or "image")
        if fmt == "TIFF" and (max(_as_tuple(im.tag_v2.get(258, 8))) > 8 or im.mode not in _PIL_8BIT_MODES):
            return _read_tiff(path, data, im, limit)
        if fmt == "JPEG" and not _jpeg_is_complete(data):
            raise ImageReadError(f"{path}: truncated JPEG (file ends early)")
        return _read_pillow(path, data, im, fmt)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(f"{path}: not enough memory to decode this image") from None
    except Exception as exc:  # decoders raise all sorts of types; the user gets one line, the chain keeps the rest
        raise ImageReadError(f"{path}: {_describe(exc, fmt)}") from exc


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an H×W(×C) array stored with EXIF ``orientation`` (1–8) upright, as ``ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return a[::-1].swapaxes(0, 1)
    if orientation == 7:
        return a[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return a[:, ::-1].swapaxes(0, 1)
    return a


_PIL_8BIT_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"})


def _read_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    return data


def _open_pillow(path: Path, data: bytes, limit: int) -> Image.Image | None:
    """Parse the header with Pillow (no decoding) and enforce the pixel limit; None for a TIFF Pillow cannot parse."""
    with _PIL_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        # Our own check below replaces Pillow's decompression-bomb guard (warning above 89 MP, error above 179 MP,
        # both from the header alone) so that the limit is ``limit`` and the message is one clear line.
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
        except Image.UnidentifiedImageError:
            if data[:4] in _TIFF_MAGIC:
                return None
            raise ImageReadError(f"{path}: not an image file WeatherStudio can read (unknown format)") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    _check_size(path, *im.size, limit)
    return im


def _check_size(path: Path, width: int, height: int, limit: int) -> None:
    if width < 1 or height < 1:
        raise ImageReadError(f"{path}: the image declares an empty size ({width}×{height})")
    if width * height > limit:
        raise ImageReadError(
            f"{path}: {width}×{height} is {width * height / 1e6:.1f} megapixels, over the limit of "
            f"{limit / 1e6:g} megapixels (possible decompression bomb; raise max_pixels to open it)"
        )


def _describe(exc: BaseException, fmt: str) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError):
        return f"refused as a possible decompression bomb ({text})"
    codec = re.search(r"COMPRESSION\.(\w+).*requires the 'imagecodecs' package", text)
    if codec:
        return f"{fmt} compressed with {codec[1]} needs the 'imagecodecs' package, which is not installed"
    if isinstance(exc, EOFError) or "truncated" in text.lower() or "premature end" in text.lower():
        return f"truncated {fmt} (file ends early)"
    return f"corrupt or unsupported {fmt} ({text})"


def _as_tuple(v: object) -> tuple:
    return tuple(v) if isinstance(v, tuple | list) else (v,)


def _read_pillow(path: Path, data: bytes, im: Image.Image, fmt: str) -> LoadedImage:
    mode = im.mode
    im.load()  # raises on truncated data (Pillow's LOAD_TRUNCATED_IMAGES is off)
    orientation = _orientation(im)
    meta = {
        "format": fmt,
        "mode": mode,
        "source": path,
        "exif": _exif_bytes(im, fmt),
        "xmp": _xmp_bytes(im),
        "icc_profile": im.info.get("icc_profile") or None,
        "orientation": orientation,
        "dpi": _dpi(im),
        "text": {k: str(v) for k, v in getattr(im, "text", {}).items() if k != "XML:com.adobe.xmp"},
    }
    if _png_bit_depth(data) == 16:
        return _read_png16(path, data, meta | {"notes": _animation_notes(im, fmt)})
    if mode == "CMYK":
        im, meta["icc_profile"] = _cmyk_to_rgb(im, fmt, meta["icc_profile"])
    has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in im.info
    arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    return LoadedImage(
        *_split(_to_float(arr, 8), orientation),
        bit_depth=8,
        quality=_jpeg_quality(im) if fmt == "JPEG" else None,
        subsampling=_SUBSAMPLING.get(JpegImagePlugin.get_sampling(im)) if fmt == "JPEG" else None,
        compression=_webp_kind(data) if fmt == "WEBP" else _norm_compression(im.info.get("compression")),
        notes=_animation_notes(im, fmt),
        **meta,
    )


def _animation_notes(im: Image.Image, fmt: str) -> list[str]:
    """A note when ``im`` is an animation, of which only the (already decoded) first frame is used."""
    if fmt not in _ANIMATED_FORMATS:
        return []
    try:
        frames = int(getattr(im, "n_frames", 1))
    except Exception:  # a later frame is damaged (counting seeks through them all); the first one decoded fine
        return [f"animated {fmt}: only the first frame is used"]
    return [f"animated {fmt} ({frames} frames): only the first frame is used"] if frames > 1 else []


def _split(arr: np.ndarray, orientation: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Float H×W×(3|4) → upright C-contiguous (rgb, alpha)."""
    arr = apply_orientation(arr, orientation)
    alpha = np.ascontiguousarray(arr[..., 3]) if arr.shape[2] == 4 else None
    return np.ascontiguousarray(arr[..., :3]), alpha


def _cmyk_to_rgb(im: Image.Image, fmt: str, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK → RGB through the embedded CMYK profile when there is one, else Pillow's plain formula.

    Pillow reads every CMYK JPEG with Adobe's inverted convention (what Photoshop writes, with an APP14 "Adobe"
    marker); a CMYK JPEG without that marker stores plain CMYK, so the inversion is undone.
    """
    if fmt == "JPEG" and "adobe" not in im.info:
        im = ImageChops.invert(im)
    if icc and icc[16:20] == b"CMYK":
        try:
            rgb = ImageCms.profileToProfile(
                im,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                _srgb_profile(),
                outputMode="RGB",
                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
            )
            return rgb, _srgb_profile().tobytes()
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the plain conversion
    return im.convert("RGB"), None


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _read_png16(path: Path, data: bytes, meta: dict) -> LoadedImage:
    """16-bit PNG through OpenCV (BGR order; IMREAD_UNCHANGED leaves the EXIF orientation to us)."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise ImageReadError(f"{path}: corrupt or unsupported 16-bit PNG")
    arr = arr[..., None].repeat(3, axis=2) if arr.ndim == 2 else arr[..., [2, 1, 0, 3][: arr.shape[2]]]
    meta["mode"] = {0: "I;16", 2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}.get(data[25], "RGB;16")
    return LoadedImage(*_split(_to_float(arr, 16), meta["orientation"]), bit_depth=16, **meta)


def _read_tiff(path: Path, data: bytes, im: Image.Image | None, limit: int) -> LoadedImage:
    """TIFF deeper than 8 bits, or with channels Pillow cannot hold, through tifffile (first page)."""
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        _check_size(path, int(page.imagewidth), int(page.imagelength), limit)
        arr = page.asarray()
        axes, photometric, bits = page.axes, int(page.photometric), int(page.bitspersample)
        extras, cmap, icc = tuple(page.extrasamples), page.colormap, page.iccprofile
        tags = {code: page.tags[code].value for code in (274, 700) if code in page.tags}
        compression = _norm_compression(page.compression.name)
    if photometric == 6 and compression == "jpeg":  # YCbCr JPEG: the JPEG decoder already gave RGB
        photometric = 2
    if axes.startswith("S"):
        arr = np.moveaxis(arr, 0, -1)
    arr = arr[..., None] if arr.ndim == 2 else arr
    if arr.ndim != 3:
        raise ImageReadError(f"{path}: unsupported TIFF layout (axes {axes})")
    ncolour = {0: 1, 1: 1, 2: 3, 3: 1, 5: 4}.get(photometric)
    if ncolour is None or arr.shape[2] < ncolour:
        raise ImageReadError(f"{path}: unsupported TIFF colour model (photometric {photometric})")
    if photometric == 3:
        colour = (cmap[:, arr[..., 0]].transpose(1, 2, 0) / np.float32(65535)).astype(np.float32)
    else:
        colour = _to_float(arr[..., :ncolour], bits)
    if photometric == 0:
        colour = 1 - colour
    if photometric == 5:  # plain CMYK → RGB (no colour management at 16 bits)
        colour = (1 - colour[..., :3]) * (1 - colour[..., 3:4])
    colour = colour.repeat(3, axis=2) if colour.shape[2] == 1 else colour
    alpha = None
    if arr.shape[2] > ncolour and extras and extras[0] in (1, 2):
        alpha = _to_float(arr[..., ncolour : ncolour + 1], bits)
        if extras[0] == 1:  # associated (premultiplied) alpha → straight
            colour = np.where(alpha > 0, colour / np.maximum(alpha, 1e-12), 0).clip(0, 1).astype(np.float32)
    orientation = _orientation(im) if im is not None else int(tags.get(274, 1))
    orientation = orientation if 1 <= orientation <= 8 else 1
    base = {0: "L", 1: "L", 2: "RGB", 3: "P", 5: "CMYK"}[photometric] + ("A" if alpha is not None else "")
    mode = base if bits <= 8 else ("I;16" if base == "L" and bits == 16 else f"{base};{bits}")
    pixels = colour if alpha is None else np.concatenate([colour, alpha], axis=2)
    xmp = tags.get(700)
    return LoadedImage(
        *_split(pixels, orientation),
        bit_depth=16 if bits > 8 else 8,
        format="TIFF",
        mode=mode,
        source=path,
        exif=_exif_bytes(im, "TIFF") if im is not None else None,
        icc_profile=icc,
        xmp=xmp if isinstance(xmp, bytes) else None,
        orientation=orientation,
        dpi=_dpi(im) if im is not None else None,
        compression=compression,
    )


def _to_float(arr: np.ndarray, bits: int) -> np.ndarray:
    """Integer samples of ``bits`` bits (or floats) → a new float32 array in [0, 1], scaled in place."""
    out = arr.astype(np.float32)
    if arr.dtype.kind in "fb":
        return np.clip(out, 0, 1, out=out)
    top = np.iinfo(arr.dtype).max
    if arr.dtype.kind == "u" and 0 < bits < arr.dtype.itemsize * 8:
        top = (1 << bits) - 1
    out /= np.float32(top)
    return np.clip(out, 0, 1, out=out)


def _orientation(im: Image.Image) -> int:
    """EXIF orientation (Pillow falls back to XMP ``tiff:Orientation``); 1 when absent or invalid."""
    try:
        value = int(im.getexif().get(0x0112, 1))
    except (TypeError, ValueError, SyntaxError, OSError):
        return 1
    return value if 1 <= value <= 8 else 1


def _exif_bytes(im: Image.Image, fmt: str) -> bytes | None:
    """The source's EXIF as ``b"Exif\\0\\0"`` + TIFF bytes; for a TIFF source its IFD0 without image-structure tags."""
    if fmt == "TIFF":
        try:
            exif = im.getexif()
            for tag in _TIFF_STRUCTURE_TAGS & set(exif):
                del exif[tag]
            return exif.tobytes() if len(exif) else None
        except Exception:  # odd TIFF tags Pillow cannot re-encode: keep the pixels, drop the EXIF
            return None
    raw = im.info.get("exif")
    if not raw:
        return None
    return raw if raw.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + raw


def _xmp_bytes(im: Image.Image) -> bytes | None:
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    return xmp.encode("utf-8") if isinstance(xmp, str) else (xmp or None)


def _dpi(im: Image.Image) -> tuple[float, float] | None:
    dpi = im.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _png_bit_depth(data: bytes) -> int | None:
    return data[24] if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 25 else None


def _norm_compression(name: object) -> str | None:
    """Pillow's or tifffile's TIFF compression name → "none", "lzw", "deflate", ...; None for anything else."""
    if not name or not isinstance(name, str):  # BMP keeps its compression as a number
        return None
    name = name.lower().removeprefix("tiff_")
    return {"raw": "none", "adobe_deflate": "deflate"}.get(name, name)


def _tiff_is_complete(data: bytes) -> bool:
    """False when IFD0, or a strip or tile it points to, lies (partly) beyond the end of the file.

    Writers that put the directory after the pixels (OpenCV, libtiff) lose it in a cut file; those that put it first
    (tifffile) lose pixels. Other tags are not checked, and a directory too odd to follow is left to the decoders.
    """
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    offset, count, entry = ("Q", "Q", 20) if big else ("I", "H", 12)
    try:
        ifd = struct.unpack_from(order + offset, data, 8 if big else 4)[0]
        if ifd < 8:
            return True
        n = struct.unpack_from(order + count, data, ifd)[0]
        first = ifd + struct.calcsize(count)
        struct.unpack_from(f"{order}{entry * n}x", data, first)  # the whole directory is there
        values = {}
        for pos in range(first, first + entry * n, entry):
            tag, kind = struct.unpack_from(order + "HH", data, pos)
            if kind in _TIFF_INT_TYPES and any(tag in pair for pair in _TIFF_DATA_TAGS):
                values[tag] = _tiff_ints(data, order, big, pos, kind)
    except (struct.error, OverflowError):  # something the directory points to is past the end of the file
        return False
    for offsets, counts in _TIFF_DATA_TAGS:
        starts, sizes = values.get(offsets, ()), values.get(counts, ())
        if len(starts) == len(sizes) and any(s + c > len(data) for s, c in zip(starts, sizes)):
            return False
    return True


def _tiff_ints(data: bytes, order: str, big: bool, pos: int, kind: int) -> tuple[int, ...]:
    """The integer values of the IFD entry at ``pos``: inline when they fit, else at the offset it holds."""
    fmt = _TIFF_INT_TYPES[kind]
    n = struct.unpack_from(order + ("Q" if big else "I"), data, pos + 4)[0]
    where = pos + (12 if big else 8)
    if n * struct.calcsize(fmt) > (8 if big else 4):
        where = struct.unpack_from(order + ("Q" if big else "I"), data, where)[0]
    return struct.unpack_from(f"{order}{n}{fmt}", data, where)


def _webp_kind(data: bytes) -> str | None:
    """ "lossless" (a VP8L bitstream) or "lossy" (VP8), from the RIFF chunks."""
    pos = 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if fourcc == b"VP8L":
            return "lossless"
        if fourcc in (b"VP8 ", b"ALPH"):
            return "lossy"
        pos += 8 + size + (size & 1)
    return None


def _jpeg_is_complete(data: bytes) -> bool:
    """Walk the JPEG markers (skipping entropy-coded data) up to EOI; False when the file ends first.

    Stops at the first EOI after the image's scans, so data appended after it (motion photos, MPF) is fine.
    """
    pos, n = 2, len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= n:
            return False
        code = data[pos + 1]
        if code == 0xD9:
            return True
        if code == 0xFF or code == 0x00 or 0xD0 <= code <= 0xD7 or code == 0x01:
            pos += 1 if code == 0xFF else 2
            continue
        if pos + 4 > n:
            return False
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if code == 0xDA:  # start of scan: entropy-coded data runs to the next real marker
            match = _SCAN_END.search(data, pos)
            if match is None:
                return False
            pos = match.start()


@functools.cache
def _ijg_tables() -> tuple[tuple[int, ...], ...]:
    """Sorted IJG luminance tables for quality 1..100 (libjpeg's ``jpeg_quality_scaling``)."""
    tables = []
    for q in range(1, 101):
        scale = 5000 // q if q < 50 else 200 - 2 * q
        tables.append(tuple(sorted(min(max((v * scale + 50) // 100, 1), 255) for v in _IJG_LUMA)))
    return tuple(tables)


def _jpeg_quality(im: Image.Image) -> int | None:
    """Estimate the IJG quality the JPEG was saved with: the closest scaled standard luminance table."""
    tables = getattr(im, "quantization", None)
    if not tables or len(tables[0]) != 64:
        return None
    lum = sorted(tables[0])  # sorted: independent of zig-zag / natural order
    errors = [sum(abs(a - b) for a, b in zip(lum, t, strict=True)) for t in _ijg_tables()]
    return 1 + min(range(100), key=lambda i: (errors[i], -i))
