"""Rain synthesis with J4R-Net's hybrid rain model (Liu, Yang, Yang, Guo, "Erase or Fill?", CVPR 2018, eq. 2).

    O = (1 − α) ⊙ (B + S) + α ⊙ A

B is the clean background (``y``), S the additive streak layer (``s``), α ∈ [0, 1] the occlusion/veil map
(``alpha``), A the atmospheric light the occluded pixels take (``a``), O the rainy image (``x``, clipped to
[0, 1]). The paper's α is binary (1 where a drop is opaque); here it is soft and has two parts,
α = 1 − (1 − α_occ)(1 − α_veil): the opaque cores of the brightest near streaks, and for heavy rain a smooth
veil (rain accumulation: the haze of many distant drops lit by the atmospheric light).

Streaks are motion-blurred drops: straight, anti-aliased segments 1–4 px wide with soft ends and an
optional blur, at random positions with random brightness and length, in several layers (far: thin, short,
faint; near: thick, long, bright) whose directions deviate slightly from one wind angle. Presets:
``"light"`` (Rain100L-like: one or two layers of sparse thin streaks, purely additive) and ``"heavy"``
(Rain100H-like: dense, long, several directions, occluding cores and a veil), and ``"dense"`` (what real
rain photos show and both leave out: very many fine, faint streaks in several depth layers under a veil
of rain accumulation, which lowers the contrast of the whole scene). Sizes are given for a 321 px short side
(Rain100L's 481×321).

Calibration against RainTrainL (Rain100L's training split, rainy − clean): the streak layer is grey, mean
0.007–0.05, 99th percentile 0.1–0.45; along the streaks its autocorrelation halves at 12–18 px and falls
to 0.1 at 30–60 px (streaks ≈ 30–60 px long), across at 1–2 px; the direction is within ±30° of vertical.
The light preset reproduces these ranges (``tests/test_synth.py`` checks mean and 99th percentile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from weatherstudio.synth.common import (
    Range,
    RngLike,
    as_rng,
    direction,
    gaussian_blur,
    image_scale,
    log_uniform,
    preset_params,
    randint,
    smooth_noise,
    splat,
    to_float_rgb,
    uniform,
)

RAIN_REFERENCE_SHORT_SIDE = 321.0
_MAX_STREAKS_PER_LAYER = 300_000


@dataclass(frozen=True)
class RainParams:
    """Ranges from which one rainy scene is drawn (lengths and widths in px at a 321 px short side)."""

    n_layers: tuple[int, int] = (1, 2)
    intensity: Range = (0.006, 0.045)  # target mean of the grey streak layer s
    angle: Range = (-32.0, 32.0)  # wind angle, degrees from vertical (+ leans right at the bottom)
    angle_spread: float = 4.0  # per-layer deviation from the wind angle, degrees
    length: Range = (35.0, 85.0)  # streak length (log-uniform), nearest layer
    width: Range = (0.8, 1.7)  # streak width, nearest layer
    depth_falloff: float = 0.45  # far layers are (1 − falloff) times as long, wide and bright
    brightness: Range = (0.25, 0.65)  # peak streak amplitude of the nearest layer
    amplitude_spread: Range = (0.3, 1.0)  # per-streak amplitude as a fraction of the layer's brightness
    length_spread: Range = (0.6, 1.5)  # per-streak length as a fraction of the layer's length
    blur: Range = (0.15, 0.7)  # Gaussian σ of the streaks (px)
    taper: Range = (0.25, 0.6)  # soft ends: the fraction of a streak's length over which it fades in and out
    tint: float = 0.02  # per-channel deviation of the streak colour from grey
    occlusion: Range = (0.0, 0.0)  # strength of α_occ (0: purely additive rain)
    occlusion_threshold: Range = (0.6, 0.8)  # streak level above which the nearest layer turns opaque
    veil: Range = (0.0, 0.0)  # α of the veil
    veil_probability: float = 0.0
    atmosphere: Range = (0.7, 0.95)  # brightness of the atmospheric light A
    sky_tint: Range = (0.0, 0.5)  # how much A takes the colour of the scene's brightest region
    scale_jitter: Range = (0.8, 1.25)  # random zoom of all sizes
    fall_speed: Range = (0.5, 1.5)  # video: displacement per frame in streak lengths (near layers faster)


RAIN_PRESETS: dict[str, RainParams] = {
    "light": RainParams(),
    "heavy": RainParams(
        n_layers=(3, 5),
        intensity=(0.06, 0.15),
        angle=(-30.0, 30.0),
        angle_spread=12.0,
        length=(35.0, 100.0),
        width=(1.6, 3.6),
        brightness=(0.6, 1.0),
        amplitude_spread=(0.4, 1.0),
        blur=(0.2, 1.0),
        occlusion=(0.6, 1.0),
        occlusion_threshold=(0.55, 0.75),
        veil=(0.08, 0.35),
        veil_probability=0.85,
    ),
    # Checked against the real rain photos (benchmarks/synth_realism.py): their streaks are so faint that the
    # thin bright residue (Y minus its 7-px horizontal median) stays at the level of clear photos' texture
    # (99th percentile 0.125 against 0.138), where light rain reaches 0.24; their veil lifts the dark channel
    # from 0.19 (clear photos) to 0.26 (medians).
    "dense": RainParams(
        n_layers=(3, 6),
        intensity=(0.02, 0.08),
        angle=(-25.0, 25.0),
        angle_spread=6.0,
        length=(30.0, 110.0),
        width=(0.7, 1.4),
        depth_falloff=0.55,
        brightness=(0.08, 0.3),
        blur=(0.4, 1.1),
        veil=(0.06, 0.3),
        veil_probability=0.9,
    ),
}


class RainSample(NamedTuple):
    """One synthetic pair: ``x`` rainy (H×W×3), ``y`` clean, ``s`` streaks (H×W×3), ``alpha`` (H×W), ``a`` = A (H×W×3).

    All float32 in [0, 1]; ``x == clip((1 − alpha)(y + s) + alpha · a, 0, 1)`` (J4R-Net eq. 2).
    """

    x: np.ndarray
    y: np.ndarray
    s: np.ndarray
    alpha: np.ndarray
    a: np.ndarray


def rain_params(preset: str | RainParams, **overrides: object) -> RainParams:
    """The :class:`RainParams` of a preset name ("light", "heavy"), or ``preset`` itself, with ``overrides`` applied."""
    return preset_params("rain", RAIN_PRESETS, RainParams, preset, overrides)


@dataclass
class _StreakLayer:
    """One depth layer of streaks sharing a direction, width, soft-end length and blur.

    ``x``, ``y`` are streak centres and ``length`` their lengths along the direction (px); ``amp`` their
    peak brightness.
    """

    x: np.ndarray
    y: np.ndarray
    amp: np.ndarray
    length: np.ndarray
    angle: float
    width: float
    ramp: int  # soft-end length, vertical px (box filter size)
    blur: float
    velocity: tuple[float, float]
    pad: tuple[float, float]  # (py, px): the torus extends this far beyond the view


def _width_profile(width: float) -> np.ndarray:
    """Anti-aliased box of ``width`` px centred on a pixel: each tap is its pixel's overlap with the box."""
    k = int(math.ceil(width / 2.0 + 0.5))
    centres = np.arange(-k, k + 1, dtype=np.float64)
    overlap = np.clip(np.minimum(centres + 0.5, width / 2.0) - np.maximum(centres - 0.5, -width / 2.0), 0.0, 1.0)
    return overlap.astype(np.float32)


def render_streaks(shape: tuple[int, int], layer: _StreakLayer, *, subpixel: bool) -> np.ndarray:
    """One layer's grey streak map (H×W float32): straight streaks with soft ends, anti-aliased.

    Rendered in a sheared frame where the streaks are vertical (x' = x − y·tan θ), so that a streak is a
    vertical segment — made exactly (fractional ends included) by the running sum of a +a impulse at its
    top and a −a impulse at its bottom — smoothed along its length by a box filter (the soft ends) and
    across by an anti-aliased box of its width; then sheared back and blurred. Every step costs O(1) per
    pixel whatever the streaks' length, which is what keeps heavy rain fast.
    """
    h, w = shape
    tan = math.tan(math.radians(layer.angle))
    cos = math.cos(math.radians(layer.angle))
    vert = layer.length * cos  # vertical extents
    core = np.maximum(vert - layer.ramp, 0.5)
    top = float(np.max(core, initial=1.0)) / 2.0 + layer.ramp + 2.0
    py, px = layer.pad
    oy = int(math.ceil(py + top))
    hc = h + 2 * oy
    # sheared x' = x − y·tan θ + ox over the view's padded box
    ys = np.array([-oy, h + oy], np.float64)
    lo = -px - 2.0 - float(np.max(ys * tan))
    hi = w + px + 2.0 - float(np.min(ys * tan))
    hw = _width_profile(layer.width / max(cos, 0.3))
    ox = int(math.ceil(-lo)) + hw.size
    wc = int(math.ceil(hi + ox)) + hw.size
    xs = layer.x - layer.y * tan + ox
    y0 = layer.y - core / 2.0 + oy
    y1 = layer.y + core / 2.0 + oy
    keep = (y0 >= 0) & (y1 < hc - 1) & (xs >= 0) & (xs < wc - 1)
    xs, y0, y1, amp = xs[keep], y0[keep], y1[keep], layer.amp[keep]
    if not subpixel:
        xs = np.floor(xs + 0.5)
    impulses = splat(
        (hc, wc), np.concatenate([xs, xs]), np.concatenate([y0, y1]), np.concatenate([amp, -amp]), subpixel=True
    )
    canvas = np.cumsum(impulses, axis=0, dtype=np.float32)
    if layer.ramp > 1:
        canvas = cv2.blur(canvas, (1, layer.ramp), borderType=cv2.BORDER_CONSTANT)
    canvas = cv2.sepFilter2D(canvas, -1, hw, np.ones(1, np.float32), borderType=cv2.BORDER_CONSTANT)
    back = np.array([[1.0, -tan, ox], [0.0, 1.0, oy]], np.float64)
    view = cv2.warpAffine(
        canvas,
        back,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    view = gaussian_blur(view, layer.blur)
    return np.maximum(view, 0.0)


class RainField:
    """Rain over an H×W view: streak layers that can be rendered (``layer_streaks``) and advanced (``step``).

    Each streak keeps its identity between frames and falls along its layer's direction; a streak that
    leaves the padded view at the bottom re-enters at the top at a new random column (respawn).
    """

    def __init__(
        self,
        shape: tuple[int, int],
        params: RainParams,
        rng: np.random.Generator,
        *,
        scale: float | None = None,
        subpixel: bool = False,
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.params = params
        self.subpixel = subpixel
        self.rng = rng
        h, w = self.shape
        sc = image_scale(self.shape, RAIN_REFERENCE_SHORT_SIDE, scale) * uniform(rng, params.scale_jitter)
        n_layers = randint(rng, params.n_layers)
        self.angle = uniform(rng, params.angle)
        length = log_uniform(rng, params.length) * sc
        width = uniform(rng, params.width) * sc
        bright = uniform(rng, params.brightness)
        intensity = uniform(rng, params.intensity)
        blur = uniform(rng, params.blur) * sc
        fall = uniform(rng, params.fall_speed)
        depths = np.linspace(0.0, 1.0, n_layers) if n_layers > 1 else np.array([1.0])
        falloff = params.depth_falloff
        a_lo, a_hi = params.amplitude_spread
        l_lo, l_hi = params.length_spread
        self.layers: list[_StreakLayer] = []
        for depth in depths:
            k = 1.0 - falloff * (1.0 - float(depth))
            angle = float(np.clip(self.angle + rng.uniform(-1, 1) * params.angle_spread, -60.0, 60.0))
            cos = math.cos(math.radians(angle))
            layer_len = length * k * float(rng.uniform(0.85, 1.15))
            layer_width = max(0.6, width * k * float(rng.uniform(0.85, 1.15)))
            layer_bright = bright * k
            ramp = max(1, int(round(uniform(rng, params.taper) * layer_len * cos)))
            dx, dy = direction(angle)
            py = layer_len * l_hi * cos / 2.0 + 3.0 * blur + 2.0
            px = layer_len * l_hi * abs(dx) / 2.0 + layer_width + 3.0 * blur + 2.0
            dom = (h + 2 * py) * (w + 2 * px)
            mean_len = layer_len * 0.5 * (l_lo + l_hi)
            # a streak's integral: amplitude × (core length + nothing: the box keeps sums) × width
            per_streak = layer_bright * 0.5 * (a_lo + a_hi) * max(mean_len * cos - ramp, 0.5) / cos * layer_width
            count = int(round(intensity / n_layers * dom / max(per_streak, 1e-6)))
            count = min(count, _MAX_STREAKS_PER_LAYER)
            speed = fall * layer_len * float(rng.uniform(0.9, 1.1))
            self.layers.append(
                _StreakLayer(
                    x=rng.uniform(-px, w + px, count),
                    y=rng.uniform(-py, h + py, count),
                    amp=(layer_bright * rng.uniform(a_lo, a_hi, count)).astype(np.float32),
                    length=layer_len * rng.uniform(l_lo, l_hi, count),
                    angle=angle,
                    width=layer_width,
                    ramp=ramp,
                    blur=blur,
                    velocity=(speed * dx, speed * dy),
                    pad=(py, px),
                )
            )

    def layer_streaks(self) -> list[np.ndarray]:
        """Each layer's grey streak map (H×W float32, ≥ 0), far to near."""
        return [render_streaks(self.shape, layer, subpixel=self.subpixel) for layer in self.layers]

    def step(self, frames: float = 1.0) -> None:
        """Let the rain fall for ``frames`` frame intervals: every streak moves along its layer's direction."""
        h, w = self.shape
        for layer in self.layers:
            py, px = layer.pad
            vx, vy = layer.velocity
            y = layer.y + vy * frames
            wrapped = y >= h + py
            y = np.where(wrapped, np.mod(y + py, h + 2 * py) - py, y)
            x = np.mod(layer.x + vx * frames + px, w + 2 * px) - px
            n = int(wrapped.sum())
            if n:
                x[wrapped] = self.rng.uniform(-px, w + px, n)
            layer.x, layer.y = x, y


def atmospheric_light(clean: np.ndarray, params: RainParams, rng: np.random.Generator) -> np.ndarray:
    """The atmospheric light A (H×W×3): a bright grey leaning towards the colour of the scene's brightest part."""
    h, w = clean.shape[:2]
    level = uniform(rng, params.atmosphere)
    small = cv2.resize(clean, (32, 32), interpolation=cv2.INTER_AREA).reshape(-1, 3)
    grey = small.mean(axis=1)
    top = small[grey >= np.quantile(grey, 0.95)].mean(axis=0)
    sky = top / max(float(top.max()), 0.05) * level
    t = uniform(rng, params.sky_tint)
    color = ((1.0 - t) * level + t * sky).astype(np.float32)
    lo = (max(2, h // 16), max(2, w // 16))
    var = cv2.resize(smooth_noise(lo, rng, 2.0), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(color[None, None, :] * (1.0 + 0.03 * var[:, :, None]), 0.0, 1.0).astype(np.float32)


def veil_map(shape: tuple[int, int], params: RainParams, rng: np.random.Generator) -> np.ndarray:
    """α_veil (H×W): a smooth, slightly uneven haze, denser towards the top (farther away), or zeros."""
    h, w = shape
    if rng.uniform() >= params.veil_probability:
        return np.zeros(shape, np.float32)
    v = uniform(rng, params.veil)
    lo = (max(2, h // 16), max(2, w // 16))
    var = cv2.resize(smooth_noise(lo, rng, 2.0), (w, h), interpolation=cv2.INTER_LINEAR)
    ramp = np.linspace(1.0 + 0.3 * rng.uniform(), 1.0 - 0.3 * rng.uniform(), h, dtype=np.float32)[:, None]
    return np.clip(v * ramp * (1.0 + 0.25 * var), 0.0, 1.0).astype(np.float32)


def occlusion_map(nearest: np.ndarray, strength: float, threshold: float) -> np.ndarray:
    """α_occ: the opaque cores of the nearest layer's streaks, where their level exceeds ``threshold``."""
    if strength <= 0:
        return np.zeros_like(nearest)
    return (strength * np.clip((nearest - threshold) / max(1.0 - threshold, 1e-3), 0.0, 1.0)).astype(np.float32)


def compose_rain(y: np.ndarray, s: np.ndarray, alpha: np.ndarray, a: np.ndarray) -> np.ndarray:
    """J4R-Net eq. 2: O = (1 − α)(B + S) + αA, clipped to [0, 1] (s may be H×W or H×W×3)."""
    ss = s if s.ndim == 3 else s[:, :, None]
    al = alpha[:, :, None]
    out = np.add(y, ss, dtype=np.float32)
    out *= 1.0 - al
    out += al * a
    return np.clip(out, 0.0, 1.0, out=out)


def streak_colour(rng: np.random.Generator, tint: float) -> np.ndarray:
    """The streaks' RGB colour: grey, with a per-channel deviation of up to ``tint``."""
    return (1.0 + rng.uniform(-tint, tint, 3)).astype(np.float32)


def rain_layers(
    field: RainField, colour: np.ndarray, strength: float, threshold: float, veil: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Render a rain field into (s H×W×3 in [0, 1], α H×W) with the given occlusion settings and veil."""
    layers = field.layer_streaks()
    grey = np.sum(layers, axis=0) if layers else np.zeros(field.shape, np.float32)
    s = np.clip(grey[:, :, None] * colour, 0.0, 1.0).astype(np.float32)
    occ = occlusion_map(layers[-1], strength, threshold) if layers else np.zeros(field.shape, np.float32)
    alpha = (1.0 - (1.0 - occ) * (1.0 - veil)).astype(np.float32)
    return s, np.clip(alpha, 0.0, 1.0)


class RainScene(NamedTuple):
    """What is drawn once per rainy scene (a photo, or every frame of a clip): the streak field, the streaks'
    colour, the occlusion strength and threshold, the veil α_veil and the atmospheric light A."""

    field: RainField
    colour: np.ndarray
    strength: float
    threshold: float
    veil: np.ndarray
    a: np.ndarray

    def sample(self, y: np.ndarray) -> RainSample:
        """The field as it is now over the clean image ``y`` (H×W×3 float32): J4R-Net eq. 2."""
        s, alpha = rain_layers(self.field, self.colour, self.strength, self.threshold, self.veil)
        return RainSample(compose_rain(y, s, alpha, self.a), y, s, alpha, self.a)


def draw_rain_scene(
    y: np.ndarray, params: RainParams, rng: np.random.Generator, *, scale: float | None = None, subpixel: bool = False
) -> RainScene:
    """Draw a :class:`RainScene` over the clean image ``y`` (A leans towards the colour of its brightest part)."""
    shape = y.shape[:2]
    field = RainField(shape, params, rng, scale=scale, subpixel=subpixel)
    colour = streak_colour(rng, params.tint)
    strength = uniform(rng, params.occlusion)
    threshold = uniform(rng, params.occlusion_threshold)
    veil = veil_map(shape, params, rng)
    a = atmospheric_light(y, params, rng)
    return RainScene(field, colour, strength, threshold, veil, a)


def synthesize_rain(
    clean: np.ndarray,
    params: str | RainParams = "light",
    rng: RngLike = None,
    *,
    scale: float | None = None,
) -> RainSample:
    """A rainy version of ``clean`` (any image array) with its streak layer, α and A (J4R-Net eq. 2).

    ``params`` is a preset name ("light", "heavy") or a :class:`RainParams`; ``rng`` a numpy Generator or
    a seed (same seed → identical output); ``scale`` overrides the automatic size scaling.
    """
    gen = as_rng(rng)
    p = rain_params(params)
    y = to_float_rgb(clean)
    return draw_rain_scene(y, p, gen, scale=scale).sample(y)
