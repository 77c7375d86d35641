"""``weatherstudio.app.main``: the command line that opens the window and makes the README screenshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.gui.helpers import CAMERA, write_photo
from weatherstudio import samples
from weatherstudio.app import main

pytestmark = pytest.mark.gui


def test_screenshot_of_a_restored_photo(qtbot, tmp_path: Path, capsys) -> None:
    photo = write_photo(tmp_path / "storm.png")
    out = tmp_path / "shots" / "split.png"
    assert (
        main(
            [
                "--screenshot",
                str(out),
                "--mode",
                "split",
                "--model",
                "lpnet",
                "--config",
                "lite",
                "--size",
                "1000x700",
                str(photo),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    restored = out.with_name("split_restored.png")
    assert f"screenshot: {out}" in printed
    assert f"restored: {restored}" in printed
    with Image.open(out) as shot:
        assert shot.size == (1000, 700)
        colours = shot.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is None or len(colours) > 200  # a real picture, not an empty window
    with Image.open(restored) as im:
        assert im.size == (128, 96)
        assert im.getexif().get(0x010F) == CAMERA


def test_screenshot_of_a_map(qtbot, tmp_path: Path, capsys) -> None:
    photo = write_photo(tmp_path / "storm.png")
    out = tmp_path / "map.png"
    assert (
        main(
            [
                "--screenshot",
                str(out),
                "--inspect",
                "output_level3",
                "--theme",
                "dark",
                "--model",
                "lpnet",
                "--config",
                "lite",
                "--size",
                "1000x700",
                str(photo),
            ]
        )
        == 0
    )
    with Image.open(out) as shot:
        assert shot.size == (1000, 700)
        rgb = shot.convert("RGB")
        colours = rgb.getcolors(maxcolors=1_000_000)
        assert colours is None or len(colours) > 200  # the map is drawn, not an empty pane
        grey = rgb.convert("L")
        assert np.asarray(grey).mean() < 110  # the dark theme is what was drawn
    args = ["--screenshot", str(tmp_path / "x.png"), "--inspect", "nope", "--model", "lpnet", str(photo)]
    assert main(args) == 2
    assert "no map 'nope'" in capsys.readouterr().err


def test_bad_file_exits_with_a_message(qtbot, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    assert main(["--screenshot", str(tmp_path / "s.png"), "--model", "lpnet", "--config", "lite", str(bad)]) == 1
    assert "bad.jpg" in capsys.readouterr().err
    assert main(["--screenshot", str(tmp_path / "s.png"), "--model", "no-such-model"]) == 2


def test_opens_on_the_sample_or_an_empty_hint(qtbot, window) -> None:
    sample = samples.default_sample("rain")  # the window's model is lpnet, a deraining network
    assert sample is not None  # the rainy sample ships (resources/samples)
    with qtbot.waitSignal(window.restore_done, timeout=60_000):
        assert window.open_sample()
    assert Path(window.doc_path) == sample.path
    assert window.settings.recent_files() == []  # the sample is not a recent file of the user's


def test_without_a_sample_the_window_shows_a_hint(qtbot, window, monkeypatch) -> None:
    monkeypatch.setattr(samples, "find_samples", lambda: [])
    assert not window.open_sample()
    assert window.banner.level == "info"
    assert "sample" in window.banner.text()
    assert window.viewer.stack.currentWidget() is window.viewer.hint
