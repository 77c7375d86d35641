"""The window driven as a user would: open, restore, switch views, cancel, and the error paths."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.gui.helpers import open_and_wait, write_photo
from weatherstudio.weights import shipped_weights

pytestmark = pytest.mark.gui


def test_open_restore_and_switch_modes(qtbot, window, photo: Path) -> None:
    open_and_wait(qtbot, window, photo)
    v = window.viewer
    assert v.input_u8.shape == (96, 128, 3)
    assert v.input_u8.flags.c_contiguous
    assert v.input_u8.dtype == np.uint8
    assert v.output_u8.shape == (96, 128, 3)
    assert v.output_state == "done"
    assert not np.array_equal(v.output_u8, v.input_u8)  # the network changed the picture
    assert window.result.image.dtype == np.float32
    assert window.result.image.shape == (96, 128, 3)
    assert window.windowTitle().startswith("rainy.png")
    assert "128 × 96" in window.status.size_label.text()
    assert window.status.time.text().endswith("s")
    assert window.commands["save"].isEnabled()
    assert not window.commands["cancel"].isEnabled()

    window.commands["mode_side"].trigger()
    qtbot.wait(50)  # let the layout settle (and the automatic fit run)
    assert v.mode == "side"
    assert v.left_box.isVisible()
    assert v.right_vb.linkedView(0) is v.left_vb
    assert v.right_vb.linkedView(1) is v.left_vb
    v.left_vb.setRange(xRange=(10, 50), yRange=(10, 40), padding=0)  # pan/zoom one side: the other follows
    qtbot.wait(20)
    assert v.left_vb.viewRange()[0][0] == pytest.approx(10, abs=5)
    assert v.right_vb.viewRange()[0] == pytest.approx(v.left_vb.viewRange()[0], abs=0.5)
    assert v.right_vb.viewRange()[1] == pytest.approx(v.left_vb.viewRange()[1], abs=0.5)

    window.commands["mode_split"].trigger()
    assert v.mode == "split"
    assert not v.left_box.isVisible()
    assert v.split.line.isVisible()
    v.split.line.setValue(32.0)  # drag the handle to a quarter of the width
    assert v.split.fraction == pytest.approx(0.25)
    assert v.split.clip.rect().left() == pytest.approx(32.0)

    window.commands["mode_diff"].trigger()
    assert v.mode == "diff"
    assert v.diff.isVisible()
    assert not v.output.isVisible()
    assert v.diff.image.shape == (96, 128)
    assert v.colorbar in v.right.ci.items
    assert v.diff.image.max() == pytest.approx(np.abs(window.result.image - window.loaded.rgb).max(), abs=1e-5)

    window.commands["mode_toggle"].trigger()
    assert v.mode == "toggle"
    assert v.output.isVisible()
    window.activateWindow()
    v.right.setFocus()
    qtbot.keyPress(v.right, Qt.Key.Key_Space)
    assert v.show_input
    assert not v.output.isVisible()
    assert "Input" in v.right_caption.text()
    qtbot.keyRelease(v.right, Qt.Key.Key_Space)
    assert not v.show_input
    assert v.output.isVisible()

    window.commands["zoom_1"].trigger()
    assert window.viewer.zoom_percent() == pytest.approx(100.0, rel=0.02)
    window.commands["zoom_fit"].trigger()
    x0, x1 = v.main_view().viewRange()[0]
    y0, y1 = v.main_view().viewRange()[1]
    assert x0 <= 0  # the whole image is in view
    assert x1 >= 128
    assert y0 <= 0
    assert y1 >= 96


def test_pixel_under_cursor(qtbot, window, photo: Path) -> None:
    open_and_wait(qtbot, window, photo)
    window.viewer.hovered.emit(10.5, 20.5)
    text = window.status.pixel.text()
    expected_in = " ".join(str(round(float(c) * 255)) for c in window.loaded.rgb[20, 10])
    expected_out = " ".join(str(round(float(c) * 255)) for c in window.result.image[20, 10])
    assert text == f"(10, 20)  in {expected_in}  →  out {expected_out}"
    window.viewer.hovered.emit(math.nan, math.nan)
    assert window.status.pixel.text() == ""


def test_drop_a_file_and_recent_files(qtbot, window, tmp_path: Path) -> None:
    first = write_photo(tmp_path / "first.png", seed=1)
    second = write_photo(tmp_path / "second.png", seed=2)
    open_and_wait(qtbot, window, first)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(second))])
    event = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(window.restore_done, timeout=20_000):
        window.dropEvent(event)
    assert Path(window.doc_path) == second
    recent = window.settings.recent_files()
    assert recent[:2] == [str(second.resolve()), str(first.resolve())]
    labels = [a.text() for a in window.recent_menu.actions()]
    assert labels[:2] == ["second.png", "first.png"]
    with qtbot.waitSignal(window.restore_done, timeout=20_000):
        window.recent_menu.actions()[1].trigger()  # reopen from the Recent menu
    assert Path(window.doc_path) == first


def test_untrained_model_is_labelled(qtbot, window, photo: Path) -> None:
    open_and_wait(qtbot, window, photo)
    assert not window.result.model.untrained  # LPNet ships trained weights: no warning
    assert window.banner.level != "warning"
    shipped = {(w.arch, w.config_name) for w in shipped_weights()}
    assert ("resdesnow", "lite") in shipped
    assert ("resdesnow", "paper") not in shipped  # the paper variant needs a GPU run: none ships
    with qtbot.waitSignal(window.restore_done, timeout=60_000):
        window.model_panel.set_arch("resdesnow")
    assert not window.result.model.untrained
    with qtbot.waitSignal(window.restore_done, timeout=120_000):
        window.model_panel.set_config("paper")
    assert window.result.model.untrained
    assert window.result.model.arch == "resdesnow"
    assert window.banner.level == "warning"
    assert "untrained" in window.banner.text()
    assert "Untrained (random init)" in window.model_panel.weights.currentText()


def test_restore_again_with_a_video_network_is_deterministic(qtbot, window, photo: Path) -> None:
    """J4R-Net restores a still from a fresh memory every time (it used to inherit the last run's)."""
    window.model_panel.set_arch("j4rnet")
    window.model_panel.tile.setValue(64)  # several tiles: none may inherit another's memory either
    window.debounce.stop()
    open_and_wait(qtbot, window, photo)
    first = window.result.image.copy()
    assert window.result.tiles > 1
    with qtbot.waitSignal(window.restore_done, timeout=60_000):
        window.rerun()
    assert np.array_equal(window.result.image, first)


def test_use_all_cores_sets_the_request_threads(qtbot, window) -> None:
    from weatherstudio.gui.worker import ui_friendly_threads

    window.fixed_threads = None  # as the application starts without --threads
    window.model_panel.all_cores.setChecked(True)
    assert window.request_fields()["threads"] is None  # all cores
    window.model_panel.all_cores.setChecked(False)
    assert window.request_fields()["threads"] == ui_friendly_threads()
    window.model_panel.save(window.settings)
    assert window.settings.get("all_cores") is False


def test_model_change_reruns_debounced(qtbot, window, photo: Path) -> None:
    open_and_wait(qtbot, window, photo)
    first = window.generation
    with qtbot.waitSignal(window.restore_done, timeout=20_000):
        window.model_panel.set_config("paper")
        window.model_panel.tile.setValue(64)  # two changes in a row: one restore
    assert window.generation == first + 1
    assert window.result.tiles > 1
    assert window.result.request.config == "paper"


def test_cancel_mid_run_and_latest_request_wins(qtbot, window, tmp_path: Path) -> None:
    big = write_photo(tmp_path / "big.png", h=640, w=640, exif=False)
    window.model_panel.tile.setValue(64)  # many small tiles: plenty of time to cancel between them
    window.debounce.stop()
    results = []
    window.worker.result_ready.connect(lambda gen, r: results.append(gen))
    with qtbot.waitSignal(window.worker.progress, timeout=20_000, check_params_cb=lambda g, d, t: d >= 2):
        window.open_path(big)
    assert window.running
    assert window.status.progress.isVisible()
    total = window.status.progress.maximum()
    assert total > 10
    assert 2 <= window.status.progress.value() < total
    with qtbot.waitSignal(window.worker.cancelled, timeout=20_000):
        window.commands["cancel"].trigger()
    assert not window.running
    assert not window.status.progress.isVisible()
    assert window.result is None
    assert results == []
    assert window.viewer.output_state in ("partial", "")  # what was finished stays on screen

    # Two requests in a row: the first is cancelled by the second, only the second's result is shown.
    window.model_panel.tile.setValue(0)
    window.debounce.stop()
    gen_a = window.run_restore()
    with qtbot.waitSignal(window.restore_done, timeout=30_000):
        gen_b = window.run_restore()
    qtbot.wait(50)  # let our own listener's queued call arrive too
    assert gen_b == gen_a + 1
    assert results == [gen_b]
    assert window.result.request.generation == gen_b


def test_truncated_file_gives_a_message_not_a_crash(qtbot, window, photo: Path, tmp_path: Path) -> None:
    open_and_wait(qtbot, window, photo)
    broken = tmp_path / "broken.png"
    broken.write_bytes(photo.read_bytes()[: len(photo.read_bytes()) // 2])
    with qtbot.waitSignal(window.message_shown, timeout=20_000) as blocker:
        window.open_path(broken)
    level, text = blocker.args
    assert level == "error"
    assert "broken.png" in text
    assert window.banner.level == "error"
    assert not window.running
    assert Path(window.doc_path) == photo
    assert window.result is not None  # the previous image is still there
    open_and_wait(qtbot, window, photo)  # and the window still works
    assert window.banner.level != "error"


def test_weight_file_for_another_model_gives_a_message(qtbot, window, photo: Path, tmp_path: Path) -> None:
    import torch

    from weatherstudio.models.registry import build_model, entries
    from weatherstudio.models.weightfile import save_weights

    open_and_wait(qtbot, window, photo)
    foreign = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(4, 3, 3, 3), "encoder.bias": torch.zeros(4)}, foreign)
    with qtbot.waitSignal(window.restore_failed, timeout=20_000) as blocker:
        window.model_panel.add_weight_file(foreign)
    assert "does not fit lpnet" in blocker.args[0]
    assert window.banner.level == "error"

    others = [name for name in entries() if name != "lpnet"]
    if others:  # a .safetensors made for lpnet, chosen for another model
        lp = tmp_path / "lpnet.safetensors"
        save_weights(build_model("lpnet", "lite"), lp)
        window.model_panel.set_arch(others[0])
        window.debounce.stop()
        with qtbot.waitSignal(window.restore_failed, timeout=30_000) as blocker:
            window.model_panel.add_weight_file(lp)
        assert "holds weights for 'lpnet'" in blocker.args[0]


def test_a_model_change_while_a_file_loads_restores_that_file(qtbot, window, tmp_path: Path) -> None:
    a = write_photo(tmp_path / "a.png", seed=1)
    b = write_photo(tmp_path / "b.png", h=64, w=80, seed=3)
    open_and_wait(qtbot, window, a)
    with qtbot.waitSignal(window.restore_done, timeout=20_000):
        window.open_path(b)
        window.model_panel.set_config("paper")
        window.run_restore()  # what the debounced model change does, before b has even been read
    qtbot.wait(50)
    assert Path(window.doc_path) == b
    assert window.viewer.input_u8.shape == (64, 80, 3)
    assert window.viewer.output_u8.shape == (64, 80, 3)
    assert window.result.request.config == "paper"


def test_shipped_weights_are_offered_and_used(qtbot, settings, photo: Path, tmp_path: Path, monkeypatch) -> None:
    import weatherstudio.weights as shipped
    from tests.gui.helpers import make_window
    from weatherstudio.models.registry import build_model
    from weatherstudio.models.weightfile import save_weights

    folder = tmp_path / "weights"
    folder.mkdir()
    save_weights(build_model("lpnet", "lite"), folder / "lpnet_lite.safetensors", {"config_name": "lite"})
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", folder)
    window = make_window(qtbot, settings)
    panel = window.model_panel
    labels = [panel.weights.itemText(i) for i in range(panel.weights.count())]
    assert labels[0].startswith("lpnet_lite.safetensors")
    assert not any("Untrained" in t for t in labels)
    assert panel.weight_choice() == str(folder / "lpnet_lite.safetensors")
    open_and_wait(qtbot, window, photo)
    assert not window.result.model.untrained
    assert window.banner.level != "warning"
    assert "lpnet_lite.safetensors" in panel.status.text()
    panel.set_config("paper")  # no paper weights ship: untrained is offered, and labelled
    assert panel.is_untrained()
    assert "random weights" in panel.status.text()
    window.close()


def test_open_through_the_file_dialog(qtbot, window, photo: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit

    window.settings.set("last_folder", str(photo.parent))
    seen = {}

    def choose() -> None:  # type the file name into Qt's file dialog and press Open, as a user would
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            seen["error"] = f"no file dialog: {dialog!r}"
            if dialog is not None:
                dialog.reject()
            return
        seen["folder"] = dialog.directory().absolutePath()
        dialog.findChild(QLineEdit, "fileNameEdit").setText(photo.name)
        dialog.accept()

    QTimer.singleShot(300, choose)
    with qtbot.waitSignal(window.restore_done, timeout=20_000):
        window.commands["open"].trigger()
    assert "error" not in seen, seen.get("error")
    assert seen["folder"] == str(photo.parent)
    assert Path(window.doc_path) == photo
