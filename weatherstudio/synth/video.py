"""Rainy and snowy clips from a still photo, as J4R-Net's authors trained (Liu et al., CVPR 2018, Sec. 5).

A smooth random camera path (pan, zoom, roll and a little shake) is applied to the photo: each frame is
the view of an output-sized window through an affine map, chosen so that the window always stays inside
the photo (no border ever shows). Weather lives in screen space and moves coherently: every rain streak
(or snow flake) keeps its identity from frame to frame and falls along its layer's direction with a
constant velocity, re-entering at the top when it leaves at the bottom. Each frame is composed with the
same physical model as the single images (J4R-Net eq. 2 for rain, DesnowNet eq. 1 for snow) and returned
as a :class:`RainSample` / :class:`SnowSample`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from weatherstudio.synth.common import Range, RngLike, as_rng, log_uniform, to_float_rgb, uniform
from weatherstudio.synth.rain import RainParams, RainSample, draw_rain_scene, rain_params
from weatherstudio.synth.snow import SnowField, SnowParams, SnowSample, aberration_map, compose_snow, snow_params


@dataclass(frozen=True)
class CameraMotion:
    """Ranges of the simulated camera path over one clip."""

    margin: Range = (1.05, 1.3)  # the widest view is the photo's extent divided by this (room to move)
    pan: Range = (0.0, 0.3)  # total pan over the clip, as a fraction of the output width
    zoom: Range = (-0.15, 0.15)  # total change of log zoom over the clip
    roll: Range = (-3.0, 3.0)  # total rotation over the clip, degrees
    shake: Range = (0.0, 1.5)  # hand-shake amplitude, output pixels
    shake_roll: Range = (0.0, 0.3)  # hand-shake rotation amplitude, degrees


STATIC_CAMERA = CameraMotion(
    margin=(1.0, 1.0), pan=(0.0, 0.0), zoom=(0.0, 0.0), roll=(0.0, 0.0), shake=(0.0, 0.0), shake_roll=(0.0, 0.0)
)


def _shake(n: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth zero-mean wobble of ``n`` samples: two sines of random frequency (0.04–0.3 cycles/frame)."""
    t = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    for _ in range(2):
        f = rng.uniform(0.04, 0.3)
        out += np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi))
    return amplitude * out / 2.0


def camera_path(
    src_shape: tuple[int, int],
    out_shape: tuple[int, int],
    n_frames: int,
    rng: np.random.Generator,
    motion: CameraMotion | None = None,
) -> np.ndarray:
    """Per-frame affine maps (n×2×3, output pixel → photo pixel) of a smooth camera path inside the photo.

    The view's scale lies between the photo's native resolution and "whole photo in view / margin"; pan,
    zoom and roll drift linearly over the clip, shake adds small smooth wobbles. Every output pixel maps
    inside the photo (scale and offsets are shrunk when needed), so no border ever shows.
    """
    motion = motion or CameraMotion()
    h0, w0 = src_shape
    h, w = out_shape
    n = max(1, int(n_frames))
    fit = min((w0 - 1) / max(w - 1, 1), (h0 - 1) / max(h - 1, 1))
    top = fit / uniform(rng, motion.margin)
    sigma0 = log_uniform(rng, (min(1.0, top), top))
    t = (np.arange(n) / max(n - 1, 1)) - 0.5
    log_sigma = math.log(sigma0) + uniform(rng, motion.zoom) * t + _shake(n, rng, 0.002 * uniform(rng, motion.shake))
    theta = np.radians(uniform(rng, motion.roll) * t + _shake(n, rng, uniform(rng, motion.shake_roll)))
    sigma = np.exp(log_sigma)
    cos, sin = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    ex = sigma * (cos * (w - 1) + sin * (h - 1)) / 2.0
    ey = sigma * (sin * (w - 1) + cos * (h - 1)) / 2.0
    over = float(max(np.max(2 * ex / (w0 - 1)), np.max(2 * ey / (h0 - 1))))
    if over > 1.0:
        sigma, ex, ey = sigma / over, ex / over, ey / over
    phi = rng.uniform(0, 2 * math.pi)
    pan = uniform(rng, motion.pan) * w * sigma0
    shake = uniform(rng, motion.shake) * sigma0
    ox = pan * math.cos(phi) * t + _shake(n, rng, shake)
    oy = pan * math.sin(phi) * t + _shake(n, rng, shake)
    for _ in range(60):
        lo_x, hi_x = float(np.max(ex - ox)), float(np.min(w0 - 1 - ex - ox))
        lo_y, hi_y = float(np.max(ey - oy)), float(np.min(h0 - 1 - ey - oy))
        if lo_x <= hi_x and lo_y <= hi_y:
            break
        ox, oy = ox * 0.7, oy * 0.7
    else:
        ox, oy = ox * 0.0, oy * 0.0
        lo_x, hi_x = float(np.max(ex)), float(np.min(w0 - 1 - ex))
        lo_y, hi_y = float(np.max(ey)), float(np.min(h0 - 1 - ey))
    cx = rng.uniform(lo_x, hi_x) + ox if hi_x > lo_x else lo_x + ox
    cy = rng.uniform(lo_y, hi_y) + oy if hi_y > lo_y else lo_y + oy
    mats = np.zeros((n, 2, 3), np.float64)
    pcx, pcy = (w - 1) / 2.0, (h - 1) / 2.0
    c, s = np.cos(theta), np.sin(theta)
    mats[:, 0, 0], mats[:, 0, 1] = sigma * c, -sigma * s
    mats[:, 1, 0], mats[:, 1, 1] = sigma * s, sigma * c
    mats[:, 0, 2] = cx - mats[:, 0, 0] * pcx - mats[:, 0, 1] * pcy
    mats[:, 1, 2] = cy - mats[:, 1, 0] * pcx - mats[:, 1, 1] * pcy
    return mats


def render_view(photo: np.ndarray, matrix: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """The output-sized view of ``photo`` through ``matrix`` (output → photo pixels), bilinear, anti-aliased.

    When the view shrinks the photo by more than 1.5×, the photo is first area-downsampled so that the
    bilinear warp does not alias.
    """
    h, w = out_shape
    scale = math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))
    src, m = photo, matrix.astype(np.float64).copy()
    if scale > 1.5:
        f = scale / 1.2
        sh, sw = max(2, int(round(photo.shape[0] / f))), max(2, int(round(photo.shape[1] / f)))
        fy, fx = photo.shape[0] / sh, photo.shape[1] / sw
        src = cv2.resize(photo, (sw, sh), interpolation=cv2.INTER_AREA)
        # photo pixel p ↦ small pixel (p + 0.5) / f − 0.5
        m[0] = m[0] / fx
        m[1] = m[1] / fy
        m[0, 2] += 0.5 / fx - 0.5
        m[1, 2] += 0.5 / fy - 0.5
    out = cv2.warpAffine(
        src, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT101
    )
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _views(
    clean: np.ndarray,
    n_frames: int,
    size: tuple[int, int] | None,
    camera: CameraMotion | None,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    photo = to_float_rgb(clean)
    out_shape = (int(size[0]), int(size[1])) if size is not None else photo.shape[:2]
    if out_shape[0] > photo.shape[0] or out_shape[1] > photo.shape[1]:
        f = max(out_shape[0] / photo.shape[0], out_shape[1] / photo.shape[1]) * 1.01
        photo = cv2.resize(
            photo,
            (int(math.ceil(photo.shape[1] * f)), int(math.ceil(photo.shape[0] * f))),
            interpolation=cv2.INTER_CUBIC,
        )
        photo = np.clip(photo, 0.0, 1.0)
    mats = camera_path(photo.shape[:2], out_shape, n_frames, rng, camera)
    return [render_view(photo, m, out_shape) for m in mats]


def synthesize_rain_video(
    clean: np.ndarray,
    n_frames: int = 8,
    preset: str | RainParams = "light",
    rng: RngLike = None,
    *,
    size: tuple[int, int] | None = (256, 256),
    camera: CameraMotion | None = None,
    scale: float | None = None,
) -> list[RainSample]:
    """A rainy clip of ``n_frames`` frames (each a :class:`RainSample`) made from one still photo.

    ``size`` is the frame size (height, width); None keeps the photo's size. ``camera`` gives the ranges of
    the camera path (:data:`STATIC_CAMERA` for a fixed view). Streaks move coherently between frames: a
    layer's streaks all advance by the same velocity (``fall_speed`` × their length per frame).
    """
    gen = as_rng(rng)
    p = rain_params(preset)
    views = _views(clean, n_frames, size, camera, gen)
    scene = draw_rain_scene(views[0], p, gen, scale=scale, subpixel=True)
    frames = []
    for i, y in enumerate(views):
        if i:
            scene.field.step()
        frames.append(scene.sample(y))
    return frames


def synthesize_snow_video(
    clean: np.ndarray,
    n_frames: int = 8,
    preset: str | SnowParams = "medium",
    rng: RngLike = None,
    *,
    size: tuple[int, int] | None = (256, 256),
    camera: CameraMotion | None = None,
    scale: float | None = None,
) -> list[SnowSample]:
    """A snowy clip of ``n_frames`` frames (each a :class:`SnowSample`) made from one still photo.

    Flakes drift with their layer's velocity (wind direction; near layers faster) and sway sideways.
    """
    gen = as_rng(rng)
    p = snow_params(preset)
    views = _views(clean, n_frames, size, camera, gen)
    shape = views[0].shape[:2]
    field = SnowField(shape, p, gen, scale=scale, subpixel=True)
    a = aberration_map(views[0], p, gen)
    frames = []
    for i, y in enumerate(views):
        if i:
            field.step()
        z = field.mask()
        frames.append(SnowSample(compose_snow(y, z, a), y, z, a))
    return frames
