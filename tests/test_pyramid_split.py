"""LPNet as two graphs (models.lpnet_parts, engine.pyramid_split): the same network, exact tiles, the same photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from weatherstudio.core.tiling import overlaps, plan_tiles, tile_weight, weights_sum_to_one
from weatherstudio.engine.backends import SPLIT_RUNTIMES, installed
from weatherstudio.engine.loader import load_model
from weatherstudio.engine.restore import RestoreCancelled, RestoreOptions, default_overlap, restore
from weatherstudio.models.lpnet_parts import half_size_levels
from weatherstudio.synth import synthesize_rain

RUNTIME = next((b for b in SPLIT_RUNTIMES if installed(b)), None)
needs_runtime = pytest.mark.skipif(RUNTIME is None, reason="ONNX Runtime is not installed")


@pytest.fixture(autouse=True)
def graph_cache(tmp_path_factory, monkeypatch) -> Path:
    folder = tmp_path_factory.getbasetemp() / "graph-cache"
    monkeypatch.setenv("WEATHERSTUDIO_CACHE", str(folder))
    return folder


def _rainy(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 19.0)[..., None] * np.cos(yy / 13.0)[..., None] * np.array([1, 0.7, 0.4], np.float32)
    clean = np.clip(base + 0.05 * rng.random((h, w, 3), dtype=np.float32), 0, 1).astype(np.float32)
    return synthesize_rain(clean, "light", rng).x


def _whole(model: torch.nn.Module, img: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out = model(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]).image
    return out[0].numpy().transpose(1, 2, 0)


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (37, 52), (130, 97)])
def test_the_two_parts_compute_what_lpnet_computes(shape: tuple[int, int]) -> None:
    model, _ = load_model("lpnet")
    coarse, finest = model.pyramid_parts()
    img = _rainy(*shape)
    x6 = finest.input_for(img)  # L_0 and up(G_1(Y)), the coarse part run in torch
    assert x6.shape == (*shape, 6)
    with torch.inference_mode():
        out = finest(torch.from_numpy(np.ascontiguousarray(x6.transpose(2, 0, 1)))[None]).image
        g1 = torch.from_numpy(coarse.input_for(img).transpose(2, 0, 1).copy())[None]
        paired = coarse(g1).image  # its largest level as two stacked halves with block-diagonal weights
        assert float((paired - model.coarse_levels(g1)).abs().max()) < 1e-5
    assert np.abs(out[0].numpy().transpose(1, 2, 0) - _whole(model, img)).max() < 1e-5
    assert {p.data_ptr() for p in coarse.parameters()} == {p.data_ptr() for p in model.parameters()}  # shared


@pytest.mark.parametrize("overlap", [22, 23])
def test_cut_seams_give_each_pixel_to_one_tile(overlap: int) -> None:
    tiles = plan_tiles(300, 457, 96, overlap, align=2)
    spans = overlaps(tiles)
    assert weights_sum_to_one(tiles, spans, 300, 457, cut=True)
    total = np.zeros((300, 457), np.float32)
    for t in tiles:
        w = tile_weight(t, *spans[t], cut=True)
        assert set(np.unique(w)) <= {0.0, 1.0}
        total[t.y : t.y + t.h, t.x : t.x + t.w] += w
    assert np.array_equal(total, np.ones_like(total))


def test_the_finest_part_tiled_with_cut_seams_is_the_whole_image_exactly() -> None:
    """Its context ends 11 pixels out: overlaps of 22 cut in the middle leave no seam at all (torch, small tiles)."""
    model, _ = load_model("lpnet")
    _, finest = model.pyramid_parts()
    assert finest.exact_context == 11 and default_overlap(finest) == 22
    x6 = finest.input_for(_rainy(203, 331))
    whole = restore(x6, finest, RestoreOptions(backend="torch", tile=0))
    tiled = restore(x6, finest, RestoreOptions(backend="torch", tile=64))
    assert tiled.tiles > 12
    assert np.abs(tiled.image - whole.image).max() < 1e-5


@needs_runtime
def test_a_photo_in_a_runtime_runs_as_two_parts_and_matches_the_whole_image() -> None:
    model, _ = load_model("lpnet")
    img = _rainy(700, 1100, seed=1)
    seen: list = []
    done: list[int] = []
    out = restore(
        img,
        model,
        RestoreOptions(backend=RUNTIME, tile=512),
        on_tile=lambda t, tile_out: seen.append((t, tile_out.shape)),
        progress=lambda i, total: done.append((i, total)),
    )
    assert any("coarse levels once at half size" in n for n in out.notes)
    whole = _whole(model, img)
    assert np.abs(whole - img).mean() > 2 / 255  # the network does change the photo
    assert np.abs(out.image - whole).max() < 1e-3  # exact up to float rounding and the coarse part's far seams
    assert 1 < len(seen) < out.tiles and all(shape == (t.h, t.w, 3) for t, shape in seen)  # the full-size tiles
    counts = [i for i, _ in done]
    assert counts == list(range(out.tiles + 1)) and {total for _, total in done} == {out.tiles}  # both parts
    # an explicit overlap asks for the one-graph blend; maps come from torch
    blended = restore(img, model, RestoreOptions(backend=RUNTIME, tile=512, overlap=32))
    assert not any("coarse levels" in n for n in blended.notes) and blended.tiles == 6
    with_maps = restore(img, model, RestoreOptions(backend=RUNTIME, tile=512, return_maps=True))
    assert with_maps.backend == "torch" and "output_level4" in with_maps.maps


@needs_runtime
@pytest.mark.parametrize("stop_after", [1, 6])
def test_cancel_stops_either_part(stop_after: int) -> None:
    """Cancelling in the coarse part (its first tiles) or in the finest one raises, and nothing is returned."""
    model, _ = load_model("lpnet")
    img = _rainy(900, 1300, seed=2)
    calls: list[int] = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > stop_after

    with pytest.raises(RestoreCancelled):
        restore(img, model, RestoreOptions(backend=RUNTIME, tile=256), should_cancel=cancel)


def test_half_size_levels_are_planes() -> None:
    a, b = np.zeros((4, 5, 3), np.float32), np.ones((4, 5, 3), np.float32)
    planes = half_size_levels(a, b)
    assert planes.shape == (6, 4, 5) and planes.flags.c_contiguous and planes[3:].min() == 1 and planes[:3].max() == 0


@needs_runtime
def test_below_one_finest_tile_the_runtime_runs_one_graph_on_the_whole_image() -> None:
    model, _ = load_model("lpnet")
    img = _rainy(600, 700, seed=3)  # larger than LPNet's 512² tile, within the finest part's
    out = restore(img, model, RestoreOptions(backend=RUNTIME))
    assert out.tiles == 1 and not any("coarse levels" in n for n in out.notes)
    assert np.abs(out.image - _whole(model, img)).max() < 1e-3
    assert restore(img, model, RestoreOptions(backend="torch")).tiles > 1  # torch keeps its cache-sized tiles


@needs_runtime
def test_a_tile_too_small_for_exact_seams_keeps_the_one_graph() -> None:
    model, _ = load_model("lpnet")
    img = _rainy(200, 260, seed=4)
    out = restore(img, model, RestoreOptions(backend=RUNTIME, tile=40))  # the cut needs 2 × 22 pixels
    assert out.tiles > 1 and not any("coarse levels" in n for n in out.notes)


@needs_runtime
def test_a_split_that_fails_falls_back_to_the_one_graph_or_names_the_backend(monkeypatch) -> None:
    """A fault injected into the two-graph path: ``auto`` still restores (one graph, with a note); a named runtime
    says what failed."""
    import weatherstudio.engine.pyramid_split as split
    from weatherstudio.engine.backends import BackendError

    def broken(*args, **kwargs):
        raise RuntimeError("no graph")

    monkeypatch.setattr(split, "restore_split", broken)
    model, _ = load_model("lpnet")
    img = _rainy(700, 1100, seed=5)
    out = restore(img, model, RestoreOptions(tile=512))
    assert out.backend == RUNTIME and any("could not run as two graphs" in n for n in out.notes)
    assert np.abs(out.image - _whole(model, img)).mean() < 0.05 / 255  # the one graph's blend
    with pytest.raises(BackendError, match="no graph"):
        restore(img, model, RestoreOptions(backend=RUNTIME, tile=512))
