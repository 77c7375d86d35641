"""Fine-tuning on the user's own photos and pairs (weatherstudio.engine.finetune, ``weatherstudio finetune``)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from weatherstudio.cli import main
from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.engine.control import RunControl
from weatherstudio.engine.finetune import (
    FinetuneCallbacks,
    FinetuneData,
    Finetuner,
    FinetuneSpec,
)
from weatherstudio.models.weightfile import file_sha256, read_metadata
from weatherstudio.weights import WEIGHTS_DIR, available_weights, default_weights

FRAMES = Path(__file__).resolve().parents[1] / "resources" / "samples" / "clean" / "rainy_coffee_clip"


@pytest.fixture(autouse=True)
def user_weights(tmp_path, monkeypatch) -> Path:
    """Fine-tuned files go to a temporary user data folder, never the real one."""
    folder = tmp_path / "user_weights"
    monkeypatch.setenv("WEATHERSTUDIO_USER_WEIGHTS", str(folder))
    return folder


def night_photos(folder: Path, n: int = 6) -> Path:
    """A handful of the user's own photos: frames of one café scene, taken at night (dark, 0.45× exposure)."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in sorted(FRAMES.glob("frame_*.jpg"))[: 2 * n : 2]:
        cv2.imwrite(str(folder / p.name), (cv2.imread(str(p)) * 0.45).astype(np.uint8))
    return folder


def snow_spec(photos: Path, **kw) -> FinetuneSpec:
    args = dict(steps=4, crop=64, batch=2, val_every=2, project_test=False)
    args.update(kw)
    return FinetuneSpec("resdesnow", FinetuneData(photos=photos, weather="snow", preset="large"), **args)


def test_finetuning_resdesnow_on_night_photos_raises_their_validation_psnr(tmp_path, user_weights):
    job = Finetuner(snow_spec(night_photos(tmp_path / "night"), steps=60, lr=1e-4, crop=96, batch=4, val_every=30))
    assert (job.train_count, job.val_count) == (5, 1)  # 1 of 6 held out (20 %, at least one)
    result = job.run()
    before, after = result.val_before["val_psnr_y"], result.val_after["val_psnr_y"]
    assert after > before + 0.1, (before, after)
    assert result.output.parent == user_weights and result.output.is_file()
    # the file says where it came from, on what, and how it scored
    meta = read_metadata(result.output)
    ft = meta["finetune"]
    start = default_weights("resdesnow")
    assert ft["from"]["file"] == start.name and ft["from"]["sha256"] == file_sha256(start)
    assert ft["data"]["photos"] == str(tmp_path / "night")
    assert (ft["data"]["train_images"], ft["data"]["val_images"]) == (5, 1)
    assert (ft["data"]["weather"], ft["data"]["preset"]) == ("snow", "large")
    assert ft["steps"] == 60 and ft["seconds"] > 0 and ft["hardware"]
    assert ft["scores"]["val_before"]["val_psnr_y"] == pytest.approx(before)
    assert ft["scores"]["val_after"]["val_psnr_y"] == pytest.approx(after)
    assert meta["scores"]["finetune_val"]["psnr_y"] == pytest.approx(after)
    # and it is listed with the shipped files at once
    assert result.output in [w.path for w in available_weights("resdesnow")]


def test_cli_finetune_prints_one_json_object(tmp_path, capsys):
    out = tmp_path / "mine.safetensors"
    photos = night_photos(tmp_path / "night", 3)
    argv = ["finetune", "--model", "resdesnow", "--photos", str(photos), "--weather", "snow", "--preset", "small"]
    code = main([*argv, "--steps", "3", "--crop", "48", "--batch", "2", "-o", str(out), "--json", "--threads", "1"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("val_before", "val_after", "steps", "seconds", "output"):
        assert key in summary
    assert summary["steps"] == 3 and summary["output"] == str(out) and out.is_file()
    assert summary["val_after"] >= summary["val_before"]  # the best weights are kept, the start included
    # a second run refuses to overwrite the file it wrote, and leaves it as it was
    digest = file_sha256(out)
    assert main([*argv, "--steps", "1", "-o", str(out)]) != 0
    assert "never overwrites" in capsys.readouterr().err
    assert file_sha256(out) == digest


def test_refuses_to_write_into_the_shipped_weights_folder(tmp_path):
    with pytest.raises(WeatherStudioError, match="shipped weights' folder"):
        Finetuner(snow_spec(night_photos(tmp_path / "p", 2), output=WEIGHTS_DIR / "resdesnow_mine.safetensors"))
    assert not (WEIGHTS_DIR / "resdesnow_mine.safetensors").exists()


def test_bad_data_gets_a_clear_message(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeatherStudioError, match="no images"):
        Finetuner(snow_spec(empty))
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    for i in range(4):
        cv2.imwrite(str(tiny / f"dot{i}.png"), np.full((1, 1, 3), 128, np.uint8))
    with pytest.raises(WeatherStudioError, match=r"0 usable photo\(s\) of 4.*1×1 px"):
        Finetuner(snow_spec(tiny))
    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(3):
        (junk / f"photo{i}.jpg").write_text("not a picture")
    with pytest.raises(WeatherStudioError, match=r"0 usable photo\(s\) of 3"):
        Finetuner(snow_spec(junk))
    # one good photo among the broken ones is not enough (one must validate) ...
    night_photos(junk, 1)
    with pytest.raises(WeatherStudioError, match="at least 2"):
        Finetuner(snow_spec(junk))
    # ... two are, and the broken ones are skipped and named
    night_photos(junk, 2)
    job = Finetuner(snow_spec(junk))
    assert (job.train_count, job.val_count) == (1, 1)
    assert len(job.skipped) == 3 and all(s.startswith("photo") for s in job.skipped)


def test_unpaired_folders_and_pairs_for_a_mask_loss_are_refused(tmp_path):
    rainy, clean = tmp_path / "rainy", tmp_path / "clean"
    night_photos(rainy, 3)
    clean.mkdir()
    for p in rainy.iterdir():
        cv2.imwrite(str(clean / f"clean_{p.name}"), cv2.imread(str(p)))
    pairs = FinetuneData(degraded=rainy, clean=clean)
    with pytest.raises(WeatherStudioError, match="no pairs: none of the images"):
        Finetuner(FinetuneSpec("lpnet", pairs, steps=2))
    for p in rainy.iterdir():
        (clean / f"clean_{p.name}").rename(clean / p.name)
    with pytest.raises(WeatherStudioError, match="snow mask"):
        Finetuner(FinetuneSpec("desnownet", pairs, steps=2))
    job = Finetuner(FinetuneSpec("lpnet", pairs, steps=2, crop=48, batch=2, project_test=False))
    assert (job.train_count, job.val_count) == (2, 1)


def test_stop_keeps_the_best_weights_and_pause_holds_the_run(tmp_path):
    control = RunControl()
    steps: list[int] = []
    events: list[str] = []

    def resume() -> None:
        events.append("resumed")
        control.resume()

    def on_step(step: int, losses: dict, lr: float) -> None:
        steps.append(step)
        events.append(f"step {step}")
        if step == 2:
            control.pause()
            threading.Timer(0.2, resume).start()
        if step == 5:
            control.stop()

    job = Finetuner(snow_spec(night_photos(tmp_path / "p", 3), steps=50, val_every=100))
    result = job.run(FinetuneCallbacks(on_step=on_step, should_stop=control.should_stop))
    assert result.stopped and result.steps == 5 and steps == [1, 2, 3, 4, 5]
    assert events.index("resumed") < events.index("step 3")  # step 3 waited for the resume
    # the stopped run was validated too, and the file holds the better of start and step 5
    assert result.val_after["val_psnr_y"] >= result.val_before["val_psnr_y"]
    assert result.best_step in (0, 5) and result.output.is_file()


def user_clips(root: Path, n: int = 3, frames: int = 4) -> Path:
    """The user's rainy footage with clean frames, as ``bench --clips`` reads it: the bundled clip cut in ``n``."""
    rainy = sorted((FRAMES.parents[1] / "rainy_coffee_clip").glob("frame_*.jpg"))
    for k in range(n):
        for sub in ("input", "target"):
            (root / f"clip{k}" / sub).mkdir(parents=True, exist_ok=True)
        for f in rainy[k * frames : (k + 1) * frames]:
            cv2.imwrite(str(root / f"clip{k}" / "input" / f.name), cv2.imread(str(f)))
            cv2.imwrite(str(root / f"clip{k}" / "target" / f.name), cv2.imread(str(FRAMES / f.name)))
    return root


def test_j4rnet_fine_tunes_on_the_users_clips(tmp_path, capsys):
    clips = user_clips(tmp_path / "clips")
    out = tmp_path / "j4r.safetensors"
    argv = ["finetune", "--model", "j4rnet", "--clips", str(clips), "--steps", "2", "--crop", "48", "--batch", "1"]
    assert main([*argv, "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["train_images"], summary["val_images"]) == (2, 1)  # clips: 1 of 3 held out
    meta = read_metadata(out)
    assert meta["finetune"]["data"]["kind"] == "clips" and "without the α" in meta["finetune"]["data"]["description"]
    # still pairs are not what a video network learns from; clips are not for a still-image network
    with pytest.raises(WeatherStudioError, match="clips"):
        Finetuner(FinetuneSpec("j4rnet", FinetuneData(degraded=clips / "clip0" / "input", clean=clips), steps=1))
    with pytest.raises(WeatherStudioError, match="video network"):
        Finetuner(FinetuneSpec("lpnet", FinetuneData(clips=clips), steps=1))


def test_gtrain_fine_tunes_with_its_batchnorm_statistics_frozen(tmp_path):
    """GT-RAIN on five night photos with heavy rain: batch norm keeps the shipped file's statistics (with the
    user's small batches' own, validation fell 18.8 → 11.5 dB here) and the run gains several dB."""
    from weatherstudio.models.weightfile import read_tensors

    data = FinetuneData(photos=night_photos(tmp_path / "night", 5), weather="rain", preset="heavy")
    job = Finetuner(FinetuneSpec("gtrain", data, steps=16, crop=64, batch=4, val_every=8, project_test=False))
    assert job.cfg["frozen_bn"] and "precise_bn" not in job.cfg
    result = job.run()
    before, after = result.val_before["val_psnr_y"], result.val_after["val_psnr_y"]
    assert after > before + 3.0, (before, after)
    assert result.best_step > 0
    start, written = read_tensors(job.start), read_tensors(result.output)
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(written[k], start[k]) for k in stats)
    assert not all(torch.equal(written[k], start[k]) for k in start)
    assert read_metadata(result.output)["finetune"]["batch_norm"].startswith("frozen")
    # a network whose statistics do not matter keeps training them (DesnowNet: README)
    snow = FinetuneData(photos=tmp_path / "night", weather="snow", preset="large")
    assert not Finetuner(FinetuneSpec("desnownet", snow, steps=1, project_test=False)).cfg["frozen_bn"]
