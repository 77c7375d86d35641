"""The Qt-free session under the studio and the command line: the one weights rule, auto, memory, batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from weatherstudio.core.image_io import read_image, write_image
from weatherstudio.engine.restore import RestoreOptions, restore
from weatherstudio.engine.session import UNTRAINED, ModelChoice, Session, load_choice, model_choice
from weatherstudio.models.weightfile import WeightsError, save_weights


def _frames(folder: Path, n: int, h: int = 40, w: int = 56) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        paths.append(write_image(folder / f"f{i:02d}.png", rng.random((h, w, 3), dtype=np.float32)))
    return paths


# -- the one rule for weights --------------------------------------------------------------------------------


def test_shipped_weights_are_the_default_and_untrained_is_explicit() -> None:
    shipped = load_choice(ModelChoice("lpnet"))
    assert not shipped.info.untrained
    assert Path(shipped.info.weights).name == "lpnet_lite.safetensors"
    untrained = load_choice(ModelChoice("lpnet", "lite", UNTRAINED))
    assert untrained.info.untrained
    assert untrained.info.weights == ""


def test_a_variant_without_shipped_weights_needs_permission_to_run_untrained() -> None:
    with pytest.raises(WeightsError, match=r"no trained weights ship for 'resdesnow' \(paper\)"):
        load_choice(ModelChoice("resdesnow", "paper"))
    ready = load_choice(ModelChoice("resdesnow", "paper", allow_untrained=True))
    assert ready.info.untrained
    assert ready.info.config == "paper"


def test_a_weight_file_that_records_its_config_decides_it(tmp_path: Path) -> None:
    from weatherstudio.models.registry import build_model

    path = save_weights(build_model("resdesnow", "lite"), tmp_path / "mine.safetensors", {"config_name": "lite"})
    ready = load_choice(ModelChoice("resdesnow", "paper", str(path)))  # the panel's variant is ignored
    assert ready.info.config == "lite"
    assert ready.model.num_parameters() == build_model("resdesnow", "lite").num_parameters()


def test_auto_with_a_weight_file_means_that_file_s_network(tmp_path: Path) -> None:
    from weatherstudio.models.registry import build_model

    path = save_weights(build_model("lpnet"), tmp_path / "l.safetensors", {"config_name": "lite"})
    assert model_choice("auto", None, str(path)).arch == "lpnet"
    with pytest.raises(WeightsError, match="no such weight file"):
        model_choice("auto", None, str(tmp_path / "missing.pth"))


def test_models_are_cached_and_evicted() -> None:
    session = Session(cache_size=2)
    a = session.model(ModelChoice("lpnet"))
    assert session.model(ModelChoice("lpnet")) is a
    session.model(ModelChoice("lpnet", "lite", UNTRAINED))
    session.model(ModelChoice("resdesnow"))
    assert session.model(ModelChoice("lpnet")) is not a  # the least recently used went first


# -- a video model's memory: passed in, returned, never left in the model ---------------------------------------


def test_restore_again_with_j4rnet_gives_the_same_result() -> None:
    """The studio bug: a second restore of the same photo inherited the first one's memory."""
    session = Session()
    rgb = np.random.default_rng(3).random((64, 96, 3), dtype=np.float32)
    choice = ModelChoice("j4rnet")
    first = session.restore_image(rgb, choice, RestoreOptions(tile=48, overlap=16))
    second = session.restore_image(rgb, choice, RestoreOptions(tile=48, overlap=16))
    assert first.tiles > 1
    assert np.array_equal(first.image, second.image)
    assert session.model(choice).model.get_state() is None


def test_each_tile_starts_from_its_own_memory() -> None:
    """With a fresh state, a tile's output equals that tile's crop restored alone (no state from the tile before)."""
    ready = load_choice(ModelChoice("j4rnet"))
    rgb = np.random.default_rng(4).random((64, 128, 3), dtype=np.float32)
    tiled = restore(rgb, ready.model, RestoreOptions(tile=64, overlap=0))
    right = restore(np.ascontiguousarray(rgb[:, 64:]), ready.model, RestoreOptions(tile=0))
    assert tiled.tiles == 2
    assert np.abs(tiled.image[:, 64:] - right.image).max() < 1e-5
    assert set(tiled.state) == {0, 1}


def test_memory_is_carried_only_when_passed() -> None:
    ready = load_choice(ModelChoice("j4rnet"))
    frames = [np.random.default_rng(i).random((40, 56, 3), dtype=np.float32) for i in range(2)]
    first = restore(frames[0], ready.model, RestoreOptions(tile=0))
    carried = restore(frames[1], ready.model, RestoreOptions(tile=0), state=first.state)
    fresh = restore(frames[1], ready.model, RestoreOptions(tile=0))
    assert np.abs(carried.image - fresh.image).max() > 1e-3
    again = restore(frames[1], ready.model, RestoreOptions(tile=0), state=first.state)
    assert np.array_equal(carried.image, again.image)  # the state given in is not changed by the call


def test_a_batch_of_frames_is_deterministic_and_equals_remove(tmp_path: Path) -> None:
    from weatherstudio.cli import main

    sources = _frames(tmp_path / "frames", 3)
    outs = []
    for run in ("a", "b"):
        folder = tmp_path / run
        outcomes = list(
            Session().restore_files(sources, lambda s, f=folder: f / s.name, ModelChoice("j4rnet"), RestoreOptions())
        )
        assert [o.error for o in outcomes] == ["", "", ""]
        outs.append([read_image(folder / s.name).rgb for s in sources])
    assert all(np.array_equal(a, b) for a, b in zip(*outs))
    assert main(["remove", str(tmp_path / "frames"), "-o", str(tmp_path / "cli"), "--model", "j4rnet"]) == 0
    assert all(np.array_equal(read_image(tmp_path / "cli" / s.name).rgb, a) for s, a in zip(sources, outs[0]))


def test_a_failing_file_does_not_end_the_batch(tmp_path: Path) -> None:
    sources = _frames(tmp_path / "in", 2)
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"not a png")
    outcomes = list(
        Session().restore_files(
            [sources[0], bad, sources[1]], lambda s: tmp_path / "out" / s.name, ModelChoice("lpnet"), RestoreOptions()
        )
    )
    assert [o.output is not None for o in outcomes] == [True, False, True]
    assert "broken.png" in outcomes[1].error


# -- auto ------------------------------------------------------------------------------------------------------


def test_auto_picks_the_network_for_the_weather_and_passes_clear_photos_through() -> None:
    from weatherstudio.samples import find_samples

    session = Session()
    for sample in (s for s in find_samples() if not s.is_clip and s.clean is not None):
        decision = session.decide(ModelChoice("auto"), read_image(sample.path).rgb)
        assert decision.guess.weather == sample.weather
        assert decision.choice.arch == {"rain": "lpnet", "snow": "resdesnow"}[sample.weather]
        as_video = session.decide(ModelChoice("auto"), read_image(sample.path).rgb, video=True)
        assert as_video.choice.arch == {"rain": "j4rnet", "snow": "resdesnow"}[sample.weather]  # a video network
        clean = read_image(sample.clean).rgb
        result = session.restore_image(clean, ModelChoice("auto"))
        assert result.decision.pass_through
        assert result.model is None
        assert np.array_equal(result.image, clean)
        assert "passed through unchanged" in result.notes[0]


def test_a_video_is_judged_on_frames_spread_over_it_not_its_first(tmp_path: Path) -> None:
    """A clip that fades in from black: its first frame is clear, the clip is rain, and auto says so."""
    import cv2

    from weatherstudio.core.video_io import open_video
    from weatherstudio.engine.weather import sample_frames
    from weatherstudio.samples import find_samples

    clip = next(s for s in find_samples() if s.is_clip)
    frames = sorted(Path(clip.path).with_suffix("").glob("frame_*.jpg"))
    folder = tmp_path / "fade_in"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"f{i:03d}.png"), np.zeros((240, 320, 3), np.uint8))
    for i, f in enumerate(frames[:8], start=4):
        cv2.imwrite(str(folder / f"f{i:03d}.png"), cv2.resize(cv2.imread(str(f)), (320, 240)))
    session = Session()
    with open_video(folder) as reader:
        assert sample_frames(reader.frame_count) == [1, 3, 6, 8, 10]
        first = session.decide(ModelChoice("auto"), reader.frame(0), video=True)
        assert first.pass_through  # what judging the first frame alone did
        decision = session.decide_video(ModelChoice("auto"), reader)
    assert decision.guess.weather == "rain" and decision.choice.arch == "j4rnet"
    assert sample_frames(1) == [0] and sample_frames(3) == [0, 1, 2]
    assert session.decide_video(ModelChoice("lpnet"), None).choice.arch == "lpnet"  # a choice is kept as it is
