"""Image statistics that tell weather apart, to check synthetic weather against real photos without ground truth.

Real weather has no clean counterpart, so synthetic and real weather are compared as populations of images,
each through the same few numbers (all on BT.601 luminance Y in [0, 1], the image first resized so that its
short side is ``reference`` px, the size the synthesizers' particle sizes are given for):

* ``dark`` — the mean dark channel (He, Sun, Tang, CVPR 2009: the minimum over RGB and a 15×15 window).
  A veil of haze, rain accumulation or snow haze lifts it: clear outdoor photos sit near 0.1.
* ``contrast`` — the standard deviation of Y after a Gaussian blur of σ = 4 px: coarse contrast, which a veil
  lowers and fine streaks or specks leave alone.
* ``fine`` — the mean absolute high-pass of Y (Y minus its σ = 1.5 px blur): fine structure, which streaks
  and small flakes add.
* ``streaks`` — the 99th percentile of the thin bright residue: Y minus its 7-px horizontal running median,
  where positive. A streak (or a flake) a few px wide stands out of it; an edge, however sharp, does not.
* ``aniso`` — the anisotropy of that high-pass's gradients, (E_x − E_y)/(E_x + E_y): positive when thin
  near-vertical structures (rain streaks) dominate, near 0 for photos and round flakes.
* ``blobs`` — the white top-hat of Y (opening by a disk) at radii 1.5, 3, 6 and 12 px; ``blob_share``
  gives how the bright-speck energy splits between those scales (small specks → mostly the first; large
  soft near-camera flakes → the last ones) and ``bright`` the total at 12 px.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

BLOB_RADII = (1.5, 3.0, 6.0, 12.0)


@dataclass(frozen=True)
class WeatherStats:
    """The statistics of one image (see the module docstring)."""

    dark: float
    contrast: float
    fine: float
    streaks: float
    aniso: float
    bright: float
    blob_share: tuple[float, ...]


def _luma(rgb: np.ndarray) -> np.ndarray:
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.float32)


def _disk(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy <= radius * radius + 1e-6).astype(np.uint8)


def resize_to_reference(rgb: np.ndarray, reference: int) -> np.ndarray:
    """``rgb`` (float32 H×W×3) resized so that its short side is ``reference`` px (area-averaged when shrinking)."""
    h, w = rgb.shape[:2]
    s = reference / min(h, w)
    if abs(s - 1.0) < 1e-3:
        return rgb
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def weather_stats(rgb: np.ndarray, reference: int = 480) -> WeatherStats:
    """The :class:`WeatherStats` of a float32 RGB image in [0, 1]."""
    img = resize_to_reference(np.clip(rgb.astype(np.float32), 0.0, 1.0), reference)
    y = _luma(img)
    dark = cv2.erode(img.min(axis=2), np.ones((15, 15), np.uint8))
    coarse = cv2.GaussianBlur(y, (0, 0), 4.0)
    high = y - cv2.GaussianBlur(y, (0, 0), 1.5)
    gx = cv2.Sobel(high, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(high, cv2.CV_32F, 0, 1, ksize=3)
    ex, ey = float(np.mean(gx * gx)), float(np.mean(gy * gy))
    padded = np.pad(y, ((0, 0), (3, 3)), mode="edge")
    median = np.median(np.stack([padded[:, k : k + y.shape[1]] for k in range(7)]), axis=0)
    residue = np.maximum(y - median, 0.0)
    hats = [float(np.mean(y - cv2.morphologyEx(y, cv2.MORPH_OPEN, _disk(r)))) for r in BLOB_RADII]
    steps = np.diff(np.concatenate([[0.0], hats]))
    total = max(hats[-1], 1e-9)
    return WeatherStats(
        dark=float(dark.mean()),
        contrast=float(coarse.std()),
        fine=float(np.mean(np.abs(high))),
        streaks=float(np.percentile(residue, 99)),
        aniso=(ex - ey) / max(ex + ey, 1e-12),
        bright=hats[-1],
        blob_share=tuple(float(max(s, 0.0) / total) for s in steps),
    )


FIELDS = ("dark", "contrast", "fine", "streaks", "aniso", "bright", "large_blobs")


def stat_row(stats: WeatherStats) -> dict[str, float]:
    """The table's numbers of one image: the scalars, and ``large_blobs`` = the top-hat share at 6–12 px."""
    return {
        "dark": stats.dark,
        "contrast": stats.contrast,
        "fine": stats.fine,
        "streaks": stats.streaks,
        "aniso": stats.aniso,
        "bright": stats.bright,
        "large_blobs": stats.blob_share[-1] + stats.blob_share[-2],
    }


def summarize(rows: Iterable[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    """Per field: (25th percentile, median, 75th percentile) over a set of images."""
    rows = list(rows)
    if not rows:
        raise ValueError("no images to summarize")
    return {k: tuple(float(v) for v in np.percentile([r[k] for r in rows], [25, 50, 75])) for k in rows[0]}
