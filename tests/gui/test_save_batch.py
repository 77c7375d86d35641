"""Saving the result (format, bit depth, metadata, never over the input) and batch-restoring a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog

from tests.gui.helpers import CAMERA, open_and_wait, write_photo
from weatherstudio.gui.save_dialog import SaveDialog

pytestmark = pytest.mark.gui


def test_save_keeps_exif_and_never_overwrites_the_input(qtbot, window, tmp_path: Path) -> None:
    src = write_photo(tmp_path / "street.jpg")
    before = src.read_bytes()
    open_and_wait(qtbot, window, src)
    out = window.save_result(tmp_path / "street_clean.jpg", quality=90)
    assert out is not None
    assert out.exists()
    with Image.open(out) as im:
        assert im.format == "JPEG"
        assert im.size == (128, 96)
        assert im.getexif()[0x010F] == CAMERA  # EXIF survived
    png16 = window.save_result(tmp_path / "street_clean.png", bit_depth=16)
    from weatherstudio.core.image_io import read_image

    back = read_image(png16)
    assert back.bit_depth == 16
    assert back.exif
    assert CAMERA.encode() in back.exif
    np.testing.assert_allclose(back.rgb, window.result.image, atol=1 / 65535 + 1e-6)

    with qtbot.waitSignal(window.message_shown) as blocker:
        assert window.save_result(src) is None
    assert blocker.args[0] == "error"
    assert "input" in blocker.args[1]
    assert src.read_bytes() == before  # the photo is untouched


def test_save_through_the_dialog(qtbot, window, photo: Path) -> None:
    open_and_wait(qtbot, window, photo)
    seen = {}

    def fill() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, SaveDialog)
        seen["suggested"] = dialog.path.text()
        dialog.format.setCurrentIndex(dialog.format.findData("tiff"))
        dialog.depth.setCurrentIndex(dialog.depth.findData(16))
        seen["path"] = dialog.path.text()
        dialog.done(QDialog.DialogCode.Accepted)

    QTimer.singleShot(100, fill)
    window.commands["save"].trigger()
    assert seen["suggested"] == str(photo.with_name("rainy_restored.png"))
    assert seen["path"] == str(photo.with_name("rainy_restored.tif"))
    from weatherstudio.core.image_io import read_image

    saved = read_image(seen["path"])
    assert saved.format == "TIFF"
    assert saved.bit_depth == 16
    assert saved.rgb.shape == (96, 128, 3)
    assert window.settings.get("save_format") == "tiff"
    assert window.settings.get("save_bit_depth") == 16


def test_batch_a_folder(qtbot, window, tmp_path: Path) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(3):
        write_photo(folder / f"img{i}.png", seed=i)
    (folder / "notes.txt").write_text("not an image")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "clean"
    worker = window.start_batch(folder, out)
    assert worker is not None
    assert window.batch_progress.isVisible()
    with qtbot.waitSignal(worker.done, timeout=30_000) as blocker:
        pass
    ok, failed, cancelled = blocker.args
    assert (ok, failed, cancelled) == (3, 1, False)
    assert sorted(p.name for p in out.iterdir()) == ["img0_restored.png", "img1_restored.png", "img2_restored.png"]
    with Image.open(out / "img1_restored.png") as im:
        assert im.size == (128, 96)
        assert im.getexif().get(0x010F) == CAMERA
    assert "bad.png" in window.batch_progress.labelText()
    assert window.banner.level == "error"  # the failed file is reported


def test_batch_can_be_cancelled(qtbot, window, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QPushButton

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        write_photo(folder / f"p{i}.png", h=256, w=256, seed=i, exif=False)
    window.model_panel.tile.setValue(64)
    worker = window.start_batch(folder, tmp_path / "out")
    finished = []
    worker.done.connect(lambda *args: finished.append(args))
    with qtbot.waitSignal(worker.progress, timeout=30_000, check_params_cb=lambda i, n, name, d, t: d >= 1):
        pass
    cancel = window.batch_progress.findChild(QPushButton)
    assert cancel.text() == "Cancel"
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(finished), timeout=30_000)
    ok, failed, cancelled = finished[0]
    assert cancelled
    assert ok < 6
    assert failed == 0
    assert len(list((tmp_path / "out").iterdir())) == ok
    assert window.batch_progress.labelText().startswith("Cancelled")


def test_a_batch_of_frames_equals_remove_on_the_same_folder(qtbot, window, tmp_path: Path) -> None:
    """The window's batch and ``weatherstudio remove`` are one engine loop: J4R-Net's memory carried alike."""
    from weatherstudio.cli import main
    from weatherstudio.core.image_io import read_image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        write_photo(frames / f"f{i:02d}.png", h=48, w=64, seed=i, exif=False)
    window.model_panel.set_arch("j4rnet")
    window.debounce.stop()
    worker = window.start_batch(frames, tmp_path / "gui")
    with qtbot.waitSignal(worker.done, timeout=60_000) as blocker:
        pass
    assert blocker.args == [3, 0, False]
    assert main(["remove", str(frames), "-o", str(tmp_path / "cli"), "--model", "j4rnet"]) == 0
    for i in range(3):
        gui = read_image(tmp_path / "gui" / f"f{i:02d}_restored.png").rgb
        cli = read_image(tmp_path / "cli" / f"f{i:02d}.png").rgb
        assert np.array_equal(gui, cli), f"frame {i} differs"
