"""Display conversions done in the worker: exact, contiguous, and the 16-bit map encoding round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from weatherstudio.core import map_codec
from weatherstudio.gui import image_convert as ic
from weatherstudio.models.base import MapKind, MapSpec

RES = MapSpec("residual", MapKind.RESIDUAL, (-1.0, 1.0), 3, "signed")
MASK = MapSpec("mask", MapKind.MASK, (0.0, 1.0), 1, "mask", scale=0.25)


def test_to_u8_rounds_and_saturates() -> None:
    x = np.array([[[0.0, 0.5, 1.0], [1.2, -0.1, 0.002]]], np.float32)
    u = ic.to_u8(x)
    assert u.dtype == np.uint8
    assert u.flags.c_contiguous
    assert u.tolist() == [[[0, 128, 255], [255, 0, 1]]]


def test_u16_encoding_round_trips_within_one_step() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (7, 9, 3)).astype(np.float32)
    enc = map_codec.encode_u16(a, RES.value_range)
    assert enc.dtype == np.uint16
    assert enc.min() >= 0
    np.testing.assert_allclose(map_codec.decode_u16(enc, RES.value_range), a, atol=2 / 65535)
    assert map_codec.encode_u16(np.array([0.0]), (-1.0, 1.0))[0] in (32767, 32768)  # 0 at mid-scale
    assert map_codec.encode_u16(np.array([5.0, -5.0]), (-1.0, 1.0)).tolist() == [65535, 0]  # clipped


def test_map_view_levels_and_channels() -> None:
    rng = np.random.default_rng(1)
    r = (rng.standard_normal((20, 30, 3)) * 0.05).astype(np.float32)
    v = ic.map_view(r, RES, "all", stretch=True)
    assert v.rgb
    assert v.image.shape == (20, 30, 3)
    assert v.levels[0] == -v.levels[1]
    assert 0.05 < v.levels[1] < 0.5
    g = ic.map_view(r, RES, "G", stretch=False)
    assert not g.rgb
    assert g.levels == (-1.0, 1.0)
    assert g.colormap == "CET-D1"
    np.testing.assert_array_equal(g.image, r[..., 1])
    m = ic.map_view(rng.random((5, 6, 1)).astype(np.float32), MASK)
    assert m.image.shape == (5, 6)
    assert m.colormap == "inferno"


def test_thumbnail_enlarges_small_maps_and_colours_them() -> None:
    t = ic.thumbnail(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4, 1), MASK, box=40)
    assert t.shape == (30, 40, 3)
    assert t.dtype == np.uint8
    assert not np.array_equal(t[..., 0], t[..., 2])  # a colour map, not grey


@pytest.mark.parametrize("shape", [(4, 5, 3), (4, 5)])
def test_diff_map(shape) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.random(shape, dtype=np.float32), rng.random(shape, dtype=np.float32)
    d = ic.diff_map(a, b)
    expected = np.abs(a - b) if len(shape) == 2 else np.abs(a - b).max(axis=2)
    np.testing.assert_array_equal(d, expected)
    assert ic.diff_levels(np.zeros((4, 4), np.float32)) == (0.0, 1 / 255)
