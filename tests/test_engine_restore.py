"""The restore engine: tiles agree with the whole image, any size works, progress and cancel work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weatherstudio.core.tiling import blend_tile, overlaps, plan_tiles, tile_weight, weights_sum_to_one
from weatherstudio.engine.device import DeviceError, resolve_device
from weatherstudio.engine.loader import load_model
from weatherstudio.engine.restore import RestoreCancelled, RestoreOptions, default_overlap, restore, restore_preview
from weatherstudio.models.base import ModelOutput, RestorationModel
from weatherstudio.models.registry import build_model
from weatherstudio.synth import synthesize_rain


def _lpnet() -> torch.nn.Module:
    """The LPNet the app ships (trained weights make realistic activations and maps)."""
    return load_model("lpnet")[0]


def _photo_like(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 17.0)[..., None] * np.cos(yy / 23.0)[..., None] * np.array([1, 0.7, 0.4], np.float32)
    return np.clip(base + 0.1 * rng.random((h, w, 3), dtype=np.float32), 0, 1).astype(np.float32)


@pytest.mark.parametrize(("height", "width"), [(300, 457), (257, 256)])
def test_tiled_equals_whole_image(height: int, width: int, rng) -> None:
    model = _lpnet()
    img = synthesize_rain(_photo_like(height, width, rng), "light", rng).x  # streaks for LPNet to take out
    whole = restore(img, model, RestoreOptions(device="cpu", tile=0, return_maps=True))
    tiled = restore(img, model, RestoreOptions(device="cpu", tile=160, return_maps=True))
    assert tiled.tiles > 1
    assert whole.tiles == 1
    assert np.abs(whole.image - img).mean() > 2 / 255  # the network does change the image
    diff = np.abs(tiled.image - whole.image)
    assert diff.mean() < 0.5 / 255
    for name, m in whole.maps.items():
        assert tiled.maps[name].shape == m.shape
        if whole.specs[name].scale < 0.5:
            continue  # a 160-px tile with a 32-px overlap has 8 px of context at 1/4: coarse maps only roughly agree
        assert np.abs(tiled.maps[name] - m).mean() < 5e-3 * (np.abs(m).mean() + 1e-3)  # relative to its magnitude


def test_default_overlap_follows_the_receptive_field() -> None:
    model = build_model("lpnet")
    assert default_overlap(model) == 32  # half of its 64-pixel effective context


def test_tile_weights_sum_to_one_everywhere() -> None:
    tiles = plan_tiles(300, 457, 128, 64, align=32, congruence=16)
    spans = overlaps(tiles)
    total = np.zeros((300, 457), np.float32)
    for t in tiles:
        total[t.y : t.y + t.h, t.x : t.x + t.w] += tile_weight(t, *spans[t])
    assert np.allclose(total, 1.0, atol=1e-5)
    for t in tiles:
        if t.bottom:
            assert (300 - t.h) % 16 == 0 or (t.h - 300) % 16 == 0  # congruent sizes for LPNet's SAME grid


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap"), [(300, 457, 128, 64), (1000, 1333, 512, 64), (97, 700, 64, 32)]
)
def test_blending_without_a_weight_sum_matches_the_weighted_average(height, width, tile, overlap, rng) -> None:
    tiles = plan_tiles(height, width, tile, overlap, align=32, congruence=16)
    spans = overlaps(tiles)
    assert weights_sum_to_one(tiles, spans, height, width)
    outputs = {t: rng.random((t.h, t.w, 3), dtype=np.float32) for t in tiles}
    reference = np.zeros((height, width, 3), np.float64)
    wsum = np.zeros((height, width, 1), np.float64)
    fast = np.zeros((height, width, 3), np.float32)
    for t in tiles:
        w = tile_weight(t, *spans[t])[..., None]
        reference[t.y : t.y + t.h, t.x : t.x + t.w] += outputs[t] * w
        wsum[t.y : t.y + t.h, t.x : t.x + t.w] += w
        blend_tile(fast, outputs[t], t, *spans[t])
    assert np.abs(fast - reference / wsum).max() < 1e-6
    assert not weights_sum_to_one(tiles[1:], spans, height, width)  # a missing tile leaves a hole


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (37, 53), (5, 700)])
def test_any_size_restores_to_the_same_size(shape: tuple[int, int], rng) -> None:
    img = rng.random((*shape, 3), dtype=np.float32)
    out = restore(img, _lpnet(), RestoreOptions(device="cpu", tile=256))
    assert out.image.shape == img.shape
    assert np.isfinite(out.image).all()
    assert out.image.min() >= 0
    assert out.image.max() <= 1


def test_progress_reports_every_tile_and_cancel_stops_between_tiles(rng) -> None:
    img = rng.random((200, 300, 3), dtype=np.float32)
    seen: list[tuple[int, int]] = []
    restore(img, _lpnet(), RestoreOptions(device="cpu", tile=96), progress=lambda d, t: seen.append((d, t)))
    total = seen[-1][1]
    assert total > 1
    assert seen[0] == (0, total)
    assert seen[-1] == (total, total)
    calls = []

    def cancel_after_two() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(RestoreCancelled, match="^restore cancelled$"):
        restore(img, _lpnet(), RestoreOptions(device="cpu", tile=96), should_cancel=cancel_after_two)
    assert len(calls) == 3


def test_on_tile_delivers_each_tile_output(rng) -> None:
    img = rng.random((150, 150, 3), dtype=np.float32)
    got = []
    res = restore(img, _lpnet(), RestoreOptions(device="cpu", tile=96), on_tile=lambda t, out: got.append((t, out)))
    assert len(got) == res.tiles
    assert all(out.shape == (t.h, t.w, 3) for t, out in got)


def test_preview_is_full_size_and_close_to_the_full_restore(rng) -> None:
    img = _photo_like(400, 600, rng)
    model = _lpnet()
    prev = restore_preview(img, model, RestoreOptions(device="cpu"), max_pixels=60_000)
    assert prev.image.shape == img.shape
    full = restore(img, model, RestoreOptions(device="cpu"))
    assert np.abs(prev.image - full.image).mean() < 0.05


def test_devices() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="^unknown device 'tpu'; use auto, cpu, cuda or cuda:N$"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA"):
            resolve_device("cuda")


class _MemoryHungry(RestorationModel):
    """Runs out of device memory on tiles above a size, as a GPU would (CUDA is not here to do it for real)."""

    arch = "memory-hungry-test"

    def __init__(self, limit: int) -> None:
        super().__init__({})
        self.limit = limit
        self.seen: list[int] = []
        self.scale = torch.nn.Parameter(torch.ones(1))

    @property
    def receptive_field(self) -> int:
        return 1

    def map_specs(self) -> list:
        return []

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:
        self.seen.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (test)")
        return ModelOutput((x * self.scale).clamp(0, 1))


def test_out_of_memory_retries_with_smaller_tiles(rng) -> None:
    img = rng.random((300, 300, 3), dtype=np.float32)
    model = _MemoryHungry(limit=100)
    res = restore(img, model, RestoreOptions(device="cpu", tile=400, overlap=16))
    assert res.tile <= 100
    assert res.tiles > 1
    assert any("out of memory" in n for n in res.notes)
    assert np.allclose(res.image, img, atol=1e-6)


def test_a_still_photo_keeps_no_memory_and_each_tile_starts_fresh(rng) -> None:
    """``keep_state=False``: a temporal network returns no per-tile memory (a 12 MP photo's would hold GBs),
    and no tile inherits the one before's."""
    torch.manual_seed(0)
    model = build_model("j4rnet", "lite").eval()
    image = rng.random((96, 160, 3), dtype=np.float32)
    opts = RestoreOptions(device="cpu", tile=64, overlap=16, backend="torch")
    kept = restore(image, model, opts)
    dropped = restore(image, model, opts, keep_state=False)
    assert kept.tiles > 1 and kept.state is not None and len(kept.state) == kept.tiles
    assert dropped.state is None and model.get_state() is None
    np.testing.assert_array_equal(dropped.image, kept.image)  # same frame either way: only the memory is dropped
