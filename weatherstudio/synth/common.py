"""Shared helpers of the weather synthesisers: random numbers, image conversion, kernels and point stamping.

Everything works on float32 numpy arrays (images H×W×3 RGB in [0, 1], maps H×W). A particle layer (snow flakes,
rain streaks) is rendered as *impulses convolved with one sprite*: each particle drops its amplitude at its
position on an otherwise empty canvas, and one ``cv2.filter2D`` with the sprite kernel (flake shape ⊛ defocus ⊛
motion blur, or a streak) stamps them all at once. The cost is one convolution per layer, whatever the
number of particles, which is what makes on-the-fly synthesis fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TypeAlias, TypeVar

import cv2
import numpy as np

RngLike: TypeAlias = np.random.Generator | int | np.random.SeedSequence | None
Range: TypeAlias = tuple[float, float]

_SUPERSAMPLE = 4

P = TypeVar("P")


def as_rng(rng: RngLike) -> np.random.Generator:
    """A numpy Generator from a Generator (returned as is), a seed, a SeedSequence, or None (seed 0).

    None gives seed 0 rather than OS entropy: every synthesis in the project is reproducible unless the
    caller explicitly passes a fresh Generator.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def preset_params(
    kind: str, presets: Mapping[str, P], params_type: type[P], preset: str | P, overrides: dict[str, object]
) -> P:
    """The parameters named ``preset`` in ``presets`` (or ``preset`` itself when it is already a ``params_type``),
    with fields replaced by ``overrides``; an unknown name raises ValueError naming the ``kind`` of weather."""
    if isinstance(preset, params_type):
        params = preset
    else:
        try:
            params = presets[preset]  # type: ignore[index]
        except KeyError:
            raise ValueError(f"unknown {kind} preset {preset!r}; choose from {sorted(presets)}") from None
    return replace(params, **overrides) if overrides else params  # type: ignore[type-var]


def uniform(rng: np.random.Generator, bounds: Range | float) -> float:
    """One draw from ``[lo, hi]`` (a constant when given a number or an empty range)."""
    if isinstance(bounds, int | float):
        return float(bounds)
    lo, hi = bounds
    return float(lo) if hi <= lo else float(rng.uniform(lo, hi))


def log_uniform(rng: np.random.Generator, bounds: Range) -> float:
    """One log-uniform draw from ``[lo, hi]`` (both > 0): sizes and lengths spread over octaves."""
    lo, hi = bounds
    return float(lo) if hi <= lo else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def randint(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """An integer in ``[lo, hi]`` inclusive."""
    lo, hi = bounds
    return int(lo) if hi <= lo else int(rng.integers(lo, hi + 1))


def to_float_rgb(image: np.ndarray) -> np.ndarray:
    """Any image array (uint8, uint16, float; grey, RGB or RGBA) as contiguous float32 H×W×3 in [0, 1]."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        out = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        out = img.astype(np.float32) / 65535.0
    else:
        out = img.astype(np.float32, copy=False)
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    elif out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    elif out.shape[2] == 4:
        out = out[:, :, :3]
    if out.ndim != 3 or out.shape[2] != 3:
        raise ValueError(f"expected an H×W, H×W×1, H×W×3 or H×W×4 image, got shape {img.shape}")
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def image_scale(shape: tuple[int, ...], reference_short_side: float, scale: float | None = None) -> float:
    """Pixels per reference pixel: particle sizes are given for an image whose short side is the reference.

    A photo larger than the reference gets proportionally larger particles, so a 4000 px photo and a
    500 px one look alike. A smaller image is taken to be a *crop* at reference resolution (the usual
    training patch) and keeps scale 1, so streaks never become thinner than about a pixel. An explicit
    ``scale`` overrides both.
    """
    if scale is not None:
        return float(scale)
    return max(1.0, min(shape[0], shape[1]) / reference_short_side)


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, cells: float = 4.0) -> np.ndarray:
    """A smooth random field (about ``cells`` bumps across the short side), zero mean, unit std, H×W float32."""
    h, w = shape
    short = min(h, w)
    gh = max(2, int(round(cells * h / short)) + 2)
    gw = max(2, int(round(cells * w / short)) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 1e-6 else field


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` px (no-op below 0.05 px)."""
    if sigma < 0.05:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT101)


def _odd(n: float) -> int:
    k = int(math.ceil(n))
    return k + 1 - (k % 2)


def direction(angle_deg: float) -> tuple[float, float]:
    """Unit (dx, dy) of a fall direction ``angle_deg`` from the vertical (image y points down; + leans right)."""
    a = math.radians(angle_deg)
    return math.sin(a), math.cos(a)


def line_kernel(
    length: float, width: float, angle_deg: float, *, sigma: float = 0.0, taper: float = 2.0, head: float = 0.0
) -> np.ndarray:
    """A streak sprite (peak 1): an anti-aliased line of ``length`` × ``width`` px along ``angle_deg``.

    Drawn at 4× and area-averaged, so sub-pixel widths (e.g. 1.3 px) come out as fainter, thinner lines.
    The brightness along the streak follows ``1 − |t|^taper`` (t ∈ [−1, 1] from end to end: soft ends), tilted
    by ``head`` ∈ [−1, 1] (brighter towards the lower end when > 0). ``sigma`` adds a Gaussian blur.
    """
    dx, dy = direction(angle_deg)
    length = max(length, 1.0)
    width = max(width, 0.3)
    margin = width + 3.0 * sigma + 2.0
    kw = _odd(abs(dx) * length + 2 * margin)
    kh = _odd(abs(dy) * length + 2 * margin)
    s = _SUPERSAMPLE
    canvas = np.zeros((kh * s, kw * s), np.float32)
    cx, cy = (kw * s - 1) / 2.0, (kh * s - 1) / 2.0
    half = length * s / 2.0
    p0 = (cx - dx * half, cy - dy * half)
    p1 = (cx + dx * half, cy + dy * half)
    shift = 4
    f = float(1 << shift)
    thickness = max(1, int(round(width * s)))
    cv2.line(
        canvas,
        (int(round(p0[0] * f)), int(round(p0[1] * f))),
        (int(round(p1[0] * f)), int(round(p1[1] * f))),
        1.0,
        thickness=thickness,
        lineType=cv2.LINE_AA,
        shift=shift,
    )
    kernel = cv2.resize(canvas, (kw, kh), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:kh, 0:kw].astype(np.float32)
    t = ((xx - (kw - 1) / 2.0) * dx + (yy - (kh - 1) / 2.0) * dy) / (length / 2.0)
    t = np.clip(t, -1.0, 1.0)
    profile = (1.0 - np.abs(t) ** taper) * (1.0 + head * t)
    kernel *= np.clip(profile, 0.0, None)
    kernel = gaussian_blur(kernel, sigma)
    return normalize_peak(kernel)


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised (sum 1) linear motion-blur kernel of ``length`` px along ``angle_deg``; 1×1 when short."""
    if length < 1.0:
        return np.ones((1, 1), np.float32)
    k = line_kernel(length, 1.0, angle_deg, taper=50.0)
    return (k / k.sum()).astype(np.float32)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised 2-D Gaussian kernel (1×1 for sigma < 0.05)."""
    if sigma < 0.05:
        return np.ones((1, 1), np.float32)
    g = cv2.getGaussianKernel(_odd(6 * sigma + 1), sigma, cv2.CV_32F)
    return (g @ g.T).astype(np.float32)


def blob_kernel(radius: float, rng: np.random.Generator, irregularity: float = 0.5) -> np.ndarray:
    """A snow-flake sprite (peak 1) of about ``radius`` px: an ellipse plus a few offset lobes.

    ``irregularity`` ∈ [0, 1] controls the ellipticity and the lobes; tiny flakes are round dots anyway.
    Drawn at 4× and area-averaged (anti-aliased), brighter in the middle than at the rim.
    """
    radius = max(radius, 0.35)
    k = _odd(2 * radius * 1.6 + 3)
    s = _SUPERSAMPLE
    canvas = np.zeros((k * s, k * s), np.float32)
    c = (k * s - 1) / 2.0
    shift = 4
    f = float(1 << shift)

    def ellipse(cx: float, cy: float, ax: float, ay: float, rot: float) -> None:
        cv2.ellipse(
            canvas,
            (int(round(cx * f)), int(round(cy * f))),
            (max(1, int(round(ax * f))), max(1, int(round(ay * f)))),
            rot,
            0,
            360,
            1.0,
            thickness=-1,
            lineType=cv2.LINE_AA,
            shift=shift,
        )

    r = radius * s
    aspect = 1.0 - irregularity * rng.uniform(0.0, 0.45)
    ellipse(c, c, r, r * aspect, float(rng.uniform(0, 180)))
    if radius >= 1.5 and irregularity > 0:
        for _ in range(int(rng.integers(1, 4))):
            ang = rng.uniform(0, 2 * math.pi)
            off = r * irregularity * rng.uniform(0.2, 0.55)
            lr = r * rng.uniform(0.35, 0.65)
            lx, ly = c + off * math.cos(ang), c + off * math.sin(ang)
            ellipse(lx, ly, lr, lr * rng.uniform(0.6, 1.0), rng.uniform(0, 180))
    kernel = cv2.resize(canvas, (k, k), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:k, 0:k].astype(np.float32)
    rr = np.sqrt((xx - (k - 1) / 2.0) ** 2 + (yy - (k - 1) / 2.0) ** 2) / (radius * 1.3)
    kernel *= np.clip(1.0 - 0.35 * rr**2, 0.3, 1.0)
    return normalize_peak(kernel)


def normalize_peak(kernel: np.ndarray) -> np.ndarray:
    """The kernel scaled so that its maximum is 1 (float32)."""
    peak = float(kernel.max())
    return (kernel / peak if peak > 0 else kernel).astype(np.float32)


def convolve_kernels(*kernels: np.ndarray) -> np.ndarray:
    """Full 2-D convolution of small kernels (sprite ⊛ defocus ⊛ motion); the result keeps odd sizes."""
    out = kernels[0].astype(np.float32)
    for k in kernels[1:]:
        if k.size == 1:
            out = out * float(k.reshape(-1)[0])
            continue
        kh, kw = k.shape
        padded = cv2.copyMakeBorder(out, kh // 2, kh // 2, kw // 2, kw // 2, cv2.BORDER_CONSTANT, value=0)
        out = cv2.filter2D(padded, -1, cv2.flip(k, -1), borderType=cv2.BORDER_CONSTANT)
    return out


def trim_kernel(kernel: np.ndarray, threshold: float = 2e-3) -> np.ndarray:
    """Crop rows/columns (symmetrically, keeping the centre) whose values are all below threshold × peak."""
    mask = kernel > threshold * float(kernel.max())
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return kernel
    kh, kw = kernel.shape
    ry = max((kh - 1) // 2 - int(rows[0]), int(rows[-1]) - (kh - 1) // 2)
    rx = max((kw - 1) // 2 - int(cols[0]), int(cols[-1]) - (kw - 1) // 2)
    cy, cx = (kh - 1) // 2, (kw - 1) // 2
    return np.ascontiguousarray(kernel[cy - ry : cy + ry + 1, cx - rx : cx + rx + 1])


def splat(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, values: np.ndarray, *, subpixel: bool) -> np.ndarray:
    """Impulse map: each point adds its value at (x, y); bilinear over 4 pixels when ``subpixel``.

    Points outside the canvas are dropped. Returns float32 H×W.
    """
    h, w = shape
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    v = np.asarray(values, np.float64)
    if subpixel:
        x0 = np.floor(x)
        y0 = np.floor(y)
        fx = x - x0
        fy = y - y0
        xi = np.concatenate([x0, x0 + 1, x0, x0 + 1]).astype(np.int64)
        yi = np.concatenate([y0, y0, y0 + 1, y0 + 1]).astype(np.int64)
        wv = np.concatenate([v * (1 - fx) * (1 - fy), v * fx * (1 - fy), v * (1 - fx) * fy, v * fx * fy])
    else:
        xi = np.floor(x + 0.5).astype(np.int64)
        yi = np.floor(y + 0.5).astype(np.int64)
        wv = v
    keep = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    flat = np.bincount(yi[keep] * w + xi[keep], weights=wv[keep], minlength=h * w)
    return flat.reshape(h, w).astype(np.float32)


def render_points(
    shape: tuple[int, int],
    x: np.ndarray,
    y: np.ndarray,
    amplitude: np.ndarray,
    kernel: np.ndarray,
    *,
    subpixel: bool = False,
    downscale: int = 1,
) -> np.ndarray:
    """Stamp ``kernel`` (peak 1) at every point, scaled by its amplitude: impulses ⊛ kernel, H×W float32.

    Points may lie up to half a kernel outside the image (their visible part is drawn). Overlaps add.
    ``downscale`` > 1 renders at 1/downscale resolution and upsamples: right for blurry (defocused)
    layers, whose sprites have no fine detail, and much cheaper for big kernels.
    """
    h, w = shape
    if downscale > 1:
        lh, lw = -(-h // downscale), -(-w // downscale)
        kh, kw = kernel.shape
        small_k = cv2.resize(
            kernel, (max(1, _odd(kw / downscale)), max(1, _odd(kh / downscale))), interpolation=cv2.INTER_AREA
        )
        # keep the sprite's total (its coverage) right at the lower resolution
        small_k = small_k * (float(kernel.sum()) / (downscale * downscale) / max(float(small_k.sum()), 1e-12))
        off = (downscale - 1) / 2.0
        low = render_points(
            (lh, lw), (x - off) / downscale, (y - off) / downscale, amplitude, small_k, subpixel=True, downscale=1
        )
        up = cv2.resize(low, (lw * downscale, lh * downscale), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(up[:h, :w])
    kh, kw = kernel.shape
    py, px = kh // 2, kw // 2
    canvas = splat((h + 2 * py, w + 2 * px), x + px, y + py, amplitude, subpixel=subpixel)
    if kernel.size > 1:
        canvas = _stamp(canvas, kernel) if _few(canvas, kernel, len(x)) else _convolve(canvas, kernel)
    return np.ascontiguousarray(canvas[py : py + h, px : px + w])


def _few(canvas: np.ndarray, kernel: np.ndarray, n_points: int) -> bool:
    """Whether stamping point by point beats one convolution (few points, big kernel)."""
    if n_points > 256 or kernel.size <= 121:
        return False
    return 4 * n_points * (kernel.size + 2000) < canvas.size * 40


def _convolve(canvas: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.filter2D(canvas, -1, cv2.flip(kernel, -1), borderType=cv2.BORDER_CONSTANT)


def _stamp(canvas: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """impulses ⊛ kernel by adding a scaled copy of the kernel at every non-zero impulse (same result)."""
    kh, kw = kernel.shape
    py, px = kh // 2, kw // 2
    h, w = canvas.shape
    out = np.zeros((h + kh - 1, w + kw - 1), np.float32)
    ys, xs = np.nonzero(canvas)
    for yy, xx, v in zip(ys.tolist(), xs.tolist(), canvas[ys, xs].tolist(), strict=True):
        out[yy : yy + kh, xx : xx + kw] += v * kernel
    return out[py : py + h, px : px + w]
