"""``weatherstudio bench``: the flicker measure, clip folders and the held-out synthetic test sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import needs_shared
from weatherstudio.cli import EXIT_ERROR, main
from weatherstudio.core.image_io import read_image, write_image
from weatherstudio.core.metrics import flicker
from weatherstudio.engine import bench
from weatherstudio.engine.bench import clip_folders
from weatherstudio.engine.restore import restore
from weatherstudio.synth.writer import synthesize_folder


def _clip(n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """A camera pan over a random texture (frames shift one pixel each)."""
    rng = np.random.default_rng(seed)
    base = np.round(rng.random((40, 60 + n, 3)) * 255) / 255
    return [base[:, t : t + 60].astype(np.float32) for t in range(n)]


def test_flicker_is_zero_for_the_clean_clip_and_for_a_steady_offset() -> None:
    clean = _clip()
    assert flicker(clean, clean) == 0.0
    brighter = [np.clip(f + 10 / 255, 0, 1) for f in clean]
    assert flicker(brighter, clean) < 0.5  # a steady error is not flicker (only the clipped pixels change)


def test_flicker_measures_frame_to_frame_change_in_8bit_y() -> None:
    clean = [np.full((8, 8, 3), 100 / 255) for _ in range(4)]
    pulsing = [f + (10 / 255 if t % 2 else 0.0) for t, f in enumerate(clean)]
    # Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 per 8-bit step: a grey step of 10 moves Y by 10·219/255
    assert flicker(pulsing, clean) == pytest.approx(10 * 219 / 255, abs=1e-6)
    with pytest.raises(ValueError, match="4 frames against 3 reference frames"):
        flicker(pulsing, clean[:3])


def test_bench_clips_carries_memory_and_reports_flicker(tmp_path: Path, capsys, monkeypatch) -> None:
    # watch the real bench: the model and options it restores with, and the restored frames it measures
    seen: dict = {}
    real_iter_clip_scores = bench.iter_clip_scores

    def watched_iter_clip_scores(model, clips, options=None):
        seen["model"], seen["options"] = model, options
        yield from real_iter_clip_scores(model, clips, options)

    flicker_calls: list[list[np.ndarray]] = []

    def watched_flicker(frames, reference):
        flicker_calls.append([np.array(f, copy=True) for f in frames])
        return flicker(frames, reference)

    monkeypatch.setattr(bench, "iter_clip_scores", watched_iter_clip_scores)
    monkeypatch.setattr(bench, "flicker", watched_flicker)

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        write_image(photos / f"p{i}.png", rng.random((80, 96, 3), dtype=np.float32))
    clips = tmp_path / "clips"
    synthesize_folder("rain-video", "heavy", photos, clips, n_frames=3, frame_size=(48, 64))
    assert [name for name, _, _ in clip_folders(clips)] == ["p0", "p1"]

    code = main(["bench", "--clips", str(clips), "--model", "j4rnet", "--untrained", "--tile", "0", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 2
    assert report["frames"] == 6
    expected = []
    for _, rainy_paths, clean_paths in clip_folders(clips):
        rainy = [read_image(p).rgb for p in rainy_paths]
        clean = [read_image(p).rgb for p in clean_paths]
        expected.append(flicker(rainy, clean))
    assert report["input_flicker"] == pytest.approx(float(np.mean(expected)), rel=1e-9)
    assert report["input_flicker"] > 1.0  # moving heavy rain flickers
    assert np.isfinite(report["flicker"])
    assert report["flicker"] >= 0

    # the memory is carried: each clip's second frame is what restoring frames 0, 1 in sequence gives, not
    # what frame 1 alone (from a fresh memory) gives; and each clip starts from a fresh memory
    model, options = seen["model"], seen["options"]
    assert model.arch == "j4rnet"
    assert model.temporal
    outputs = flicker_calls[0::2]  # per clip: flicker(restored, clean), then flicker(rainy, clean)
    assert len(outputs) == 2
    for (_, rainy_paths, _), restored in zip(clip_folders(clips), outputs, strict=True):
        rainy = [read_image(p).rgb for p in rainy_paths]
        assert len(restored) == 3
        first = restore(rainy[0], model, options)
        assert first.state is not None
        np.testing.assert_array_equal(restored[0], first.image)  # a fresh memory at each clip's start
        carried = restore(rainy[1], model, options, state=first.state).image
        fresh = restore(rainy[1], model, options).image
        np.testing.assert_array_equal(restored[1], carried)
        assert float(np.abs(restored[1] - fresh).max()) > 1e-3  # the memory changes the second frame


def test_bench_wants_exactly_one_source(tmp_path: Path, capsys) -> None:
    assert main(["bench", "--model", "lpnet", "--untrained"]) == EXIT_ERROR
    assert "give one source" in capsys.readouterr().err
    code = main(["bench", "--untrained", "--clips", str(tmp_path), "--rainy", str(tmp_path), "--clean", str(tmp_path)])
    assert code == EXIT_ERROR
    assert main(["bench", "--untrained", "--clips", str(tmp_path)]) == EXIT_ERROR
    assert "no clips under" in capsys.readouterr().err
    assert main(["bench", "--untrained", "--synthetic", "snow", "--preset", "heavy"]) == EXIT_ERROR
    assert "not one of large, medium, near, small" in capsys.readouterr().err


@needs_shared
def test_bench_synthetic_snow_test_set_is_fixed_and_held_out(capsys) -> None:
    args = ["bench", "--synthetic", "snow", "--preset", "large", "--limit", "2", "--tile", "0", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["n"] == 2
    assert first["input_psnr_y"] == second["input_psnr_y"]  # the same snow both times (fixed seed)
    assert first["input_psnr_y"] < 25  # large snow degrades the photo
    assert "held-out test photos" in first["data"]
