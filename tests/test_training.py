"""The training engine: every objective trains, resumes bit-exactly, runs data-parallel, keeps held-out data out.

Most tests build a small data root of their own (procedural "photos" and rainy pairs synthesized from them),
so they need nothing beside the checkout; the split test on the real photo collection skips without ../shared.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.engine.datasets import PhotoPool, batch_rng, clean_photos, rotated_crop_pair, split_of
from weatherstudio.engine.objectives import GTRainObjective, SyntheticSnowObjective, make_objective
from weatherstudio.engine.training import Trainer, load_config, lr_at, weights_digest
from weatherstudio.models.registry import build_model

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: bit-exact CPU results and no oversubscription of a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A procedural 'photo': a smooth colour gradient with a few filled shapes and some texture (uint8 RGB)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    t = (xx / w * rng.uniform(0.3, 1.0) + yy / h * rng.uniform(0.3, 1.0))[..., None] / 2.0
    img = (c0 * (1 - t) + c1 * t).astype(np.float32)
    for _ in range(4):
        colour = tuple(float(v) for v in rng.uniform(0, 1, 3))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, centre, int(rng.integers(5, h // 3)), colour, -1)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean/ photos covering all three hash splits, train/RainTrainL and test/Rain100L pairs."""
    from weatherstudio.synth import synthesize_rain

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(7)
    counts = {"train": 0, "val": 0, "test": 0}
    i = 0
    while min(counts["val"], counts["test"]) < 3 or counts["train"] < 12:
        p = root / "clean" / "scenes" / f"scene_{i:03d}.png"
        _write(p, _photo(rng, 72, 96))
        counts[split_of(p)] += 1
        i += 1
    for folder, n in (("train/RainTrainL", 12), ("test/Rain100L", 3)):
        for k in range(n):
            clean = _photo(rng, 64, 80)
            rainy = synthesize_rain(clean, "light", rng).x
            _write(root / folder / "clean" / f"rain-{k}.png", clean)
            _write(root / folder / "rainy" / f"rain-{k}.png", np.round(rainy * 255).astype(np.uint8))
    return root


def _tiny(name: str, **data: object) -> dict:
    """A shipped lite config, shrunk: 24² crops, batch 2, two validation crops, no final evaluation sets; fp32 and
    no weight average unless a test asks (a shipped config's later phases may use either)."""
    cfg = copy.deepcopy(load_config(name))
    cfg.pop("autocast", None)
    cfg["optim"].pop("ema", None)
    cfg["data"].update({"crop": 24, "batch": 2, "max_side": 96, **data})
    cfg["val"] = {"every": 0, "n": 2, "size": 32, "frames": 2}
    cfg["eval"] = {}
    cfg["checkpoint_every"] = 1000
    if "real_pairs" in cfg["data"]:
        cfg["data"]["holdout"] = 3
    if cfg.get("precise_bn"):
        cfg["precise_bn"] = 2
    return cfg


def _state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- data ------------------------------------------------------------------------------------------------------


def test_held_out_photos_never_train(data_root: Path) -> None:
    train = PhotoPool.load(data_root / "clean", "train", 96)
    held = set(PhotoPool.load(data_root / "clean", "val", 96).names) | set(
        PhotoPool.load(data_root / "clean", "test", 96).names
    )
    assert len(train) >= 12
    assert len(held) >= 6
    assert not held & set(train.names)
    objective = make_objective(build_model("resdesnow", "lite"), _tiny("resdesnow_lite"), data_root)
    assert isinstance(objective, SyntheticSnowObjective)
    assert objective.pool.names == train.names
    val_names = {n.split("#")[0] for n, _, _ in objective.validation_pairs()}
    assert val_names
    assert val_names <= set(PhotoPool.load(data_root / "clean", "val", 96).names)


@pytest.mark.skipif(not (SHARED_DATA / "clean").is_dir(), reason="needs ../shared/data/clean (the photo collection)")
def test_shared_photo_splits_are_disjoint() -> None:
    parts = {
        s: {f"{p.parent.name}/{p.name}" for p in clean_photos(SHARED_DATA / "clean", s)}
        for s in ("train", "val", "test")
    }
    assert all(len(v) >= 20 for v in parts.values())
    assert not parts["train"] & parts["val"]
    assert not parts["train"] & parts["test"]
    assert not parts["val"] & parts["test"]


def test_batches_are_a_function_of_seed_step_rank(data_root: Path) -> None:
    objective = make_objective(build_model("desnownet", "lite"), _tiny("desnownet_lite"), data_root)
    a = objective.batch(batch_rng(0, 5, 0), 2, 24)
    b = objective.batch(batch_rng(0, 5, 0), 2, 24)
    c = objective.batch(batch_rng(0, 5, 1), 2, 24)
    assert set(a) == {"input", "target", "mask"}
    assert a["mask"].shape == (2, 1, 24, 24)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["input"], c["input"])
    # eq. 1 holds for the batch: where the mask is 0 the input is the clean image
    clear = a["mask"] == 0
    assert clear.any()
    assert torch.allclose(a["input"][clear.expand_as(a["input"])], a["target"][clear.expand_as(a["input"])])


def test_snow_free_share_of_the_crops_asks_for_the_identity(data_root: Path) -> None:
    cfg = _tiny("desnownet_lite", clean_fraction=0.5)
    objective = make_objective(build_model("desnownet", "lite"), cfg, data_root)
    batch = objective.batch(batch_rng(0, 3, 0), 40, 24)
    free = (batch["mask"].flatten(1).amax(1) == 0) & (batch["input"] == batch["target"]).flatten(1).all(1)
    assert 8 <= int(free.sum()) <= 32  # about half, never all or none
    assert "50% of the crops left snow-free" in objective.data_description()
    # without it, a crop is snow-free only where no flake happens to fall (small snow on a 24² crop, rarely)
    plain = make_objective(build_model("desnownet", "lite"), _tiny("desnownet_lite", clean_fraction=0.0), data_root)
    plain_free = int((plain.batch(batch_rng(0, 3, 0), 40, 24)["mask"].flatten(1).amax(1) == 0).sum())
    assert plain_free <= 4 < int(free.sum())
    with pytest.raises(WeatherStudioError, match="clean_fraction"):
        make_objective(build_model("desnownet", "lite"), _tiny("desnownet_lite", clean_fraction=1.0), data_root)


def test_rotated_crop_shows_no_border() -> None:
    rng = np.random.default_rng(0)
    a = np.full((80, 90, 3), 200, np.uint8)
    for _ in range(20):
        x, y = rotated_crop_pair(rng, a, a, 40, 13.0)
        assert x.shape == (40, 40, 3)
        assert np.array_equal(x, y)
        assert x.min() == 200  # a border would bring in other values


# -- schedule ----------------------------------------------------------------------------------------------------


def test_lr_schedule_with_restarts() -> None:
    base, total, warmup, final = 1e-3, 1000, 10, 1e-5
    for step in (0, 5, 10, 400, 999):  # without restarts: the original warm-up + cosine
        t = min(1.0, (step - warmup) / (total - warmup))
        want = (
            base * (step + 1) / warmup if step < warmup else final + 0.5 * (base - final) * (1 + math.cos(math.pi * t))
        )
        assert lr_at(step, base, total, warmup, final) == pytest.approx(want, rel=1e-12)
    r = [600]
    assert lr_at(599, base, total, warmup, final, r) == pytest.approx(final, rel=0.05)
    assert lr_at(600, base, total, warmup, final, r) == pytest.approx(base / warmup)
    assert lr_at(610, base, total, warmup, final, r) == pytest.approx(base, rel=1e-3)
    assert lr_at(999, base, total, warmup, final, r) == pytest.approx(final, rel=0.05)
    # a per-phase peak: the first phase untouched, the second one peaks at a quarter and still ends at final
    s = [1.0, 0.25]
    assert lr_at(400, base, total, warmup, final, r, s) == lr_at(400, base, total, warmup, final, r)
    assert lr_at(610, base, total, warmup, final, r, s) == pytest.approx(final + 0.25 * (base - final), rel=1e-3)
    assert lr_at(999, base, total, warmup, final, r, s) == pytest.approx(final, rel=0.05)
    assert lr_at(610, base, total, warmup, final, r, [0.5]) == lr_at(610, base, total, warmup, final, r)


# -- every objective -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["lpnet", "desnownet", "resdesnow", "j4rnet", "gtrain"])
def test_every_objective_trains_and_validates(arch: str, data_root: Path, tmp_path: Path) -> None:
    extra: dict = {}
    if arch == "j4rnet":
        extra["clip_frames_schedule"] = [{"from_step": 0, "frames": 1, "batch": 2}, {"from_step": 1, "frames": 2}]
    if arch == "gtrain":
        extra["batch"] = 3  # InfoNCE needs negatives
    cfg = _tiny(f"{arch}_lite", **extra)
    trainer = Trainer(cfg, tmp_path / "run", data_root=data_root, device="cpu", steps=2)
    before = weights_digest(trainer.model)
    summary = trainer.train(progress=False)
    assert summary["step"] == 2
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert all(math.isfinite(v) for v in summary["losses"].values())
    assert summary["losses"]["total"] > 0
    assert weights_digest(trainer.model) != before
    scores = trainer.validate()
    assert scores["val_n"] >= 2
    assert math.isfinite(scores["val_psnr_y"])
    assert 0 < scores["val_ssim_y"] <= 1
    assert trainer.model.training
    assert trainer.objective.description
    assert trainer.objective.data_description()
    if arch == "j4rnet":
        assert math.isfinite(scores["val_flicker"])
        assert trainer.objective.phase(0, 2) == (1, 2)
        assert trainer.objective.phase(1, 2) == (2, 2)


def test_j4rnet_clips_carry_their_flows_when_the_memory_is_aligned(data_root: Path, tmp_path: Path) -> None:
    """[data] align_memory_from: from that step on, each clip comes with the flows between its frames, and
    training warps the memory."""
    cfg = _tiny("j4rnet_lite", clip_frames_schedule=[{"from_step": 0, "frames": 3}], align_memory_from=0)
    trainer = Trainer(cfg, tmp_path / "run", data_root=data_root, device="cpu", steps=2)
    batch = trainer.objective.batch(np.random.default_rng(0), 2, 24)
    assert batch["flows"].shape == (2, 2, 24, 24, 2)
    assert torch.isfinite(batch["flows"]).all()
    summary = trainer.train(progress=False)
    assert all(math.isfinite(v) for v in summary["losses"].values())
    assert "flows" not in trainer.objective.batch(np.random.default_rng(0), 2, 24, step=-1)  # before it
    plain = {**cfg, "data": {k: v for k, v in cfg["data"].items() if k != "align_memory_from"}}
    assert "flows" not in Trainer(plain, tmp_path / "p", data_root, "cpu", 2).objective.batch(
        np.random.default_rng(0), 2, 24
    )


def test_gtrain_offsets_learn_at_a_tenth(data_root: Path, tmp_path: Path) -> None:
    trainer = Trainer(_tiny("gtrain_lite", batch=3), tmp_path, data_root=data_root, device="cpu", steps=1)
    assert isinstance(trainer.objective, GTRainObjective)
    groups = trainer.optimizer.param_groups
    slow = [g for g in groups if g.get("lr_scale") == 0.1]
    n_deform = sum(1 for n, _ in trainer.model.named_parameters() if ".offset." in n or ".modulator." in n)
    assert len(groups) == 2
    assert len(slow) == 1
    assert len(slow[0]["params"]) == n_deform > 0
    trainer.train(progress=False)
    assert slow[0]["lr"] == pytest.approx(0.1 * next(g for g in groups if "lr_scale" not in g)["lr"])


def test_precise_batchnorm_is_a_function_of_the_weights_and_leaves_training_alone(
    data_root: Path, tmp_path: Path
) -> None:
    """``precise_bn``: validation sees batch-norm statistics averaged over fixed batches, the training run keeps
    its own (the same weights and buffers as a run without it), and the weight file holds the precise ones."""
    from weatherstudio.models.weightfile import load_weights

    cfg = _tiny("gtrain_lite", batch=2)
    cfg["val"]["every"] = 1
    runs = {}
    for n in (0, 3):
        trainer = Trainer({**cfg, "precise_bn": n}, tmp_path / str(n), data_root=data_root, device="cpu", steps=2)
        trainer.train(progress=False)
        runs[n] = trainer
    assert _state_equal(runs[0].model.state_dict(), runs[3].model.state_dict())
    trainer = runs[3]
    layers = trainer.batchnorm_layers()
    assert layers
    ema = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    saved = trainer.precise_batchnorm()
    assert saved is not None and _state_equal(saved, {k: ema[k] for k in saved})
    precise = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert all(int(m.num_batches_tracked) == 3 for m in layers)
    assert all(m.momentum == 0.1 for m in layers)
    mean = next(k for k in saved if k.endswith("running_mean"))
    assert not torch.equal(precise[mean], ema[mean])
    trainer.precise_batchnorm()  # the same batches again: the same statistics
    assert _state_equal(precise, trainer.model.state_dict())
    trainer._restore_batchnorm(saved)
    assert _state_equal(ema, trainer.model.state_dict())
    trainer.final_scores()
    out = trainer.export(tmp_path / "gtrain_lite.safetensors")
    loaded, _ = load_weights(out)
    assert _state_equal(precise, {k: v for k, v in loaded.state_dict().items() if k in precise})
    assert runs[0].precise_batchnorm() is None  # off in the config: nothing recomputed


def test_frozen_batchnorm_keeps_the_running_statistics_and_trains_the_rest(data_root: Path, tmp_path: Path) -> None:
    """``frozen_bn``: batch norm normalises with its running statistics and keeps them, through steps and
    validations; every weight still trains (its scale and shift included). Without it the statistics move."""
    cfg = _tiny("gtrain_lite", batch=2)
    cfg["val"]["every"] = 1
    cfg.pop("precise_bn", None)
    start = Trainer(cfg, tmp_path / "start", data_root=data_root, device="cpu", steps=2).model.state_dict()
    start = {k: v.clone() for k, v in start.items()}
    runs = {}
    for frozen in (False, True):
        trainer = Trainer(
            {**cfg, "frozen_bn": frozen}, tmp_path / str(frozen), data_root=data_root, device="cpu", steps=2
        )
        trainer.train(progress=False)
        runs[frozen] = trainer.model.state_dict()
        layers = trainer.batchnorm_layers()
        assert layers and trainer.model.training
        assert all(m.training != frozen for m in layers)  # after the validations too
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    affine = [k for k in start if k.endswith(".weight") and k.replace(".weight", ".running_mean") in start]
    assert stats and affine
    assert all(torch.equal(runs[True][k], start[k]) for k in stats)
    assert not any(torch.equal(runs[False][k], start[k]) for k in stats)
    assert not any(torch.equal(runs[True][k], start[k]) for k in affine)


def test_rescore_keeps_the_weights_and_record_and_replaces_the_scores(data_root: Path, tmp_path: Path) -> None:
    """--rescore: a finished file scored again by this engine; same tensors and training record, new scores."""
    from weatherstudio.models.weightfile import load_weights, read_metadata

    cfg = _tiny("lpnet_lite")
    cfg["eval"] = {"folder": {"rainy": "test/Rain100L/rainy", "clean": "test/Rain100L/clean"}}
    first = Trainer(cfg, tmp_path / "a", data_root=data_root, device="cpu", steps=2)
    first.train(progress=False)
    shipped = first.export(tmp_path / "lpnet_lite.safetensors", {"folder": {"psnr_y": -1.0}})
    scorer = Trainer(cfg, tmp_path / "b", data_root=data_root, device="cpu", steps=2)
    assert not _state_equal(first.model.state_dict(), scorer.model.state_dict())  # a fresh model to begin with
    scores = scorer.rescore(shipped, tmp_path / "rescored.safetensors")
    loaded, meta = load_weights(tmp_path / "rescored.safetensors")
    assert _state_equal(first.model.state_dict(), loaded.state_dict())
    assert meta["training"] == read_metadata(shipped)["training"]
    assert meta["scores"]["folder"]["psnr_y"] == scores["folder"]["psnr_y"] > 0
    assert meta["rescored"]["previous_scores"] == {"folder": {"psnr_y": -1.0}}
    with pytest.raises(WeatherStudioError, match="is the file being scored"):
        scorer.rescore(shipped, shipped)
    with pytest.raises(WeatherStudioError, match="not resdesnow lite"):
        Trainer(_tiny("resdesnow_lite"), tmp_path / "c", data_root=data_root, device="cpu", steps=2).rescore(
            shipped, tmp_path / "x.safetensors"
        )


def test_final_scores_on_synthetic_and_folder_sets(data_root: Path, tmp_path: Path) -> None:
    cfg = _tiny("j4rnet_lite", clip_frames_schedule=[{"from_step": 0, "frames": 1}])
    cfg["eval"] = {
        "video": {"synthetic": "rain-video", "preset": "heavy", "frames": 2, "size": 32, "limit": 2, "max_side": 96},
        "stills": {"synthetic": "rain", "preset": "light", "max_side": 96, "limit": 2},
        "folder": {"rainy": "test/Rain100L/rainy", "clean": "test/Rain100L/clean"},
    }
    trainer = Trainer(cfg, tmp_path, data_root=data_root, device="cpu", steps=1)
    scores = trainer.final_scores()
    assert scores["video"]["n"] == 4
    assert math.isfinite(scores["video"]["flicker"])
    assert scores["stills"]["n"] == 2
    assert "'test' split" in scores["stills"]["data"]
    assert scores["folder"]["n"] == 3
    assert math.isfinite(scores["folder"]["psnr_y"])
    again = trainer.final_scores()  # the sets are fixed: same model, same scores
    assert again["video"]["psnr_y"] == scores["video"]["psnr_y"]


def test_channels_last_training_is_the_same_function(data_root: Path, tmp_path: Path) -> None:
    """NHWC weights and batches (lpnet_lite's ``channels_last``) change speed, not what is learned; they
    survive validation (which scores in NHWC and hands the model back) and export to a loadable file."""
    from weatherstudio.models.weightfile import load_weights

    cfg = _tiny("lpnet_lite")
    assert cfg["channels_last"] is True
    nhwc = Trainer(cfg, tmp_path / "nhwc", data_root=data_root, device="cpu", steps=3)
    nhwc.train(max_steps=2, progress=False)
    nhwc.validate()
    nhwc.train(progress=False)
    convs = [p for p in nhwc.model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1]
    assert convs
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    nchw = Trainer({**cfg, "channels_last": False}, tmp_path / "nchw", data_root=data_root, device="cpu", steps=3)
    nchw.train(progress=False)
    assert all(p.is_contiguous() for p in nchw.model.parameters())
    a, b = nhwc.model.state_dict(), nchw.model.state_dict()
    torch.manual_seed(cfg["seed"])
    init = build_model("lpnet", "lite").state_dict()  # the initial weights both runs started from
    moved = max(float((a[k] - init[k]).abs().max()) for k in a)
    apart = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved > 0
    assert apart < 0.1 * moved  # rounding-order differences only (a few near-zero grads flip)
    out = nhwc.export(tmp_path / "lpnet_lite.safetensors")
    loaded, meta = load_weights(out)
    assert meta["training"]["steps"] == 3
    assert _state_equal({k: v.contiguous() for k, v in a.items()}, loaded.state_dict())


# -- resume and data parallel ----------------------------------------------------------------------------------


def test_resume_is_bit_exact(data_root: Path, tmp_path: Path) -> None:
    """6 steps straight = 3 steps, a new Trainer resuming from the checkpoint, 3 more (across a phase change)."""
    cfg = _tiny("j4rnet_lite", clip_frames_schedule=[{"from_step": 0, "frames": 1}, {"from_step": 4, "frames": 2}])
    cfg["optim"].update({"warmup": 2, "restarts": [4]})
    prefetched = {**cfg, "prefetch": True}  # batches drawn in a worker thread must be the same batches
    straight = Trainer(prefetched, tmp_path / "a", data_root=data_root, device="cpu", steps=6)
    straight.train(progress=False)
    first = Trainer(cfg, tmp_path / "b", data_root=data_root, device="cpu", steps=6)
    first.train(max_steps=3, progress=False)
    resumed = Trainer(cfg, tmp_path / "b", data_root=data_root, device="cpu", steps=6)
    assert resumed.step == 3
    resumed.train(progress=False)
    assert resumed.step == 6
    assert _state_equal(straight.model.state_dict(), resumed.model.state_dict())
    sa, sb = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys()
    assert all(_state_equal(sa[k], sb[k]) for k in sa)
    assert not _state_equal(straight.model.state_dict(), first.model.state_dict())


def test_warm_start_carries_on_from_a_weight_file(data_root: Path, tmp_path: Path) -> None:
    """--init: a finished run's weight file (its checkpoint gone) continues at its recorded step and schedule."""
    from weatherstudio.core.errors import WeatherStudioError
    from weatherstudio.models.weightfile import read_metadata

    cfg = _tiny("lpnet_lite")
    cfg["optim"].update({"warmup": 1, "restarts": [3]})
    first = Trainer(cfg, tmp_path / "a", data_root=data_root, device="cpu", steps=3)
    first.train(progress=False)
    shipped = first.export(tmp_path / "lpnet_lite.safetensors")
    carried = Trainer(cfg, tmp_path / "b", data_root=data_root, device="cpu", steps=5, init=shipped)
    assert carried.step == 3
    assert carried.wall == pytest.approx(first.wall, abs=0.1)
    assert _state_equal(first.model.state_dict(), carried.model.state_dict())
    assert not carried.optimizer.state_dict()["state"]  # fresh Adam moments, as the metadata will say
    carried.train(progress=False)
    assert carried.step == 5
    assert not _state_equal(first.model.state_dict(), carried.model.state_dict())
    meta = read_metadata(carried.export(tmp_path / "continued.safetensors"))
    assert meta["training"]["steps"] == 5
    assert meta["training"]["warm_start"]["file"] == "lpnet_lite.safetensors"
    assert meta["training"]["warm_start"]["step"] == 3
    # every phase is recorded: the --init file's own run, then this one
    phases = meta["training"]["phases"]
    assert [(p["from_step"], p["to_step"]) for p in phases] == [(0, 3), (3, 5)]
    assert phases[1]["precision"] == "fp32" and phases[0]["wall_seconds"] == pytest.approx(first.wall, abs=0.1)
    assert sum(p["wall_seconds"] for p in phases) == pytest.approx(carried.wall, abs=0.2)
    # a checkpoint in the run folder wins over --init: the interrupted run resumes exactly
    again = Trainer(cfg, tmp_path / "b", data_root=data_root, device="cpu", steps=5, init=shipped)
    assert again.step == 5
    assert again.warm_start["step"] == 3  # (the checkpoint remembers how its run began)
    with pytest.raises(WeatherStudioError, match="stopped at step 3"):
        Trainer(cfg, tmp_path / "c", data_root=data_root, device="cpu", steps=3, init=shipped)
    other = _tiny("resdesnow_lite")
    with pytest.raises(WeatherStudioError, match="not resdesnow lite"):
        Trainer(other, tmp_path / "d", data_root=data_root, device="cpu", steps=5, init=shipped)


def test_weight_average_follows_its_formula_and_gives_the_weights_back() -> None:
    """ē ← d_n·ē + (1 − d_n)·w with d_n = min(d, (1 + n)/(10 + n)); inside ``applied`` the model holds ē."""
    from weatherstudio.engine.averaging import WeightAverage

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    avg = WeightAverage(net, 0.5)
    expected = {n: p.detach().clone() for n, p in net.named_parameters()}
    for n in range(4):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        d = min(0.5, (1 + n) / (10 + n))
        assert avg.decay_at(n) == pytest.approx(d)
        expected = {k: d * expected[k] + (1 - d) * p.detach() for k, p in net.named_parameters()}
        avg.update(net)
    assert all(torch.allclose(avg.shadow[k], expected[k], atol=1e-6) for k in expected)
    live = copy.deepcopy(net.state_dict())
    with avg.applied(net):
        assert all(torch.equal(p, avg.shadow[k]) for k, p in net.named_parameters())
    assert _state_equal(net.state_dict(), live)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, 1.0)


def test_a_run_with_ema_validates_ships_and_resumes_its_average(data_root: Path, tmp_path: Path) -> None:
    """[optim] ema: validation and the weight file hold the average, the live weights train on, a checkpoint
    resumes the average bit-exactly and --init starts a fresh one from the file's weights."""
    from weatherstudio.models.weightfile import read_metadata, read_tensors

    cfg = _tiny("lpnet_lite")
    cfg["optim"].update({"warmup": 1, "restarts": [], "ema": 0.9})
    straight = Trainer(cfg, tmp_path / "a", data_root=data_root, device="cpu", steps=6)
    straight.train(progress=False)
    assert straight.average is not None and straight.average.updates == 6
    live = copy.deepcopy(straight.model.state_dict())
    shadow = straight.average.shadow
    assert any(not torch.equal(shadow[k], live[k]) for k in shadow)
    scores = straight.validate()
    assert _state_equal(straight.model.state_dict(), live)  # validation gave the trained weights back
    plain = Trainer({**cfg, "optim": {**cfg["optim"], "ema": 0}}, tmp_path / "p", data_root, "cpu", steps=6)
    plain.model.load_state_dict({**live, **shadow})
    assert plain.validate()["val_psnr_y"] == pytest.approx(scores["val_psnr_y"], abs=1e-9)
    shipped = straight.export(tmp_path / "lpnet_lite.safetensors")
    tensors = read_tensors(shipped)
    assert all(torch.equal(tensors[k], shadow[k]) for k in shadow)
    assert "moving average" in read_metadata(shipped)["training"]["phases"][-1]["weights"]
    # three steps, a new Trainer from the checkpoint, three more: the same average as six straight
    first = Trainer(cfg, tmp_path / "b", data_root=data_root, device="cpu", steps=6)
    first.train(max_steps=3, progress=False)
    resumed = Trainer(cfg, tmp_path / "b", data_root=data_root, device="cpu", steps=6)
    assert resumed.average is not None and resumed.average.updates == 3
    resumed.train(progress=False)
    assert _state_equal(resumed.average.shadow, shadow)
    with pytest.raises(WeatherStudioError, match="decay 0.9, this config asks 0.99"):
        Trainer({**cfg, "optim": {**cfg["optim"], "ema": 0.99}}, tmp_path / "b", data_root, "cpu", steps=6)
    # an average kept and then not asked for, or asked for and never kept, is said, not dropped or begun silently
    with pytest.raises(WeatherStudioError, match="kept a weight average"):
        Trainer({**cfg, "optim": {**cfg["optim"], "ema": 0}}, tmp_path / "b", data_root, "cpu", steps=6)
    Trainer({**cfg, "optim": {**cfg["optim"], "ema": 0}}, tmp_path / "p", data_root, "cpu", steps=6).train(
        max_steps=1, progress=False
    )
    with pytest.raises(WeatherStudioError, match="kept no weight average"):
        Trainer(cfg, tmp_path / "p", data_root=data_root, device="cpu", steps=6)
    with pytest.raises(WeatherStudioError, match=r"ema: .*decay"):
        Trainer({**cfg, "optim": {**cfg["optim"], "ema": 1.5}}, tmp_path / "e", data_root, "cpu", steps=6)
    batchnorm = _tiny("desnownet_lite")  # running statistics would follow the trained weights, not the average
    batchnorm["optim"]["ema"] = 0.9
    batchnorm.pop("precise_bn", None)
    with pytest.raises(WeatherStudioError, match="needs precise_bn"):
        Trainer(batchnorm, tmp_path / "bn", data_root=data_root, device="cpu", steps=2)
    # a phase carried on from the file averages its own steps, starting from the file's (averaged) weights
    carried = Trainer(cfg, tmp_path / "c", data_root=data_root, device="cpu", steps=8, init=shipped)
    assert carried.average is not None and carried.average.updates == 0
    assert all(torch.equal(carried.average.shadow[k], shadow[k]) for k in shadow)
    # a rescore scores the file's own weights, never an average of a run that did not train
    rescored = Trainer(cfg, tmp_path / "d", data_root=data_root, device="cpu", steps=6)
    again = rescored.rescore(shipped, tmp_path / "rescored.safetensors")
    assert again["val_psnr_y"] == pytest.approx(scores["val_psnr_y"], abs=1e-9)


def test_validating_the_average_mid_run_leaves_the_training_undisturbed(data_root: Path, tmp_path: Path) -> None:
    """With ``ema`` and a validation every 2 steps, the trained weights end bit-equal to a run without either:
    swapping the average in for validation and back never touches what trains; the log holds both scores."""
    import json

    cfg = _tiny("lpnet_lite")
    cfg["optim"].update({"warmup": 1, "restarts": []})
    plain = Trainer(cfg, tmp_path / "plain", data_root=data_root, device="cpu", steps=5)
    plain.train(progress=False)
    averaged_cfg = {**cfg, "optim": {**cfg["optim"], "ema": 0.9}, "val": {**cfg["val"], "every": 2}}
    averaged = Trainer(averaged_cfg, tmp_path / "ema", data_root=data_root, device="cpu", steps=5)
    averaged.train(progress=False)
    assert _state_equal(plain.model.state_dict(), averaged.model.state_dict())
    logged = [json.loads(line) for line in (tmp_path / "ema" / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged][:2] == [2, 4]
    assert all("val_psnr_y" in r and "live_val_psnr_y" in r for r in logged)
    assert any(r["val_psnr_y"] != r["live_val_psnr_y"] for r in logged)  # the average is not the trained weights
    # [val] live = false: the average alone is scored, and the training is the same again
    quick_cfg = {**averaged_cfg, "val": {**averaged_cfg["val"], "live": False}}
    quick = Trainer(quick_cfg, tmp_path / "quick", data_root=data_root, device="cpu", steps=5)
    quick.train(progress=False)
    assert _state_equal(plain.model.state_dict(), quick.model.state_dict())
    quick_log = [json.loads(line) for line in (tmp_path / "quick" / "validation.jsonl").read_text().splitlines()]
    assert [r["val_psnr_y"] for r in quick_log] == [r["val_psnr_y"] for r in logged]
    assert not any(k.startswith("live_") for r in quick_log for k in r)


def test_two_ranks_end_with_the_same_weights(data_root: Path, tmp_path: Path) -> None:
    cfg_path = tmp_path / "tiny_resdesnow.toml"
    cfg_path.write_text(
        'seed = 3\n[model]\narch = "resdesnow"\nconfig = "lite"\n'
        "[data]\ncrop = 24\nbatch = 2\nmax_side = 96\n"
        "[optim]\nlr = 1e-3\nsteps = 3\n"
        "[val]\nevery = 0\nn = 1\nsize = 32\n"
    )
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "weatherstudio", "train", str(cfg_path), "--steps", "3", "--run-dir", str(run)]
    cmd += ["--data", str(data_root), "--device", "cpu"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    record = json.loads((run / "ddp_digests.json").read_text())
    torch.manual_seed(3)
    initial = weights_digest(build_model("resdesnow", "lite"))
    assert record["step"] == 3, record
    assert len(record["ranks"]) == 2, record
    assert record["ranks"][0] == record["ranks"][1], (record, done.stderr[-3000:])
    assert record["initial"] == initial != record["ranks"][0], (record, initial)
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    model = build_model("resdesnow", "lite")
    model.load_state_dict(state["model"])
    assert weights_digest(model) == record["ranks"][0]
    assert (run / "resdesnow_lite.safetensors").is_file()


# -- callbacks, the data root, the weather classifier ------------------------------------------------------------


def test_callbacks_see_every_step_and_validation_and_can_stop(data_root: Path, tmp_path: Path) -> None:
    from weatherstudio.engine.training import TrainCallbacks

    cfg = _tiny("lpnet_lite")
    cfg["val"]["every"] = 2
    trainer = Trainer(cfg, tmp_path / "run", data_root=data_root, device="cpu", steps=10)
    steps, vals = [], []
    callbacks = TrainCallbacks(
        on_step=lambda step, losses, lr: steps.append((step, losses["total"], lr)),
        on_validation=lambda step, scores: vals.append((step, scores["val_psnr_y"])),
        should_stop=lambda: len(steps) >= 5,
    )
    summary = trainer.train(progress=False, callbacks=callbacks)
    assert [s for s, _, _ in steps] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(loss) and lr > 0 for _, loss, lr in steps)
    assert [s for s, _ in vals] == [2, 4]
    assert summary["stopped"] is True
    assert summary["step"] == 5
    resumed = Trainer(cfg, tmp_path / "run", data_root=data_root, device="cpu", steps=10)
    assert resumed.step == 5  # the stop wrote a checkpoint at the step it stopped


def test_missing_data_root_is_a_clear_error(tmp_path: Path) -> None:
    from weatherstudio.core.errors import WeatherStudioError

    with pytest.raises(WeatherStudioError, match="data folder .*nowhere not found"):
        Trainer(load_config("lpnet_lite"), tmp_path / "run", data_root=tmp_path / "nowhere", device="cpu")


def test_default_data_root_needs_a_source_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from weatherstudio.engine import training

    monkeypatch.delenv("WEATHERSTUDIO_DATA", raising=False)
    assert training.default_data_root() == Path(training.__file__).resolve().parents[3] / "shared" / "data"
    monkeypatch.setenv("WEATHERSTUDIO_DATA", str(tmp_path))
    assert training.default_data_root() == tmp_path
    monkeypatch.delenv("WEATHERSTUDIO_DATA")
    installed = tmp_path / "site-packages" / "weatherstudio" / "engine" / "training.py"  # no pyproject above it
    installed.parent.mkdir(parents=True)
    monkeypatch.setattr(training, "__file__", str(installed))
    assert training.default_data_root() is None


def test_weather_classifier_trains_and_scores_accuracy(data_root: Path, tmp_path: Path) -> None:
    cfg = _tiny("weather_lite")
    cfg["data"]["crop"] = 64
    cfg["eval"] = {"test": {"split": "test", "rainy": "test/Rain100L/rainy", "clean": "test/Rain100L/clean"}}
    trainer = Trainer(cfg, tmp_path / "run", data_root=data_root, device="cpu", steps=2)
    batch = trainer.objective.batch(np.random.default_rng(0), 6, 64)
    assert batch["input"].shape == (6, 3, 64, 64)
    assert set(batch["label"].tolist()) <= {0, 1, 2}
    # the shipped config trains on the real-weather presets too; its fixed validation/test photos do not
    assert "light/heavy/dense rain" in trainer.objective.data_description()
    assert "small/medium/large/near snow" in trainer.objective.data_description()
    summary = trainer.train(progress=False)
    assert math.isfinite(summary["losses"]["total"])
    scores = trainer.final_scores()
    assert 0.0 <= scores["val_accuracy"] <= 1.0
    n_test = sum(1 for p in (data_root / "clean").rglob("*.png") if split_of(p) == "test")
    assert scores["test"]["n"] == 3 * n_test + 2 * 3  # each test photo clear, rainy, snowy; 3 real pairs twice
    assert sum(sum(row.values()) for row in scores["test"]["confusion"].values()) == scores["test"]["n"]
    out = trainer.export(tmp_path / "weather.safetensors", scores)
    from weatherstudio.engine.weather import load_classifier

    model, meta = load_classifier(out)
    assert meta["arch"] == "weather"
    assert model.num_parameters() == trainer.model.num_parameters()


def test_a_run_can_be_paused_resumed_and_stopped_from_another_thread(data_root: Path, tmp_path: Path) -> None:
    import threading
    import time

    from weatherstudio.engine.control import RunControl
    from weatherstudio.engine.training import TrainCallbacks

    control = RunControl()
    steps: list[int] = []
    paused_at: list[int] = []

    def on_step(step: int, losses: dict, lr: float) -> None:
        steps.append(step)
        if step == 2:
            control.pause()

    trainer = Trainer(_tiny("lpnet_lite"), tmp_path / "run", data_root=data_root, device="cpu", steps=50)
    callbacks = TrainCallbacks(on_step=on_step, should_stop=control.should_stop)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(trainer.train(progress=False, callbacks=callbacks)))
    thread.start()
    deadline = time.monotonic() + 60
    while not control.paused and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    paused_at.append(len(steps))
    assert control.paused
    assert paused_at == [2]  # no step ran while paused
    control.resume()
    while len(steps) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    control.stop()
    thread.join(60)
    assert not thread.is_alive()
    assert result["stopped"] is True
    assert 4 <= result["step"] < 50
