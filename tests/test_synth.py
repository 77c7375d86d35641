"""Weather synthesis: the physical models' identities, preset ordering, geometry, motion, seeds and the writer."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from weatherstudio.synth import (
    RAIN_PRESETS,
    SNOW_PRESETS,
    STATIC_CAMERA,
    CameraMotion,
    RainField,
    camera_path,
    synthesize_folder,
    synthesize_rain,
    synthesize_rain_video,
    synthesize_snow,
    synthesize_snow_video,
    to_float_rgb,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
RAIN_TRAIN = SHARED / "data" / "train" / "RainTrainL"


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour image (a stand-in photo), float32 in [0, 1]."""
    g = np.random.default_rng(seed)
    small = g.uniform(0.1, 0.9, (h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _best_shift(a: np.ndarray, b: np.ndarray, max_shift: int = 40) -> tuple[tuple[int, int], float]:
    """The (dx, dy) with b[y, x] ≈ a[y − dy, x − dx] that maximises the correlation on the overlap, and its value."""
    h, w = a.shape
    m = max_shift
    ref = b[m : h - m, m : w - m].ravel()
    best, where = -2.0, (0, 0)
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            cand = a[m - dy : h - m - dy, m - dx : w - m - dx].ravel()
            c = float(np.corrcoef(cand, ref)[0, 1])
            if c > best:
                best, where = c, (dx, dy)
    return where, best


@pytest.mark.parametrize("preset", sorted(SNOW_PRESETS))
def test_snow_identity_shapes_ranges(preset: str) -> None:
    y = _photo(72, 96)
    s = synthesize_snow(y, preset, 7)
    assert s.x.shape == s.y.shape == s.a.shape == (72, 96, 3)
    assert s.z.shape == (72, 96)
    for arr in s:
        assert arr.dtype == np.float32
        assert float(arr.min()) >= 0.0
        assert float(arr.max()) <= 1.0
    np.testing.assert_array_equal(s.y, y)
    zz = s.z[:, :, None]
    np.testing.assert_allclose(s.x, s.a * zz + s.y * (1 - zz), atol=1e-6)  # DesnowNet eq. 1
    assert float(s.z.max()) > 0.3, "some flake must be nearly opaque"
    if preset != "near":  # its haze and one near-camera flake may cover all of so small a crop (see below)
        assert 0.0 < float((s.z > 0.01).mean()) < 0.9
    # the aberration map is near white but not exactly grey
    assert float(s.a.min()) > 0.6
    assert float(s.a.mean()) > 0.8
    assert float(np.abs(s.a - s.a.mean(axis=2, keepdims=True)).max()) > 1e-3


@pytest.mark.parametrize("preset", sorted(RAIN_PRESETS))
def test_rain_identity_shapes_ranges(preset: str) -> None:
    y = _photo(80, 64, 1)
    r = synthesize_rain(y, preset, 3)
    assert r.x.shape == r.y.shape == r.s.shape == r.a.shape == (80, 64, 3)
    assert r.alpha.shape == (80, 64)
    for arr in r:
        assert arr.dtype == np.float32
        assert float(arr.min()) >= 0.0
        assert float(arr.max()) <= 1.0
    al = r.alpha[:, :, None]
    np.testing.assert_allclose(r.x, np.clip((1 - al) * (r.y + r.s) + al * r.a, 0, 1), atol=1e-6)  # J4R eq. 2
    assert float(r.s.max()) > 0.1
    if preset == "light":
        assert float(r.alpha.max()) == 0.0  # Rain100L-like rain is purely additive
        np.testing.assert_allclose(r.x, np.clip(r.y + r.s, 0, 1), atol=1e-6)
    else:
        assert float(r.alpha.max()) > 0.0


def test_presets_order_by_density() -> None:
    y = _photo(128, 128, 2)
    seeds = range(5)
    z = {p: np.mean([synthesize_snow(y, p, s).z.mean() for s in seeds]) for p in ("small", "medium", "large")}
    assert z["small"] < z["medium"] < z["large"], z
    s = {p: np.mean([synthesize_rain(y, p, k).s.mean() for k in seeds]) for p in ("light", "heavy")}
    assert s["light"] * 2 < s["heavy"], s
    alpha = {p: np.mean([synthesize_rain(y, p, k).alpha.mean() for k in seeds]) for p in ("light", "heavy")}
    assert alpha["light"] == 0.0 < alpha["heavy"]


def test_same_seed_same_output_bit_for_bit() -> None:
    y = _photo(64, 64, 3)
    a, b = synthesize_snow(y, "large", 11), synthesize_snow(y, "large", np.random.default_rng(11))
    for u, v in zip(a, b, strict=True):
        assert np.array_equal(u, v)
    c = synthesize_snow(y, "large", 12)
    assert not np.array_equal(a.z, c.z)
    r1, r2 = synthesize_rain(y, "heavy", 5), synthesize_rain(y, "heavy", 5)
    for u, v in zip(r1, r2, strict=True):
        assert np.array_equal(u, v)
    v1 = synthesize_rain_video(y, 3, "light", 9, size=(48, 48))
    v2 = synthesize_rain_video(y, 3, "light", 9, size=(48, 48))
    for f1, f2 in zip(v1, v2, strict=True):
        for u, v in zip(f1, f2, strict=True):
            assert np.array_equal(u, v)


def test_flake_size_follows_image_size() -> None:
    """A 960 px and a 480 px version of a scene get the same number of flakes, not 4× as many."""
    counts = {}
    for side in (480, 960):
        y = _photo(side, side, 4)
        n = []
        for seed in range(3):
            z = synthesize_snow(y, "medium", seed).z
            n.append(cv2.connectedComponents((z > 0.25).astype(np.uint8))[0])
        counts[side] = float(np.mean(n))
    assert 0.5 < counts[960] / counts[480] < 2.0, counts
    # and an explicit scale makes flakes bigger: fewer, larger blobs at the same coverage
    y = _photo(256, 256, 4)
    small = synthesize_snow(y, "medium", 1, scale=1.0).z
    big = synthesize_snow(y, "medium", 1, scale=3.0).z
    n_small = cv2.connectedComponents((small > 0.25).astype(np.uint8))[0]
    n_big = cv2.connectedComponents((big > 0.25).astype(np.uint8))[0]
    assert n_big * 2 < n_small


@pytest.mark.parametrize("angle", [-25.0, 0.0, 30.0])
def test_streaks_follow_the_wind_angle(angle: float) -> None:
    """Streaks lean right at the bottom for a positive angle: the streak layer's orientation matches."""
    params = replace(RAIN_PRESETS["light"], angle=(angle, angle), angle_spread=0.0, n_layers=(1, 1))
    s = synthesize_rain(np.zeros((160, 160, 3), np.float32), params, 2).s.mean(axis=2)
    gx = cv2.Sobel(s, cv2.CV_64F, 1, 0)
    gy = cv2.Sobel(s, cv2.CV_64F, 0, 1)
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    # dominant gradient orientation is perpendicular to the streaks
    grad = 0.5 * math.atan2(2 * jxy, jxx - jyy)
    sx, sy = -math.sin(grad), math.cos(grad)  # streak direction (unit), y down
    if sy < 0:
        sx, sy = -sx, -sy
    measured = math.degrees(math.atan2(sx, sy))
    assert abs(measured - angle) < 4.0, (measured, angle)


def test_rain_field_moves_streaks_by_their_velocity() -> None:
    field = RainField((96, 96), RAIN_PRESETS["heavy"], np.random.default_rng(0), subpixel=True)
    before = [(layer.x.copy(), layer.y.copy()) for layer in field.layers]
    field.step()
    for (x0, y0), layer in zip(before, field.layers, strict=True):
        vx, vy = layer.velocity
        assert vy > 0  # rain falls
        stay = layer.y > y0  # streaks that did not wrap to the top
        assert stay.mean() > 0.3
        np.testing.assert_allclose(layer.y[stay] - y0[stay], vy, atol=1e-9)
        dx = np.mod(layer.x[stay] - x0[stay] - vx + 50, layer.pad[1] * 2 + 96) - 50
        np.testing.assert_allclose(dx, 0.0, atol=1e-9)


def test_rain_video_streaks_move_coherently() -> None:
    """With a still camera, each frame's streak layer is the previous one moved by one constant offset."""
    params = replace(RAIN_PRESETS["light"], n_layers=(1, 1), fall_speed=(0.5, 0.5), angle=(15.0, 15.0))
    frames = synthesize_rain_video(_photo(160, 160, 5), 4, params, 21, size=(128, 128), camera=STATIC_CAMERA)
    for f in frames[1:]:
        np.testing.assert_array_equal(f.y, frames[0].y)  # still camera
    layers = [f.s.mean(axis=2) for f in frames]
    found = [_best_shift(a, b, 24) for a, b in zip(layers, layers[1:], strict=False)]
    shifts = [f[0] for f in found]
    assert all(dy > 3 for _, dy in shifts), shifts  # falling
    assert all(dx > 0 for dx, _ in shifts), shifts  # leaning right at +15°
    assert max(abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(shifts, shifts[1:], strict=False)) <= 1, shifts
    # moved by that offset, a frame's streaks match the next frame's (up to respawns and sub-pixel rounding)
    unmoved = float(np.corrcoef(layers[0].ravel(), layers[1].ravel())[0, 1])
    assert min(c for _, c in found) > max(0.75, unmoved + 0.3), (found, unmoved)


def test_camera_path_never_shows_a_border() -> None:
    for seed in range(25):
        g = np.random.default_rng(seed)
        src = (int(g.integers(130, 400)), int(g.integers(130, 400)))
        out = (int(g.integers(32, 128)), int(g.integers(32, 128)))
        motion = CameraMotion(pan=(0.0, 1.0), roll=(-10.0, 10.0), shake=(0.0, 4.0))
        mats = camera_path(src, out, 9, g, motion)
        corners = np.array([[0, 0, 1], [out[1] - 1, 0, 1], [0, out[0] - 1, 1], [out[1] - 1, out[0] - 1, 1]], float).T
        for m in mats:
            p = m @ corners
            assert p[0].min() >= -1e-6
            assert p[0].max() <= src[1] - 1 + 1e-6
            assert p[1].min() >= -1e-6
            assert p[1].max() <= src[0] - 1 + 1e-6


def test_videos_move_and_keep_the_models() -> None:
    photo = _photo(200, 240, 6)
    camera = CameraMotion(pan=(0.2, 0.3))
    rain = synthesize_rain_video(photo, 5, "heavy", 1, size=(64, 80), camera=camera)
    snow = synthesize_snow_video(photo, 5, "medium", 1, size=(64, 80), camera=camera)
    for clip in (rain, snow):
        assert len(clip) == 5
        assert all(f.x.shape == (64, 80, 3) for f in clip)
        assert float(np.abs(clip[0].y - clip[-1].y).mean()) > 0.005  # the camera moved
        assert float(np.abs(clip[0].x - clip[1].x).mean()) > 0.001
    for f in rain:
        al = f.alpha[:, :, None]
        np.testing.assert_allclose(f.x, np.clip((1 - al) * (f.y + f.s) + al * f.a, 0, 1), atol=1e-6)
    for f in snow:
        zz = f.z[:, :, None]
        np.testing.assert_allclose(f.x, f.a * zz + f.y * (1 - zz), atol=1e-6)
    assert not np.array_equal(snow[0].z, snow[1].z)  # flakes drift
    full = synthesize_rain_video(photo, 2, "light", 2, size=None)
    assert full[0].x.shape == photo.shape


def test_to_float_rgb_conversions() -> None:
    grey8 = np.full((4, 5), 255, np.uint8)
    rgba16 = np.full((4, 5, 4), 65535, np.uint16)
    assert to_float_rgb(grey8).shape == (4, 5, 3)
    assert float(to_float_rgb(grey8).min()) == 1.0
    assert to_float_rgb(rgba16).shape == (4, 5, 3)
    assert to_float_rgb(rgba16).dtype == np.float32
    with pytest.raises(ValueError, match=r"expected an H×W, H×W×1, H×W×3 or H×W×4 image, got shape \(4, 5, 2\)"):
        to_float_rgb(np.zeros((4, 5, 2), np.float32))


def _make_clean_dir(folder: Path) -> None:
    folder.mkdir()
    for i, (h, w) in enumerate([(48, 64), (64, 40), (50, 50)]):
        img = (_photo(h, w, 10 + i) * 255).astype(np.uint8)[:, :, ::-1]
        cv2.imwrite(str(folder / (f"img{i}.png" if i != 1 else f"img{i}.jpg")), img)
    (folder / "notes.txt").write_text("not an image")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_synthesize_folder_snow_and_rain(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    _make_clean_dir(clean)
    before = _snapshot(clean)
    calls: list[tuple[int, int]] = []
    out = tmp_path / "snow"
    summary = synthesize_folder("snow", "medium", clean, out, seed=3, progress=lambda d, t: calls.append((d, t)))
    assert summary["count"] == 3
    assert calls[0] == (0, 3)
    assert calls[-1] == (3, 3)
    for sub in ("input", "target", "mask", "aberration"):
        assert sorted(p.name for p in (out / sub).iterdir()) == ["img0.png", "img1.png", "img2.png"]
    mask = cv2.imread(str(out / "mask" / "img1.png"), cv2.IMREAD_UNCHANGED)
    x = cv2.imread(str(out / "input" / "img1.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint16
    assert mask.shape == (64, 40)
    assert x.dtype == np.uint8
    assert x.shape == (64, 40, 3)
    # the written files still satisfy eq. 1 up to 8-bit rounding
    y = cv2.imread(str(out / "target" / "img1.png")).astype(np.float32) / 255
    a = cv2.imread(str(out / "aberration" / "img1.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
    z = mask.astype(np.float32)[:, :, None] / 65535
    assert float(np.abs(x.astype(np.float32) / 255 - (a * z + y * (1 - z))).max()) < 1.5 / 255
    assert (out / "synth.json").is_file()
    # reproducible, and per-file seeds do not depend on limit
    again = tmp_path / "snow2"
    synthesize_folder("snow", "medium", clean, again, seed=3, limit=2)
    assert sorted(p.name for p in (again / "mask").iterdir()) == ["img0.png", "img1.png"]
    assert (again / "mask" / "img1.png").read_bytes() == (out / "mask" / "img1.png").read_bytes()

    rain = tmp_path / "rain"
    summary = synthesize_folder("rain", "heavy", clean, rain, seed=0, limit=1)
    assert summary["count"] == 1
    assert {p.name for p in rain.iterdir()} == {"input", "target", "mask", "streak", "atmosphere", "synth.json"}
    assert cv2.imread(str(rain / "streak" / "img0.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert _snapshot(clean) == before  # the clean folder is never touched


def test_synthesize_folder_video_and_safety(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    _make_clean_dir(clean)
    out = tmp_path / "clips"
    summary = synthesize_folder("rain-video", "light", clean, out, n_frames=3, frame_size=(32, 32), limit=2)
    assert summary["count"] == 2
    for stem in ("img0", "img1"):
        for sub in ("input", "target", "mask", "streak"):
            names = sorted(p.name for p in (out / stem / sub).iterdir())
            assert names == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]
    assert cv2.imread(str(out / "img0" / "input" / "frame_0002.png")).shape == (32, 32, 3)
    with pytest.raises(ValueError, match="clean is the clean folder; refusing to write into it"):
        synthesize_folder("snow", "small", clean, clean)
    with pytest.raises(ValueError, match=r"unknown preset 'small' for rain; choose from \['dense', 'heavy', 'light'\]"):
        synthesize_folder("rain", "small", clean, out)  # not a rain preset
    with pytest.raises(ValueError, match="unknown kind 'hail'; choose from"):
        synthesize_folder("hail", "light", clean, out)
    # a layout whose target/ folder *is* the clean folder is refused before anything is written
    nested = tmp_path / "pairs"
    (nested / "target").mkdir(parents=True)
    cv2.imwrite(str(nested / "target" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    before = _snapshot(nested / "target")
    with pytest.raises(ValueError, match="target is the clean folder; refusing to write into it"):
        synthesize_folder("rain", "light", nested / "target", nested)
    assert _snapshot(nested / "target") == before


@pytest.mark.shared
@pytest.mark.skipif(not RAIN_TRAIN.is_dir(), reason="needs ../shared/data/train/RainTrainL beside this checkout")
def test_light_rain_matches_rain100l_statistics() -> None:
    """The light preset's streak layer has RainTrainL's (rainy − clean) mean and peak levels."""
    names = sorted(p.name for p in (RAIN_TRAIN / "clean").glob("*.png"))[:10]
    real_means, synth_means, real_p99, synth_p99 = [], [], [], []
    for i, name in enumerate(names):
        clean = cv2.imread(str(RAIN_TRAIN / "clean" / name))[:, :, ::-1].astype(np.float32) / 255
        rainy = cv2.imread(str(RAIN_TRAIN / "rainy" / name))[:, :, ::-1].astype(np.float32) / 255
        real = (rainy - clean).mean(axis=2)
        r = synthesize_rain(clean, "light", i)
        fake = (r.x - r.y).mean(axis=2)
        real_means.append(real.mean())
        synth_means.append(fake.mean())
        real_p99.append(np.percentile(real, 99))
        synth_p99.append(np.percentile(fake, 99))
    assert 0.4 < np.mean(synth_means) / np.mean(real_means) < 2.0, (np.mean(synth_means), np.mean(real_means))
    assert 0.5 < np.mean(synth_p99) / np.mean(real_p99) < 2.0, (np.mean(synth_p99), np.mean(real_p99))
