"""The presets made for real weather ("near" snow, "dense" rain) and the statistics that compare them with real ones."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from weatherstudio.synth import SNOW_PRESETS, SnowField, synthesize_rain, synthesize_snow
from weatherstudio.synth.rain import RAIN_PRESETS
from weatherstudio.synth.statistics import stat_row, summarize, weather_stats


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    small = g.uniform(0.1, 0.9, (h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def test_near_snow_has_large_faint_soft_flakes_and_haze() -> None:
    """The "near" preset's last layer: few big, soft, translucent discs; the other presets have no such layer."""
    params = replace(SNOW_PRESETS["near"], near_probability=1.0, haze_probability=1.0)
    field = SnowField((480, 640), params, np.random.default_rng(3))
    near = field.layers[-1]
    assert near.radius >= 5.0 and len(near.x) <= 200
    assert float(near.amp.max()) <= 0.55
    z_near = field.layer_masks()[-1]
    # a soft disc: its mask falls off gradually (many levels between 5 % and 95 % of its peak), no hard rim
    peak = float(z_near.max())
    assert 0.1 < peak <= 1.0
    ramp = np.mean((z_near > 0.05 * peak) & (z_near < 0.95 * peak)) / max(np.mean(z_near > 0.05 * peak), 1e-9)
    assert ramp > 0.5
    assert np.mean(z_near > 0.05 * peak) > 0.01  # and it covers a visible part of the view
    # the haze lifts z everywhere
    assert float(np.percentile(field.mask(), 1)) > 0.02
    for name in ("small", "medium", "large"):
        other = SnowField((480, 640), SNOW_PRESETS[name], np.random.default_rng(3))
        assert max(layer.radius for layer in other.layers) < 12.0


def test_near_snow_stays_on_the_image_model() -> None:
    y = _photo(240, 320, 1)
    s = synthesize_snow(y, "near", 4)
    zz = s.z[:, :, None]
    np.testing.assert_allclose(s.x, s.a * zz + y * (1 - zz), atol=1e-6)  # DesnowNet eq. 1


def test_dense_rain_is_fine_faint_and_veiled() -> None:
    """ "dense": thinner, fainter streaks than "heavy", more of them than "light", and a veil nearly always."""
    y = _photo(321, 481, 2)
    veiled = 0
    for seed in range(6):
        dense = synthesize_rain(y, "dense", seed)
        veiled += float(dense.alpha.mean()) > 0.05
    assert veiled >= 4
    p, h = RAIN_PRESETS["dense"], RAIN_PRESETS["heavy"]
    assert p.width[1] < h.width[0] and p.brightness[1] < h.brightness[0]
    assert p.n_layers[0] > RAIN_PRESETS["light"].n_layers[1]
    assert p.occlusion == (0.0, 0.0)  # fine drops do not occlude; the veil does


def test_statistics_see_haze_streaks_and_large_flakes() -> None:
    y = _photo(480, 640, 5)
    clear = weather_stats(y)
    hazy = weather_stats(0.6 * y + 0.4 * 0.9)
    assert hazy.dark > clear.dark + 0.1 and hazy.contrast < clear.contrast * 0.7
    streaks = np.zeros((480, 640), np.float32)
    streaks[:, ::9] = 0.5
    streaks = cv2.GaussianBlur(streaks, (0, 0), 0.6)
    rainy = weather_stats(np.clip(y + streaks[:, :, None], 0, 1))
    assert rainy.aniso > 0.5 > abs(clear.aniso)
    assert rainy.fine > 2 * clear.fine
    assert rainy.streaks > clear.streaks + 0.2
    edge = np.zeros_like(y)
    edge[:, 320:] = 1.0  # a sharp vertical edge is no streak
    assert weather_stats(edge).streaks < 0.01
    small = np.zeros((480, 640), np.float32)
    big = np.zeros((480, 640), np.float32)
    g = np.random.default_rng(0)
    for cx, cy in g.integers(20, 460, (60, 2)):
        cv2.circle(small, (int(cx), int(cy)), 1, 0.6, -1)
        cv2.circle(big, (int(cx), int(cy)), 9, 0.4, -1)
    big = cv2.GaussianBlur(big, (0, 0), 3.0)
    flat = np.full_like(y, 0.3)  # the share is of all bright structure: measure the flakes alone
    specks = stat_row(weather_stats(flat + small[:, :, None]))
    flakes = stat_row(weather_stats(flat + big[:, :, None]))
    assert flakes["large_blobs"] > specks["large_blobs"] + 0.2
    table = summarize([specks, flakes, stat_row(clear)])
    lo, mid, hi = table["large_blobs"]
    assert lo <= mid <= hi
