"""Snow synthesis with DesnowNet's image model (Liu et al., "DesnowNet", TIP 2018, eq. 1).

    x = a ⊙ z + y ⊙ (1 − z)

y is the clean photo, z ∈ [0, 1] the snow (translucency) mask, a the chromatic aberration map (the colour
the snow takes: near white, slightly tinted by the scene's light and slightly different per channel), x the
snowy photo. z is built from several layers of flakes at different depths: far layers are many tiny, sharp
specks; near layers are few, large flakes blurred by defocus; every layer is smeared along one wind
direction by motion blur (its length grows with nearness). Each flake has its own opacity (translucency),
shape (an irregular blob) and size; layers combine as independent occluders, z = 1 − Π(1 − z_l).
Optionally, nearest of all, a few *near-camera flakes*: large (5–25 px radius), faint, soft discs, a flake a
hand's breadth from the lens and far out of focus, and a *snow haze* veil (the countless far flakes merged
into a bright, uneven fog; part of z, lit by a).

Presets follow Snow100K's subsets (S, M, L: particle size and density grow): ``"small"``, ``"medium"``,
``"large"``; ``"near"`` adds what real snow photos show and those leave out: near-camera flakes and snow
haze over medium-to-large snow. Every scalar is drawn per image from the preset's range, so a preset is a
distribution.
Sizes are given for a 480 px short side (Snow100K's photos are about 640×480) and scale with the image.
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
    blob_kernel,
    convolve_kernels,
    direction,
    gaussian_kernel,
    image_scale,
    log_uniform,
    motion_kernel,
    preset_params,
    randint,
    render_points,
    smooth_noise,
    to_float_rgb,
    trim_kernel,
    uniform,
)

SNOW_REFERENCE_SHORT_SIDE = 480.0
_MAX_FLAKES_PER_LAYER = 400_000


@dataclass(frozen=True)
class SnowParams:
    """Ranges from which one snowy scene is drawn (sizes in px at a 480 px short side)."""

    coverage: Range = (0.04, 0.10)  # target mean of z over the flake layers (before overlaps)
    n_layers: tuple[int, int] = (4, 6)  # depth layers, far to near
    radius_far: Range = (0.5, 0.9)  # flake radius of the farthest layer (log-uniform)
    radius_near: Range = (2.0, 5.0)  # flake radius of the nearest layer (log-uniform)
    size_bias: Range = (0.0, 1.0)  # γ: layer i gets coverage ∝ r_i^γ (count ∝ r_i^(γ−2): few big flakes)
    opacity: Range = (0.45, 1.0)  # per-flake peak opacity
    irregularity: Range = (0.3, 0.8)  # flake shape: 0 round, 1 lumpy
    defocus: Range = (0.2, 0.9)  # Gaussian σ of the nearest layer as a fraction of its radius
    motion: Range = (0.0, 2.5)  # motion-blur length as a multiple of the flake diameter
    wind_angle: Range = (-55.0, 55.0)  # fall direction, degrees from vertical
    layer_angle_jitter: float = 8.0  # per-layer deviation from the wind direction, degrees
    brightness: Range = (0.85, 1.0)  # of the aberration map a
    tint: Range = (0.0, 0.3)  # how much a takes the scene's colour
    chroma: Range = (0.0, 0.03)  # per-channel smooth variation of a
    haze: Range = (0.0, 0.0)  # a faint uniform snow veil added to z
    haze_probability: float = 0.0
    haze_unevenness: float = 0.3  # relative spread of the veil over the picture (smooth, a few bumps across)
    near_probability: float = 0.0  # how often a scene has near-camera flakes
    near_count: Range = (8.0, 80.0)  # near-camera flakes in a 480×640 view (log-uniform)
    near_radius: Range = (5.0, 25.0)  # their radius, px at a 480 px short side (log-uniform)
    near_opacity: Range = (0.15, 0.55)  # their peak opacity: out of focus, they only veil what is behind
    near_softness: Range = (0.2, 0.6)  # the Gaussian σ of their defocus as a fraction of the radius
    scale_jitter: Range = (0.8, 1.25)  # random zoom of all sizes
    fall_speed: Range = (1.5, 4.0)  # video: displacement per frame in flake radii (near layers move faster)
    sway: Range = (0.0, 1.5)  # video: sideways wobble amplitude in flake radii


SNOW_PRESETS: dict[str, SnowParams] = {
    "small": SnowParams(
        coverage=(0.015, 0.045),
        n_layers=(3, 5),
        radius_far=(0.45, 0.7),
        radius_near=(1.3, 2.6),
        size_bias=(-0.5, 0.5),
        motion=(0.0, 2.0),
    ),
    "medium": SnowParams(
        coverage=(0.05, 0.10),
        n_layers=(4, 6),
        radius_far=(0.5, 0.8),
        radius_near=(2.5, 5.0),
        size_bias=(0.0, 1.0),
    ),
    "large": SnowParams(
        coverage=(0.11, 0.22),
        n_layers=(5, 7),
        radius_far=(0.55, 0.9),
        radius_near=(5.0, 11.0),
        size_bias=(0.5, 1.3),
        haze=(0.02, 0.08),
        haze_probability=0.4,
    ),
    "near": SnowParams(
        coverage=(0.04, 0.16),
        n_layers=(4, 7),
        radius_far=(0.5, 0.9),
        radius_near=(2.5, 9.0),
        size_bias=(0.0, 1.2),
        defocus=(0.4, 1.2),
        haze=(0.04, 0.25),
        haze_probability=0.75,
        haze_unevenness=0.6,
        near_probability=0.85,
    ),
}


class SnowSample(NamedTuple):
    """One synthetic pair: ``x`` snowy (H×W×3), ``y`` clean (H×W×3), ``z`` snow mask (H×W), ``a`` aberration (H×W×3).

    All float32 in [0, 1]; ``x == a * z[..., None] + y * (1 - z[..., None])`` (DesnowNet eq. 1).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    a: np.ndarray


def snow_params(preset: str | SnowParams, **overrides: object) -> SnowParams:
    """The :class:`SnowParams` of a preset name ("small", "medium", "large"), or ``preset`` itself, with
    ``overrides`` applied."""
    return preset_params("snow", SNOW_PRESETS, SnowParams, preset, overrides)


@dataclass
class _FlakeLayer:
    """One depth layer of flakes: positions (px), peak opacities, sprite variants and its motion."""

    x: np.ndarray
    y: np.ndarray
    amp: np.ndarray
    variant: np.ndarray
    kernels: list[np.ndarray]
    downscale: int
    radius: float
    velocity: tuple[float, float]
    sway_amp: float
    sway_phase: np.ndarray
    sway_freq: np.ndarray


class SnowField:
    """A snowfall over an H×W view: flake layers that can be rendered (``mask``) and advanced (``step``).

    The flakes live on a torus slightly larger than the view (by half a sprite on each side), so a flake
    leaving at the bottom comes back at the top without popping into view.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        params: SnowParams,
        rng: np.random.Generator,
        *,
        scale: float | None = None,
        subpixel: bool = False,
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.params = params
        self.subpixel = subpixel
        self.time = 0.0
        h, w = self.shape
        sc = image_scale(self.shape, SNOW_REFERENCE_SHORT_SIDE, scale) * uniform(rng, params.scale_jitter)
        n_layers = randint(rng, params.n_layers)
        depths = np.linspace(0.0, 1.0, n_layers) if n_layers > 1 else np.array([0.5])
        if n_layers > 1:
            depths = np.clip(depths + rng.uniform(-0.3, 0.3, n_layers) / (n_layers - 1), 0.0, 1.0)
        r_far = log_uniform(rng, params.radius_far) * sc
        r_near = max(log_uniform(rng, params.radius_near) * sc, r_far)
        radii = r_far * (r_near / r_far) ** depths
        coverage = uniform(rng, params.coverage)
        gamma = uniform(rng, params.size_bias)
        shares = radii**gamma
        shares = shares / shares.sum()
        self.wind = uniform(rng, params.wind_angle)
        m_lo, m_hi = params.motion
        motion = m_lo + (m_hi - m_lo) * float(rng.uniform()) ** 2  # most scenes lightly smeared, a few blizzards
        defocus_near = uniform(rng, params.defocus)
        irregular = uniform(rng, params.irregularity)
        fall = uniform(rng, params.fall_speed)
        sway = uniform(rng, params.sway)
        o_lo, o_hi = params.opacity
        self.layers: list[_FlakeLayer] = []
        for depth, radius, share in zip(depths, radii, shares, strict=True):
            angle = self.wind + float(rng.uniform(-1, 1)) * params.layer_angle_jitter
            sigma = max(0.3, radius * defocus_near * float(depth) ** 2)
            blur = gaussian_kernel(sigma)
            streak = motion_kernel(motion * 2.0 * radius * float(rng.uniform(0.7, 1.3)), angle)
            n_variants = 3 if radius >= 1.5 else 1
            kernels = [
                trim_kernel(
                    convolve_kernels(blob_kernel(radius * float(rng.uniform(0.8, 1.25)), rng, irregular), blur, streak)
                )
                for _ in range(n_variants)
            ]
            ksum = float(np.mean([k.sum() for k in kernels]))
            kh = max(k.shape[0] for k in kernels)
            kw = max(k.shape[1] for k in kernels)
            dom_h, dom_w = h + kh, w + kw
            mean_opacity = 0.5 * (o_lo + o_hi)
            count = int(round(share * coverage * dom_h * dom_w / max(mean_opacity * ksum, 1e-6)))
            count = min(count, _MAX_FLAKES_PER_LAYER)
            dx, dy = direction(angle)
            speed = fall * radius * float(rng.uniform(0.8, 1.2))
            self.layers.append(
                _FlakeLayer(
                    x=rng.uniform(-kw / 2, w + kw / 2, count),
                    y=rng.uniform(-kh / 2, h + kh / 2, count),
                    amp=rng.uniform(o_lo, o_hi, count).astype(np.float32),
                    variant=rng.integers(0, n_variants, count),
                    kernels=kernels,
                    downscale=int(min(8, max(1, sigma // 2.0))),
                    radius=float(radius),
                    velocity=(speed * dx, speed * dy),
                    sway_amp=sway * float(radius),
                    sway_phase=rng.uniform(0, 2 * math.pi, count),
                    sway_freq=rng.uniform(0.15, 0.5, count),
                )
            )
        self.haze = uniform(rng, params.haze) if rng.uniform() < params.haze_probability else 0.0
        self._haze_field = None
        if self.haze > 0:
            spread = np.maximum(1.0 + params.haze_unevenness * smooth_noise(self.shape, rng, 2.0), 0.25)
            self._haze_field = np.clip(self.haze * spread, 0.0, 1.0)  # thinner here and there, never a hole
        # drawn last, and only by presets that have them, so the other presets' scenes stay as they were
        if params.near_probability > 0 and rng.uniform() < params.near_probability:
            self.layers.append(self._near_layer(params, rng, sc, fall))

    def _near_layer(self, params: SnowParams, rng: np.random.Generator, sc: float, fall: float) -> _FlakeLayer:
        """A few near-camera flakes: large, faint, soft discs (a disc blurred by a Gaussian of σ = softness × r)."""
        h, w = self.shape
        radius = log_uniform(rng, params.near_radius) * sc
        soft = uniform(rng, params.near_softness)
        kernels = []
        for _ in range(3):
            r = radius * float(rng.uniform(0.7, 1.4))
            disc = blob_kernel(r, rng, 0.15)
            kernels.append(trim_kernel(convolve_kernels(disc, gaussian_kernel(max(0.5, soft * r)))))
        kh = max(k.shape[0] for k in kernels)
        kw = max(k.shape[1] for k in kernels)
        count = int(round(log_uniform(rng, params.near_count) * h * w / (sc * sc * 480.0 * 640.0)))
        count = max(1, min(count, 2000))  # at least one in a view that has them: a small crop gets one
        angle = self.wind + float(rng.uniform(-1, 1)) * params.layer_angle_jitter
        dx, dy = direction(angle)
        speed = fall * radius * 0.5 * float(rng.uniform(0.8, 1.2))
        return _FlakeLayer(
            x=rng.uniform(-kw / 2, w + kw / 2, count),
            y=rng.uniform(-kh / 2, h + kh / 2, count),
            amp=rng.uniform(*params.near_opacity, count).astype(np.float32),
            variant=rng.integers(0, len(kernels), count),
            kernels=kernels,
            downscale=int(min(8, max(1, soft * radius // 3.0))),
            radius=float(radius),
            velocity=(speed * dx, speed * dy),
            sway_amp=0.3 * float(radius) * uniform(rng, params.sway),
            sway_phase=rng.uniform(0, 2 * math.pi, count),
            sway_freq=rng.uniform(0.1, 0.3, count),
        )

    def layer_masks(self) -> list[np.ndarray]:
        """Each layer's translucency map (H×W, clipped to [0, 1]), far to near."""
        out = []
        for layer in self.layers:
            x = layer.x
            if layer.sway_amp > 0 and self.time > 0:
                x = x + layer.sway_amp * np.sin(layer.sway_freq * self.time + layer.sway_phase)
            z = np.zeros(self.shape, np.float32)
            for v, kernel in enumerate(layer.kernels):
                sel = layer.variant == v
                if np.any(sel):
                    z += render_points(
                        self.shape,
                        x[sel],
                        layer.y[sel],
                        layer.amp[sel],
                        kernel,
                        subpixel=self.subpixel,
                        downscale=layer.downscale,
                    )
            out.append(np.clip(z, 0.0, 1.0))
        return out

    def mask(self) -> np.ndarray:
        """The snow mask z = 1 − Π(1 − z_l) (with the haze veil, if any) as float32 H×W in [0, 1]."""
        keep = np.ones(self.shape, np.float32)
        for z in self.layer_masks():
            keep *= 1.0 - z
        if self._haze_field is not None:
            keep *= 1.0 - self._haze_field
        return np.clip(1.0 - keep, 0.0, 1.0)

    def step(self, frames: float = 1.0) -> None:
        """Advance the fall by ``frames`` frame intervals (flakes wrap around the padded view)."""
        h, w = self.shape
        self.time += frames
        for layer in self.layers:
            kh = max(k.shape[0] for k in layer.kernels)
            kw = max(k.shape[1] for k in layer.kernels)
            vx, vy = layer.velocity
            layer.x = np.mod(layer.x + vx * frames + kw / 2, w + kw) - kw / 2
            layer.y = np.mod(layer.y + vy * frames + kh / 2, h + kh) - kh / 2


def aberration_map(clean: np.ndarray, params: SnowParams, rng: np.random.Generator) -> np.ndarray:
    """DesnowNet's chromatic aberration map a (H×W×3): snow's colour, near white.

    Brightness b, a tint towards the scene's low-frequency colour (snow lit by the scene), a small global
    white-balance cast and smooth per-channel variations.
    """
    h, w = clean.shape[:2]
    b = uniform(rng, params.brightness)
    t = uniform(rng, params.tint)
    small = cv2.resize(clean, (8, 8), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    hue = small / np.maximum(small.max(axis=2, keepdims=True), 0.05)
    hue = cv2.resize(np.clip(hue, 0.0, 1.0), (w, h), interpolation=cv2.INTER_LINEAR)
    cast = 1.0 + rng.uniform(-0.03, 0.03, 3).astype(np.float32)
    a = b * ((1.0 - t) + t * hue) * cast
    chroma = uniform(rng, params.chroma)
    if chroma > 0:
        lo = (max(2, h // 16), max(2, w // 16))
        fringe = np.stack([smooth_noise(lo, rng, 3.0) for _ in range(3)], axis=2) * chroma
        a = a + cv2.resize(fringe, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(a, 0.0, 1.0).astype(np.float32)


def compose_snow(y: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """DesnowNet eq. 1: x = a ⊙ z + y ⊙ (1 − z) (float32; stays in [0, 1] when y, z, a do)."""
    zz = z[:, :, None]
    return (a * zz + y * (1.0 - zz)).astype(np.float32)


def synthesize_snow(
    clean: np.ndarray,
    params: str | SnowParams = "medium",
    rng: RngLike = None,
    *,
    scale: float | None = None,
) -> SnowSample:
    """A snowy version of ``clean`` (any image array) with its mask and aberration map (DesnowNet eq. 1).

    ``params`` is a preset name ("small", "medium", "large") or a :class:`SnowParams`; ``rng`` a numpy
    Generator or a seed (same seed → identical output); ``scale`` overrides the automatic size scaling.
    """
    gen = as_rng(rng)
    p = snow_params(params)
    y = to_float_rgb(clean)
    field = SnowField(y.shape[:2], p, gen, scale=scale)
    z = field.mask()
    a = aberration_map(y, p, gen)
    return SnowSample(compose_snow(y, z, a), y, z, a)
