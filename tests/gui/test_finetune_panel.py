"""The Fine-tune panel driven as a user would: preview the held-out pair, start, watch, pause, stop, use the
weights; bad data is a message in the panel; closing mid-run asks, then stops and joins the run.

Real fine-tuning (resdesnow on a handful of small night photos, snow synthesized), on one CPU thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.gui.helpers import make_window, recording
from tests.test_finetune import night_photos

pytestmark = pytest.mark.gui

STEPS = 200  # more than the tests let run: they stop it (a validation every 40 steps)


@pytest.fixture(autouse=True)
def user_weights(tmp_path: Path, monkeypatch) -> Path:
    """Fine-tuned files go to a temporary user data folder, never the real one."""
    folder = tmp_path / "user_weights"
    monkeypatch.setenv("WEATHERSTUDIO_USER_WEIGHTS", str(folder))
    return folder


@pytest.fixture
def studio(qtbot, settings):
    """The window (worker threads: one core left to the GUI) with its Fine-tune panel open on resdesnow."""
    window = make_window(qtbot, settings)
    panel = window.finetune_panel
    panel.confirm_stop = lambda: True  # a test that leaves a run going must not meet a modal question
    window.finetune_panel.action.trigger()
    panel.set_network("resdesnow")
    panel.project_test.setChecked(False)
    panel.steps.setValue(STEPS)
    panel.crop.setValue(48)
    yield window, panel
    window.close()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return night_photos(tmp_path / "night", 6)


def _points(curve) -> int:
    """How many points a pyqtgraph curve draws."""
    return 0 if curve.xData is None else len(curve.xData)


def test_preview_start_stop_and_use_the_weights(qtbot, studio, photos: Path, user_weights: Path, monkeypatch) -> None:
    from weatherstudio.engine import finetune, training
    from weatherstudio.gui import finetune_worker

    calls: list[tuple[str, int]] = []  # the heavy calls, and the thread each ran on
    monkeypatch.setattr(finetune.Finetuner, "__init__", recording(calls, "prepare", finetune.Finetuner.__init__))
    monkeypatch.setattr(training.Trainer, "train", recording(calls, "train", training.Trainer.train))
    monkeypatch.setattr(training.Trainer, "validate", recording(calls, "validate", training.Trainer.validate))
    monkeypatch.setattr(finetune_worker, "thumbnail_u8", recording(calls, "thumbnail", finetune_worker.thumbnail_u8))
    window, panel = studio
    assert panel.dock.isVisible()
    assert panel.start_label.text().startswith("Starts from resdesnow_")  # the shipped file (model panel: lpnet)
    panel.set_photos(photos, "snow", "large")
    with qtbot.waitSignal(panel.preview_shown, timeout=30_000):
        panel.preview_button.click()
    assert "5 images train, 1 held out" in panel.description.text()
    assert panel.thumbs["degraded"].u8.shape[2] == 3 and panel.thumbs["clean"].u8 is not None
    assert panel.thumbs["restored"].u8 is None

    panel.start_button.click()
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    # the loss curve fills, and a validation during training (not only the starting score) is drawn
    qtbot.waitUntil(lambda: _points(panel.loss_raw) > 3 and _points(panel.psnr_curve) >= 2, timeout=60_000)
    assert panel.thumbs["restored"].u8 is not None and "dB" in panel.thumbs["restored"].caption.text()
    assert "steps/s" in panel.rate.text() and "left" in panel.rate.text()
    assert 0 < panel.progress.value() < STEPS

    with qtbot.waitSignal(panel.run_finished, timeout=20_000) as blocker:
        panel.stop_button.click()  # the next step stops it; then a validation and the file
    result = blocker.args[0].result
    assert result.stopped and 0 < result.steps < STEPS
    assert result.output.parent == user_weights and result.output.is_file()
    assert "→" in panel.summary.text() and result.output.name in panel.output_label.toolTip()
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    # the window stayed free: reading the data, training, scoring and thumbnails all ran off the GUI thread
    assert {"prepare", "train", "validate", "thumbnail"} <= {name for name, _ in calls}
    gui_thread = threading.get_ident()
    on_gui = sorted({name for name, ident in calls if ident == gui_thread})
    assert on_gui == [], f"ran on the GUI thread: {on_gui}"

    assert panel.use_button.isEnabled()
    panel.use_button.click()
    mp = window.model_panel
    assert mp.arch() == "resdesnow" and mp.weight_choice() == str(result.output)
    assert "fine-tuned" in mp.weights.currentText()
    assert panel.start_weights() == result.output  # a next run would go on from the fine-tuned file


def test_pause_holds_the_run_and_resume_goes_on(qtbot, studio, photos: Path) -> None:
    window, panel = studio
    panel.set_photos(photos)  # the network's weather and first preset
    scored = panel.project_test.isVisibleTo(panel)  # a source checkout with the project's data
    panel.project_test.setChecked(scored)
    panel.start()
    qtbot.waitUntil(lambda: panel.step >= 3, timeout=60_000)
    panel.pause_button.click()
    assert panel.state == "paused" and panel.pause_button.text() == "Resume"
    qtbot.wait(300)  # the step in flight ends
    held = panel.step
    qtbot.wait(700)
    assert panel.step == held, "a paused run went on"
    assert panel.rate.text().startswith("Paused")
    panel.pause_button.click()
    assert panel.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: panel.step >= held + 3, timeout=30_000)
    with qtbot.waitSignal(panel.run_finished, timeout=20_000):
        panel.stop()
    assert panel.outcome.result.stopped
    if scored:  # what the run forgot elsewhere: the project's test photos before and after
        assert "Project test photos" in panel.summary.text()


def test_bad_data_is_a_message_in_the_panel(qtbot, studio, tmp_path: Path) -> None:
    window, panel = studio
    panel.preview()  # no folder chosen: said at once, no thread
    assert "Choose the folder" in panel.message()
    empty = tmp_path / "empty"
    empty.mkdir()
    panel.set_photos(empty)
    with qtbot.waitSignal(panel.run_failed, timeout=30_000) as blocker:
        panel.preview()
    assert "no images" in blocker.args[0] and panel.message() == blocker.args[0]
    assert panel.state == "idle" and panel.start_button.isEnabled()
    with qtbot.waitSignal(panel.run_failed, timeout=30_000):
        panel.start()  # Start with the same data: the same message, and the panel ready again
    assert "no images" in panel.message() and panel.start_button.isEnabled()
    panel.lr.setText("5")
    panel.preview()
    assert "Learning rate" in panel.message()
    panel.lr.clear()
    panel.set_pairs(tmp_path / "rainy", empty)  # paired folders: their rows replace the photos' rows
    assert panel.clean.isVisibleTo(panel) and not panel.photos.isVisibleTo(panel)
    panel.preview()
    assert panel.message() == f"{tmp_path / 'rainy'}: no such folder"
    assert window.banner.level == ""  # the window's own banner is left alone


def test_closing_mid_run_asks_then_stops_and_joins(qtbot, studio, photos: Path, user_weights: Path) -> None:
    window, panel = studio
    asked: list[bool] = []
    answer = [False]
    panel.confirm_stop = lambda: asked.append(True) or answer[0]
    panel.set_photos(photos, "snow", "large")
    panel.start()
    qtbot.waitUntil(lambda: panel.step >= 2, timeout=60_000)
    window.close()  # "No": the window stays and the run goes on
    assert asked == [True] and window.isVisible() and panel.is_running()
    answer[0] = True
    window.close()
    assert len(asked) == 2 and not window.isVisible()
    assert not panel.worker().isRunning()  # joined
    assert [p.suffix for p in user_weights.iterdir()] == [".safetensors"]  # the best weights were saved
