"""Image I/O: real files written with Pillow / tifffile / OpenCV into tmp_path, read and written back."""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageFile, ImageOps

from weatherstudio.core.errors import ImageReadError, ImageWriteError, WeatherStudioError
from weatherstudio.core.image_io import (
    SUPPORTED_EXTENSIONS,
    LoadedImage,
    list_images,
    read_image,
    to_uint8,
    to_uint16,
    write_image,
)

RNG = np.random.default_rng(1234)


def smooth_rgb(h: int = 24, w: int = 32) -> np.ndarray:
    """A smooth colour ramp (JPEG-friendly) as uint8 H×W×3."""
    y, x = np.mgrid[0:h, 0:w]
    ramp = [x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(h + w - 2, 1)]
    return np.stack(ramp, -1).astype(np.uint8)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def camera_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "WeatherCam"  # Make
    exif[0x0110] = "Blizzard 5"  # Model
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2024:01:21 09:30:00"  # DateTimeOriginal
    return exif


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp", ".webp", ".jpg"])
def test_round_trip_each_format(tmp_path: Path, ext: str) -> None:
    src = smooth_rgb()
    first = tmp_path / f"first{ext}"
    kw = {"lossless": True} if ext == ".webp" else ({"quality": 95} if ext == ".jpg" else {})
    Image.fromarray(src).save(first, **kw)
    loaded = read_image(first)
    assert loaded.rgb.dtype == np.float32
    assert loaded.rgb.shape == (24, 32, 3)
    assert loaded.rgb.flags.c_contiguous
    assert loaded.alpha is None
    assert loaded.bit_depth == 8
    assert loaded.source == first
    assert loaded.format == {".png": "PNG", ".tif": "TIFF", ".bmp": "BMP", ".webp": "WEBP", ".jpg": "JPEG"}[ext]
    assert 0.0 <= loaded.rgb.min()
    assert loaded.rgb.max() <= 1.0
    out = write_image(tmp_path / f"second{ext}", loaded.rgb, like=loaded)
    again = read_image(out)
    if ext == ".jpg":  # lossy, but close
        assert np.abs(to_uint8(loaded.rgb).astype(int) - src).mean() < 2.5
        assert np.abs(again.rgb - loaded.rgb).mean() < 1.5 / 255
    else:  # lossless formats give back the very same bytes of pixels
        assert np.array_equal(to_uint8(loaded.rgb), src)
        assert np.array_equal(to_uint8(again.rgb), src)
    if ext == ".webp":
        assert loaded.compression == again.compression == "lossless"


@pytest.mark.parametrize("ext", [".png", ".tif", ".jpg", ".webp", ".bmp"])
def test_one_by_one_image(tmp_path: Path, ext: str) -> None:
    rgb = np.array([[[0.2, 0.6, 1.0]]], np.float32)
    out = write_image(tmp_path / f"dot{ext}", rgb)
    back = read_image(out)
    assert back.rgb.shape == (1, 1, 3)
    tol = 0 if ext in (".png", ".tif", ".bmp") else 6
    assert np.abs(to_uint8(back.rgb).astype(int) - to_uint8(rgb)).max() <= tol


def test_16bit_png_is_bit_exact(tmp_path: Path) -> None:
    values = RNG.integers(0, 65536, (17, 23, 3), dtype=np.uint16)
    src = tmp_path / "deep.png"
    assert cv2.imwrite(str(src), values[..., ::-1])  # OpenCV stores BGR
    loaded = read_image(src)
    assert loaded.bit_depth == 16
    assert loaded.mode == "RGB;16"
    assert loaded.format == "PNG"
    assert np.array_equal(to_uint16(loaded.rgb), values)
    out = write_image(tmp_path / "deep_out.png", loaded.rgb, like=loaded)
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16
    assert np.array_equal(written[..., ::-1], values)


def test_16bit_png_rgba_and_grey(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 65536, (9, 11, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba[..., [2, 1, 0, 3]])
    loaded = read_image(tmp_path / "rgba.png")
    assert loaded.mode == "RGBA;16"
    assert np.array_equal(to_uint16(loaded.alpha), rgba[..., 3])
    write_image(tmp_path / "rgba_out.png", loaded.rgb, alpha=loaded.alpha, like=loaded)
    assert np.array_equal(cv2.imread(str(tmp_path / "rgba_out.png"), cv2.IMREAD_UNCHANGED), rgba[..., [2, 1, 0, 3]])

    grey = RNG.integers(0, 65536, (9, 11), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    loaded = read_image(tmp_path / "grey.png")
    assert loaded.mode == "I;16"
    assert loaded.is_grey
    assert loaded.bit_depth == 16
    assert np.array_equal(to_uint16(loaded.rgb), np.repeat(grey[..., None], 3, 2))
    write_image(tmp_path / "grey_out.png", loaded.rgb, like=loaded)
    assert np.array_equal(cv2.imread(str(tmp_path / "grey_out.png"), cv2.IMREAD_UNCHANGED), grey)  # still 1 channel


def test_16bit_tiff_is_bit_exact(tmp_path: Path) -> None:
    values = RNG.integers(0, 65536, (13, 19, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", values, photometric="rgb", compression="zlib")
    loaded = read_image(tmp_path / "deep.tif")
    assert loaded.bit_depth == 16
    assert loaded.format == "TIFF"
    assert loaded.compression == "deflate"
    assert np.array_equal(to_uint16(loaded.rgb), values)
    out = write_image(tmp_path / "deep_out.tif", loaded.rgb, like=loaded)
    assert np.array_equal(tifffile.imread(out), values)
    assert np.array_equal(to_uint16(read_image(out).rgb), values)


def test_16bit_tiff_with_alpha_and_planar(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 65536, (7, 5, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=("unassalpha",))
    loaded = read_image(tmp_path / "a.tif")
    assert loaded.mode == "RGBA;16"
    assert np.array_equal(to_uint16(loaded.rgb), rgba[..., :3])
    assert np.array_equal(to_uint16(loaded.alpha), rgba[..., 3])
    out = write_image(tmp_path / "a_out.tif", loaded.rgb, alpha=loaded.alpha, like=loaded)
    assert np.array_equal(tifffile.imread(out), rgba)

    planar = RNG.integers(0, 65536, (3, 6, 8), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    assert np.array_equal(to_uint16(read_image(tmp_path / "planar.tif").rgb), np.moveaxis(planar, 0, -1))


def test_16bit_grey_tiff_and_unicode_names(tmp_path: Path) -> None:
    grey = RNG.integers(0, 65536, (5, 6), dtype=np.uint16)
    src = tmp_path / "snöfall_雪.tif"
    tifffile.imwrite(src, grey, photometric="minisblack")
    loaded = read_image(src)
    assert loaded.mode == "I;16"
    assert loaded.is_grey
    assert loaded.bit_depth == 16
    out = write_image(tmp_path / "снег.tif", loaded.rgb, like=loaded)
    assert np.array_equal(tifffile.imread(out), grey)
    png = write_image(tmp_path / "снег.png", loaded.rgb, like=loaded)
    assert np.array_equal(to_uint16(read_image(png).rgb[..., 0]), grey)


def test_16bit_source_to_jpeg_is_8bit(tmp_path: Path) -> None:
    values = RNG.integers(0, 65536, (8, 8, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), values)
    loaded = read_image(tmp_path / "deep.png")
    out = write_image(tmp_path / "flat.jpg", loaded.rgb, like=loaded)
    assert Image.open(out).mode == "RGB"
    with pytest.raises(ImageWriteError, match="16-bit JPEG"):
        write_image(tmp_path / "bad.jpg", loaded.rgb, bit_depth=16)


# ---------------------------------------------------------------- metadata


def test_exif_orientation_applied_and_reset(tmp_path: Path) -> None:
    stored = np.zeros((8, 16, 3), np.uint8)  # as the camera stored it: landscape, white block top-left
    stored[:4, :8] = 255
    src = tmp_path / "camera.jpg"
    Image.fromarray(stored).save(src, exif=camera_exif(6), quality=95)
    loaded = read_image(src)
    assert loaded.orientation == 6
    assert loaded.rgb.shape == (16, 8, 3)  # upright: rotated 90° clockwise
    upright = np.rot90(stored, -1)
    assert np.abs(to_uint8(loaded.rgb).astype(int) - upright).mean() < 4
    assert loaded.rgb[:6, 5:].min() > 0.9  # white block is now top-right
    assert loaded.rgb[10:, :].max() < 0.1

    for ext in (".jpg", ".png", ".tif", ".webp"):
        out = write_image(tmp_path / f"restored{ext}", loaded.rgb, like=loaded)
        exif = Image.open(out).getexif()
        assert exif.get(0x010F) == "WeatherCam", ext
        assert exif.get(0x0110) == "Blizzard 5", ext
        assert exif.get(0x0112, 1) == 1, ext  # pixels are already upright
        assert exif.get_ifd(0x8769).get(0x9003) == "2024:01:21 09:30:00", ext
        again = read_image(out)
        assert again.orientation == 1
        assert again.rgb.shape == (16, 8, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    stored = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    src = tmp_path / f"o{orientation}.png"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(src, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(src)).convert("RGB"))
    loaded = read_image(src)
    assert loaded.orientation == orientation
    assert np.array_equal(to_uint8(loaded.rgb), expected)


def test_xmp_orientation_reset_and_kept(tmp_path: Path) -> None:
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        b'tiff:Orientation="6" xmp:Rating="5"/></rdf:RDF></x:xmpmeta>'
    )
    Image.fromarray(smooth_rgb(6, 10)).save(tmp_path / "x.jpg", xmp=xmp)
    loaded = read_image(tmp_path / "x.jpg")
    assert loaded.orientation == 6
    assert loaded.rgb.shape == (10, 6, 3)
    assert loaded.xmp == xmp
    for ext in (".jpg", ".png", ".webp", ".tif"):
        out = read_image(write_image(tmp_path / f"y{ext}", loaded.rgb, like=loaded))
        assert out.orientation == 1, ext
        assert b'xmp:Rating="5"' in out.xmp, ext
        assert b'tiff:Orientation="1"' in out.xmp, ext


def test_multi_picture_jpeg_reads_first_frame(tmp_path: Path) -> None:
    first, second = Image.fromarray(smooth_rgb()), Image.new("RGB", (8, 8), (255, 0, 0))
    first.save(tmp_path / "mpo.jpg", format="MPO", save_all=True, append_images=[second])
    assert Image.open(tmp_path / "mpo.jpg").format == "MPO"
    loaded = read_image(tmp_path / "mpo.jpg")
    assert loaded.format == "JPEG"
    assert loaded.rgb.shape == (24, 32, 3)


def test_grey_jpeg_stays_grey_and_lossy_webp_is_known(tmp_path: Path) -> None:
    Image.fromarray(smooth_rgb()[..., 0], "L").save(tmp_path / "g.jpg")
    loaded = read_image(tmp_path / "g.jpg")
    assert loaded.mode == "L"
    assert Image.open(write_image(tmp_path / "g2.jpg", loaded.rgb, like=loaded)).mode == "L"
    Image.fromarray(smooth_rgb()).save(tmp_path / "lossy.webp", quality=80)
    lossy = read_image(tmp_path / "lossy.webp")
    assert lossy.compression == "lossy"
    assert read_image(write_image(tmp_path / "lossy2.webp", lossy.rgb, like=lossy)).compression == "lossy"


def test_icc_profile_survives(tmp_path: Path) -> None:
    icc = srgb_icc()
    for ext in (".jpg", ".png", ".tif", ".webp"):
        src = tmp_path / f"icc{ext}"
        Image.fromarray(smooth_rgb(8, 8)).save(src, icc_profile=icc)
        loaded = read_image(src)
        assert loaded.icc_profile == icc, ext
        out = write_image(tmp_path / f"icc_out{ext}", loaded.rgb, like=loaded)
        assert Image.open(out).info.get("icc_profile") == icc, ext
        assert read_image(out).icc_profile == icc, ext


def test_jpeg_quality_estimate_and_subsampling(tmp_path: Path) -> None:
    Image.fromarray(smooth_rgb()).save(tmp_path / "q80.jpg", quality=80)
    low = read_image(tmp_path / "q80.jpg")
    assert low.quality == 80
    assert low.subsampling == "4:2:0"
    Image.fromarray(smooth_rgb()).save(tmp_path / "q98.jpg", quality=98)
    high = read_image(tmp_path / "q98.jpg")
    assert high.quality == 98
    out = read_image(write_image(tmp_path / "from_q80.jpg", low.rgb, like=low))
    assert out.quality == 95  # never below 95 by default
    assert out.subsampling == "4:4:4"
    assert read_image(write_image(tmp_path / "from_q98.jpg", high.rgb, like=high)).quality == 98
    assert read_image(write_image(tmp_path / "q70.jpg", low.rgb, like=low, quality=70)).subsampling == "4:2:0"


def test_rgba_alpha_round_trip(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    for ext in (".png", ".tif", ".webp"):
        src = tmp_path / f"rgba{ext}"
        Image.fromarray(rgba, "RGBA").save(src, **({"lossless": True, "exact": True} if ext == ".webp" else {}))
        loaded = read_image(src)
        assert loaded.alpha is not None
        assert loaded.alpha.shape == (10, 12)
        assert loaded.alpha.dtype == np.float32
        assert np.array_equal(to_uint8(loaded.alpha), rgba[..., 3]), ext
        assert np.array_equal(to_uint8(loaded.rgb), rgba[..., :3]), ext
        out = write_image(tmp_path / f"rgba_out{ext}", loaded.rgb, alpha=loaded.alpha, like=loaded)
        assert np.array_equal(np.asarray(Image.open(out).convert("RGBA")), rgba), ext


def test_jpeg_output_drops_alpha_with_warning(tmp_path: Path) -> None:
    rgb, alpha = np.full((4, 4, 3), 0.5, np.float32), np.ones((4, 4), np.float32)
    with pytest.warns(UserWarning, match="alpha"):
        out = write_image(tmp_path / "flat.jpg", rgb, alpha=alpha)
    assert Image.open(out).mode == "RGB"


def test_greyscale_reads_as_rgb_and_writes_back_grey(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, (6, 9), dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    loaded = read_image(tmp_path / "grey.png")
    assert loaded.mode == "L"
    assert loaded.is_grey
    assert loaded.rgb.shape == (6, 9, 3)
    assert np.array_equal(to_uint8(loaded.rgb), np.repeat(grey[..., None], 3, 2))
    out = write_image(tmp_path / "grey_out.png", loaded.rgb, like=loaded)
    assert Image.open(out).mode == "L"
    assert np.array_equal(np.asarray(Image.open(out)), grey)
    tinted = loaded.rgb.copy()
    tinted[..., 0] = 1.0  # no longer grey: written as RGB, nothing lost
    assert Image.open(write_image(tmp_path / "tinted.png", tinted, like=loaded)).mode == "RGB"


def test_palette_and_la_images(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 3))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    loaded = read_image(tmp_path / "pal.png")
    assert loaded.mode == "P"
    assert loaded.alpha is not None
    assert loaded.alpha[1, 1] == 1.0
    assert loaded.alpha[0, 0] == 0.0
    assert np.allclose(loaded.rgb[1, 1], [0, 0, 1])

    la = np.stack([np.full((3, 3), 100, np.uint8), np.full((3, 3), 40, np.uint8)], -1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    loaded = read_image(tmp_path / "la.png")
    assert loaded.mode == "LA"
    assert np.allclose(loaded.rgb, 100 / 255)
    assert np.allclose(loaded.alpha, 40 / 255)


def test_cmyk_jpeg_pure_cyan_reads_as_cyan(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 16), (255, 0, 0, 0)).save(tmp_path / "cyan.jpg", quality=95)
    loaded = read_image(tmp_path / "cyan.jpg")
    assert loaded.mode == "CMYK"
    assert loaded.rgb.shape == (16, 16, 3)
    assert np.allclose(loaded.rgb.mean(axis=(0, 1)), [0, 1, 1], atol=0.03)
    assert loaded.icc_profile is None  # plain conversion: the RGB is not described by a CMYK profile


def test_cmyk_jpeg_without_adobe_marker_is_not_inverted(tmp_path: Path) -> None:
    # Pillow writes Adobe-style inverted CMYK with an APP14 "Adobe" marker. Store the inverse of cyan that way and
    # drop the marker: the file then holds plain (non-inverted) pure cyan, which must also read as cyan.
    Image.new("CMYK", (16, 16), (0, 255, 255, 255)).save(tmp_path / "inv.jpg", quality=95)
    data = (tmp_path / "inv.jpg").read_bytes()
    start = data.index(b"\xff\xeeAdobe") if b"\xff\xeeAdobe" in data else data.index(b"\xff\xee")
    length = int.from_bytes(data[start + 2 : start + 4], "big")
    (tmp_path / "plain.jpg").write_bytes(data[:start] + data[start + 2 + length :])
    assert "adobe" not in Image.open(tmp_path / "plain.jpg").info
    assert np.allclose(read_image(tmp_path / "plain.jpg").rgb.mean(axis=(0, 1)), [0, 1, 1], atol=0.03)


def test_cmyk_tiff_reads_as_cyan(tmp_path: Path) -> None:
    Image.new("CMYK", (4, 4), (255, 0, 0, 0)).save(tmp_path / "cyan.tif")
    assert np.allclose(read_image(tmp_path / "cyan.tif").rgb, [0, 1, 1], atol=1e-6)


# ---------------------------------------------------------------- TIFF compression, GIF


def palette_frame(pixels: np.ndarray, colours: list[tuple[int, int, int]]) -> Image.Image:
    """A "P" image of palette indices ``pixels`` (no quantisation, so the colours come back exactly)."""
    im = Image.fromarray(pixels.astype(np.uint8), "P")
    im.putpalette([c for rgb in colours for c in rgb] + [0] * (768 - 3 * len(colours)))
    return im


def tiff_compression(path: Path) -> str:
    with tifffile.TiffFile(path) as tif:
        return tif.pages.first.compression.name


@pytest.mark.parametrize(
    ("compression", "name"),
    [("lzw", "lzw"), ("zlib", "deflate"), ("deflate", "deflate"), ("packbits", "packbits"), (None, "none")],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lossless_tiff_compressions_read_exactly(tmp_path: Path, compression: str | None, name: str, dtype) -> None:
    top = np.iinfo(dtype).max
    values = RNG.integers(0, top + 1, (21, 34, 3)).astype(dtype)
    grey = RNG.integers(0, top + 1, (9, 7)).astype(dtype)
    tifffile.imwrite(tmp_path / "rgb.tif", values, photometric="rgb", compression=compression)
    tifffile.imwrite(tmp_path / "grey.tif", grey, photometric="minisblack", compression=compression)
    quant = to_uint16 if dtype == np.uint16 else to_uint8
    loaded = read_image(tmp_path / "rgb.tif")
    assert (loaded.compression, loaded.bit_depth) == (name, 8 * np.dtype(dtype).itemsize)
    assert np.array_equal(quant(loaded.rgb), values)
    loaded = read_image(tmp_path / "grey.tif")
    assert loaded.is_grey
    assert loaded.compression == name
    assert np.array_equal(quant(loaded.rgb[..., 0]), grey)


def test_jpeg_in_tiff_reads(tmp_path: Path) -> None:
    src = smooth_rgb(32, 48)
    tifffile.imwrite(tmp_path / "rgb.tif", src, photometric="rgb", compression="jpeg")
    tifffile.imwrite(tmp_path / "grey.tif", src[..., 0], photometric="minisblack", compression="jpeg")
    loaded = read_image(tmp_path / "rgb.tif")
    assert (loaded.format, loaded.compression, loaded.bit_depth, loaded.mode) == ("TIFF", "jpeg", 8, "RGB")
    assert np.abs(to_uint8(loaded.rgb).astype(int) - src).mean() < 2.5
    grey = read_image(tmp_path / "grey.tif")
    assert grey.is_grey
    assert np.abs(to_uint8(grey.rgb[..., 0]).astype(int) - src[..., 0]).mean() < 2.5


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_opencv_lzw_tiff_reads_exactly(tmp_path: Path, dtype) -> None:
    values = RNG.integers(0, np.iinfo(dtype).max + 1, (19, 26, 3)).astype(dtype)
    assert cv2.imwrite(str(tmp_path / "cv.tif"), values[..., ::-1])  # OpenCV stores BGR, LZW by default
    assert tiff_compression(tmp_path / "cv.tif") == "LZW"
    loaded = read_image(tmp_path / "cv.tif")
    assert loaded.compression == "lzw"
    assert loaded.bit_depth == 8 * np.dtype(dtype).itemsize
    assert np.array_equal((to_uint16 if dtype == np.uint16 else to_uint8)(loaded.rgb), values)


@pytest.mark.parametrize(
    ("source", "written"),
    [("lzw", "LZW"), ("zlib", "ADOBE_DEFLATE"), (None, "NONE"), ("packbits", "ADOBE_DEFLATE")],
)
def test_16bit_tiff_keeps_lossless_compression(tmp_path: Path, source: str | None, written: str) -> None:
    values = RNG.integers(0, 65536, (15, 22, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "src.tif", values, photometric="rgb", compression=source)
    loaded = read_image(tmp_path / "src.tif")
    out = write_image(tmp_path / "out.tif", loaded.rgb, like=loaded)
    assert tiff_compression(out) == written
    assert np.array_equal(tifffile.imread(out), values)
    assert np.array_equal(to_uint16(read_image(out).rgb), values)


def test_lossy_or_foreign_source_gives_deflate_tiff(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "jpeg.tif", smooth_rgb(), photometric="rgb", compression="jpeg")
    loaded = read_image(tmp_path / "jpeg.tif")
    assert tiff_compression(write_image(tmp_path / "from_jpeg.tif", loaded.rgb, like=loaded)) == "ADOBE_DEFLATE"
    Image.fromarray(smooth_rgb()).save(tmp_path / "src.png")
    loaded = read_image(tmp_path / "src.png")
    assert tiff_compression(write_image(tmp_path / "from_png.tif", loaded.rgb, like=loaded)) == "ADOBE_DEFLATE"
    assert tiff_compression(write_image(tmp_path / "plain.tif", loaded.rgb)) == "ADOBE_DEFLATE"


def test_16bit_lzw_tiff_keeps_icc_exif_and_orientation(tmp_path: Path) -> None:
    stored = RNG.integers(0, 65536, (6, 10, 3), dtype=np.uint16)  # stored landscape, shown rotated (orientation 6)
    icc = srgb_icc()
    tags = [(271, "s", 0, "WeatherCam", True), (274, "H", 1, 6, True)]  # Make, Orientation
    tifffile.imwrite(tmp_path / "cam.tif", stored, photometric="rgb", compression="lzw", iccprofile=icc, extratags=tags)
    loaded = read_image(tmp_path / "cam.tif")
    assert loaded.orientation == 6
    assert loaded.icc_profile == icc
    assert loaded.compression == "lzw"
    assert np.array_equal(to_uint16(loaded.rgb), np.rot90(stored, -1))
    out = write_image(tmp_path / "out.tif", loaded.rgb, like=loaded)
    assert tiff_compression(out) == "LZW"
    exif = Image.open(out).getexif()
    assert exif.get(0x010F) == "WeatherCam"
    assert exif.get(0x0112, 1) == 1
    again = read_image(out)
    assert again.bit_depth == 16
    assert again.icc_profile == icc
    assert again.orientation == 1
    assert np.array_equal(to_uint16(again.rgb), np.rot90(stored, -1))


def test_still_gif_opens_as_a_photo(tmp_path: Path) -> None:
    colours = [(0, 0, 0), (200, 30, 30), (20, 180, 60), (250, 250, 250)]
    indices = RNG.integers(0, 4, (12, 17))
    palette_frame(indices, colours).save(tmp_path / "still.gif")
    loaded = read_image(tmp_path / "still.gif")
    assert (loaded.format, loaded.mode, loaded.bit_depth, loaded.notes) == ("GIF", "P", 8, [])
    assert loaded.alpha is None
    assert np.array_equal(to_uint8(loaded.rgb), np.array(colours, np.uint8)[indices])

    palette_frame(indices, colours).save(tmp_path / "clear.gif", transparency=0)  # index 0 is transparent
    clear = read_image(tmp_path / "clear.gif")
    assert clear.alpha is not None
    assert np.array_equal(clear.alpha == 0, indices == 0)


def test_animated_gif_opens_first_frame_with_a_note(tmp_path: Path) -> None:
    colours = [(10, 20, 30), (240, 200, 0), (0, 90, 255), (255, 255, 255)]
    frames = [RNG.integers(0, 4, (14, 18)) for _ in range(3)]
    first, *rest = (palette_frame(f, colours) for f in frames)
    first.save(tmp_path / "anim.gif", save_all=True, append_images=rest, duration=80, loop=0)
    assert Image.open(tmp_path / "anim.gif").n_frames == 3
    loaded = read_image(tmp_path / "anim.gif")
    assert loaded.format == "GIF"
    assert loaded.rgb.shape == (14, 18, 3)
    assert np.array_equal(to_uint8(loaded.rgb), np.array(colours, np.uint8)[frames[0]])
    assert len(loaded.notes) == 1
    assert "first frame" in loaded.notes[0]
    assert "animated GIF" in loaded.notes[0]
    assert "\n" not in loaded.notes[0]
    out = write_image(tmp_path / "first.png", loaded.rgb, like=loaded)  # the restored frame saves as a photo
    assert np.array_equal(to_uint8(read_image(out).rgb), to_uint8(loaded.rgb))

    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["anim.gif", "first.png"]
    first.convert("RGB").save(tmp_path / "anim.png", save_all=True, append_images=[f.convert("RGB") for f in rest])
    assert "animated PNG (3 frames)" in read_image(tmp_path / "anim.png").notes[0]  # APNG: the same note
    assert ".gif" in SUPPORTED_EXTENSIONS
    assert list_images(tmp_path / "anim.gif") == [tmp_path / "anim.gif"]


def test_opencv_rgba_bmp_reads(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    assert cv2.imwrite(str(tmp_path / "cv.bmp"), rgba[..., [2, 1, 0, 3]])  # 32-bit BMP with BI_BITFIELDS
    loaded = read_image(tmp_path / "cv.bmp")
    assert loaded.format == "BMP"
    assert loaded.compression is None
    assert np.array_equal(to_uint8(loaded.rgb), rgba[..., :3])
    assert np.array_equal(to_uint8(loaded.alpha), rgba[..., 3])


# ---------------------------------------------------------------- errors


def assert_one_line(err: pytest.ExceptionInfo, name: str) -> str:
    text = str(err.value)
    assert "\n" not in text
    assert name in text
    assert isinstance(err.value, WeatherStudioError)
    return text


def test_truncated_jpeg(tmp_path: Path) -> None:
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    for name, cut in (("half.jpg", len(data) // 2), ("noeoi.jpg", len(data) - 2), ("tail.jpg", len(data) - 50)):
        (tmp_path / name).write_bytes(data[:cut])
        with pytest.raises(ImageReadError, match=r"truncated JPEG \(file ends early\)") as err:
            read_image(tmp_path / name)
        assert "truncated JPEG" in assert_one_line(err, name)


def test_truncated_jpeg_detected_even_if_pillow_is_told_to_accept_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # some other library may set this global
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        read_image(tmp_path / "cut.jpg")


def test_jpeg_with_data_after_eoi_is_fine(tmp_path: Path) -> None:
    Image.fromarray(smooth_rgb()).save(tmp_path / "base.jpg")
    trailer = b"\x00\x00\x00\x18ftypmp42\xff\xda\x00\x10junk-after-the-image\xff\xc0"  # like a motion photo
    (tmp_path / "motion.jpg").write_bytes((tmp_path / "base.jpg").read_bytes() + trailer)
    assert read_image(tmp_path / "motion.jpg").rgb.shape == (24, 32, 3)


def test_truncated_png(tmp_path: Path) -> None:
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"truncated PNG \(file ends early\)") as err:
        read_image(tmp_path / "cut.png")
    assert "PNG" in assert_one_line(err, "cut.png")


@pytest.mark.parametrize("writer", ["tifffile", "opencv"])  # tifffile puts the directory first, OpenCV last
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_truncated_lzw_tiff(tmp_path: Path, writer: str, dtype) -> None:
    values = RNG.integers(0, np.iinfo(dtype).max + 1, (64, 64, 3)).astype(dtype)
    if writer == "tifffile":
        tifffile.imwrite(tmp_path / "full.tif", values, photometric="rgb", compression="lzw")
    else:
        cv2.imwrite(str(tmp_path / "full.tif"), values)
    assert tiff_compression(tmp_path / "full.tif") == "LZW"
    data = (tmp_path / "full.tif").read_bytes()
    for name, cut in (("half.tif", len(data) // 2), ("short.tif", len(data) * 9 // 10)):
        (tmp_path / name).write_bytes(data[:cut])
        with pytest.raises(ImageReadError, match=r"truncated TIFF \(file ends early\)") as err:
            read_image(tmp_path / name)
        assert "truncated TIFF" in assert_one_line(err, name)


def test_truncated_gif(tmp_path: Path) -> None:
    palette_frame(RNG.integers(0, 200, (40, 40)), [(i, 255 - i, i // 2) for i in range(200)]).save(tmp_path / "a.gif")
    data = (tmp_path / "a.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"truncated GIF \(file ends early\)") as err:
        read_image(tmp_path / "cut.gif")
    assert "truncated GIF" in assert_one_line(err, "cut.gif")


def test_missing_tiff_codec_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_codec(self, *args, **kwargs):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_codec)  # as tifffile fails without imagecodecs
    tifffile.imwrite(tmp_path / "deep.tif", np.zeros((4, 4, 3), np.uint16), photometric="rgb", compression="lzw")
    with pytest.raises(
        ImageReadError, match="TIFF compressed with LZW needs the 'imagecodecs' package, which is not installed"
    ) as err:
        read_image(tmp_path / "deep.tif")
    assert "LZW" in assert_one_line(err, "deep.tif")
    assert "imagecodecs" in str(err.value)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow's own note on the garbage TIFF
@pytest.mark.parametrize(
    ("name", "content", "expect"),
    [
        ("empty.jpg", b"", "empty file (0 bytes)"),
        (
            "notes.png",
            b"this is a text file, not a picture\n",
            "not an image file WeatherStudio can read (unknown format)",
        ),
        ("garbage.tif", b"II*\x00" + b"\x07" * 40, "truncated TIFF (file ends early)"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: bytes, expect: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageReadError, match=re.escape(expect)) as err:
        read_image(tmp_path / name)
    assert expect in assert_one_line(err, name)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file$") as err:
        read_image(tmp_path / "nowhere.jpg")
    assert "no such file" in assert_one_line(err, "nowhere.jpg")
    (tmp_path / "album.jpg").mkdir()
    with pytest.raises(ImageReadError, match="is a folder, not an image file$") as err:
        read_image(tmp_path / "album.jpg")
    assert "folder" in assert_one_line(err, "album.jpg")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="file permissions do not bind root")
def test_permission_denied(tmp_path: Path) -> None:
    src = tmp_path / "locked.png"
    Image.new("RGB", (2, 2)).save(src)
    src.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied$") as err:
            read_image(src)
        assert "permission denied" in assert_one_line(err, "locked.png")
    finally:
        src.chmod(0o644)


def test_max_pixels_guard(tmp_path: Path) -> None:
    Image.new("RGB", (100, 80)).save(tmp_path / "big.png")
    with pytest.raises(
        ImageReadError,
        match=re.escape("100×80 is 0.0 megapixels, over the limit of 0.005 megapixels (possible decompression bomb"),
    ) as err:
        read_image(tmp_path / "big.png", max_pixels=5000)
    assert "limit" in assert_one_line(err, "big.png")
    assert read_image(tmp_path / "big.png", max_pixels=8000).rgb.shape == (80, 100, 3)


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    # A 16-byte PNG body that declares 60000×60000 (3.6 gigapixels): refused from the header, nothing allocated.
    Image.new("L", (1, 1)).save(tmp_path / "tiny.png")
    data = bytearray((tmp_path / "tiny.png").read_bytes())
    data[16:24] = (60000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # keep the IHDR checksum valid
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(
        ImageReadError,
        match=re.escape(
            "60000×60000 is 3600.0 megapixels, over the limit of 200 megapixels (possible decompression bomb"
        ),
    ) as err:
        read_image(tmp_path / "bomb.png")
    assert "decompression bomb" in assert_one_line(err, "bomb.png")
    big = tmp_path / "bomb.tif"  # a 2×2 TIFF whose header is patched to claim 40000×40000
    tifffile.imwrite(big, np.zeros((2, 2), np.uint16))
    data = bytearray(big.read_bytes())
    with tifffile.TiffFile(big) as tif:
        for code in (256, 257):
            tag = tif.pages.first.tags[code]
            struct.pack_into("<H" if tag.dtype == 3 else "<I", data, tag.valueoffset, 40000)
    big.write_bytes(bytes(data))
    with pytest.raises(
        ImageReadError,
        match=re.escape(
            "40000×40000 is 1600.0 megapixels, over the limit of 1 megapixels (possible decompression bomb"
        ),
    ) as err:
        read_image(big, max_pixels=1_000_000)
    assert "limit of 1 megapixels" in assert_one_line(err, "bomb.tif")


# ---------------------------------------------------------------- writing safely


def test_refuses_to_overwrite_source(tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    Image.fromarray(smooth_rgb()).save(src)
    before = src.read_bytes()
    loaded = read_image(src)
    with pytest.raises(ImageWriteError, match="input"):
        write_image(src, loaded.rgb, like=loaded, overwrite=True)
    (tmp_path / "sub").mkdir()
    with pytest.raises(ImageWriteError, match="input"):  # another spelling of the same file, no `like`
        write_image(tmp_path / "sub" / ".." / "photo.png", loaded.rgb, source_paths=[src], overwrite=True)
    (tmp_path / "alias.png").symlink_to(src)
    with pytest.raises(ImageWriteError, match="input"):
        write_image(tmp_path / "alias.png", loaded.rgb, source_paths=[src], overwrite=True)
    assert src.read_bytes() == before
    assert no_temp_files(tmp_path)


def test_refuses_existing_without_overwrite(tmp_path: Path) -> None:
    rgb = np.full((3, 3, 3), 0.25, np.float32)
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    with pytest.raises(ImageWriteError, match=r"already exists \(allow overwriting to replace it\)$") as err:
        write_image(out, rgb)
    assert "already exists" in assert_one_line(err, "out.png")
    assert out.read_bytes() == b"precious"
    write_image(out, rgb, overwrite=True)
    assert np.array_equal(to_uint8(read_image(out).rgb), to_uint8(rgb))
    assert no_temp_files(tmp_path)


def test_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "result.png"
    target.mkdir()
    (target / "keep.txt").write_text("x")  # os.replace cannot put a file over a non-empty folder
    with pytest.raises(ImageWriteError, match=r"cannot write \(") as err:
        write_image(target, np.zeros((4, 4, 3), np.float32), overwrite=True)
    assert_one_line(err, "result.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]
    assert no_temp_files(tmp_path)


def test_write_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="NaN"):
        write_image(tmp_path / "nan.png", np.full((2, 2, 3), np.nan, np.float32))
    with pytest.raises(ImageWriteError, match="H×W×3"):
        write_image(tmp_path / "shape.png", np.zeros((2, 2, 5), np.float32))
    with pytest.raises(ImageWriteError, match="cannot write '.gif'"):
        write_image(tmp_path / "x.gif", np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_image(tmp_path / "nope" / "x.png", np.zeros((2, 2, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_loaded_image_fields(tmp_path: Path) -> None:
    Image.fromarray(smooth_rgb()).save(tmp_path / "a.tiff", compression="tiff_lzw", dpi=(240, 240))
    loaded = read_image(tmp_path / "a.tiff")
    assert isinstance(loaded, LoadedImage)
    assert (loaded.format, loaded.mode, loaded.bit_depth, loaded.compression) == ("TIFF", "RGB", 8, "lzw")
    assert loaded.dpi == (240.0, 240.0)
    assert loaded.width == 32
    assert loaded.height == 24
    out = write_image(tmp_path / "b.tif", loaded.rgb, like=loaded)
    assert Image.open(out).info["dpi"] == (240.0, 240.0)


# ---------------------------------------------------------------- helpers


def test_to_uint_rounds_and_clips() -> None:
    k = np.arange(256, dtype=np.float32)
    assert np.array_equal(to_uint8((k + 0.49) / 255), np.arange(256))
    assert np.array_equal(to_uint8((k[:-1] + 0.51) / 255), np.arange(1, 256))
    assert to_uint8(np.array([-0.5, 1.5, np.nan, np.inf])).tolist() == [0, 255, 0, 255]
    assert to_uint16(np.array([0.0, 1 / 65535 * 0.6, 0.5, 1.0, 2.0])).tolist() == [0, 1, 32768, 65535, 65535]
    q = RNG.integers(0, 65536, 10_000).astype(np.uint16)
    assert np.array_equal(to_uint16(q.astype(np.float32) / np.float32(65535)), q)


def test_list_images(tmp_path: Path) -> None:
    for name in ["img10.jpg", "img2.JPG", "img1.png", ".hidden.jpg", "notes.txt", "b.TIFF", "c.webp", "d.bmp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "img3.png").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "z.png").write_bytes(b"x")
    names = [p.name for p in list_images([tmp_path])]
    assert names == ["b.TIFF", "c.webp", "d.bmp", "img1.png", "img2.JPG", "img10.jpg"]
    deep = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert "sub/img3.png" in deep
    assert ".cache/z.png" not in deep
    assert len(deep) == 7
    explicit = list_images([tmp_path / "img10.jpg", tmp_path / "notes.txt", tmp_path, tmp_path / "img1.png"])
    assert [p.name for p in explicit][:3] == ["img10.jpg", "b.TIFF", "c.webp"]
    assert len(explicit) == 6  # no duplicates
    with pytest.raises(ImageReadError, match="no such file"):
        list_images([tmp_path / "missing"])
    assert {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"} <= SUPPORTED_EXTENSIONS


def test_no_warnings_on_clean_round_trip(tmp_path: Path) -> None:
    Image.fromarray(smooth_rgb()).save(tmp_path / "a.jpg", exif=camera_exif(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = read_image(tmp_path / "a.jpg")
        write_image(tmp_path / "b.jpg", loaded.rgb, like=loaded)
