"""The map inspector: thumbnails per group, a map opened large, values under the cursor, and exports."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.gui.helpers import open_and_wait
from weatherstudio.core.map_codec import decode_u16

pytestmark = pytest.mark.gui


def test_every_map_has_a_thumbnail_grouped(qtbot, window, photo: Path) -> None:
    open_and_wait(qtbot, window, photo)
    insp = window.inspector
    specs = window.result.specs
    assert set(insp.strip.buttons) == set(window.result.maps) == set(specs)
    assert len(specs) == 10  # LPNet: 5 input Laplacian levels, 5 output Gaussian levels
    titles = [w.text() for w in insp.strip.widget().findChildren(type(insp.title)) if w.objectName() == "sectionTitle"]
    assert titles == ["input pyramid", "output pyramid"]
    icon = insp.strip.buttons["input_level1"].icon().pixmap(88, 88)
    assert max(icon.width(), icon.height()) == 88  # a 1/16-scale level is enlarged, not a speck


def test_open_a_map_large_with_its_values(qtbot, window, photo: Path) -> None:
    open_and_wait(qtbot, window, photo)
    insp = window.inspector
    window.commands["tab_maps"].trigger()
    assert window.tabs.currentWidget() is insp
    qtbot.mouseClick(insp.strip.buttons["input_level3"], Qt.MouseButton.LeftButton)
    assert insp.current == "input_level3"
    assert insp.strip.buttons["input_level3"].isChecked()
    arr = window.result.maps["input_level3"]
    assert arr.shape == (24, 32, 3)  # 1/4 of 96 × 128
    assert insp.item.image.shape == (24, 32, 3)
    rect = insp.item.mapRectToParent(insp.item.boundingRect())
    assert rect.width() == pytest.approx(128)  # map drawn in input pixels
    assert rect.height() == pytest.approx(96)
    assert "1/4 scale" in insp.info.text()
    assert "range [-0.5, 0.5]" in insp.info.text()
    # the cursor at input pixel (50, 30) reads map pixel (12, 7)
    np.testing.assert_array_equal(insp.value_at(50.3, 30.9), arr[7, 12])
    assert insp.value_at(500, 30) is None
    # one channel with a colour map, then all three again
    insp.channel.setCurrentIndex(2)  # G
    assert insp.item.image.shape == (24, 32)
    assert insp.colormap.isEnabled()
    np.testing.assert_array_equal(insp.item.image, arr[..., 1])
    lo, hi = insp.hist.getLevels()
    assert lo < 0 < hi  # a signed map: levels symmetric about 0
    insp.colormap.setCurrentIndex(insp.colormap.findData("viridis"))
    insp.stretch.setChecked(False)
    assert insp.hist.getLevels() == pytest.approx((-0.5, 0.5))  # the spec's value range
    assert insp.colormap.currentData() == "viridis"  # the user's colour map stays while they adjust the view
    lut = insp.item.lut(insp.item.image) if callable(insp.item.lut) else insp.item.lut
    assert lut is not None
    assert tuple(lut[-1][:3]) == pytest.approx((253, 231, 37), abs=12)  # viridis ends yellow
    insp.channel.setCurrentIndex(0)
    assert insp.item.image.shape == (24, 32, 3)
    assert not insp.colormap.isEnabled()


def test_inspector_shares_zoom_and_pan_with_the_viewer(qtbot, window, photo: Path) -> None:
    open_and_wait(qtbot, window, photo)
    v = window.viewer
    qtbot.wait(30)
    v.main_view().setRange(xRange=(20, 60), yRange=(20, 50), padding=0)
    v.auto_fit = False
    centre = v.main_view().viewRect().center()
    window.show_maps()
    window.inspector.select("output_level5")
    qtbot.wait(50)
    got = window.inspector.vb.viewRect().center()
    assert (got.x(), got.y()) == pytest.approx((centre.x(), centre.y()), abs=1.0)


def test_export_selected_and_all_maps(qtbot, window, photo: Path, tmp_path: Path) -> None:
    open_and_wait(qtbot, window, photo)
    insp = window.inspector
    insp.select("input_level5")  # full-size Laplacian detail: signed, (−0.5, 0.5)
    arr = window.result.maps["input_level5"]
    out = tmp_path / "export"
    out.mkdir()
    npy, meta = insp.export_selected(out / "detail.npy")
    np.testing.assert_array_equal(np.load(npy), arr)
    png, png_meta = insp.export_selected(out / "detail.png")
    stored = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16
    assert stored.shape == arr.shape
    side = json.loads(png_meta.read_text())
    assert side["value_range"] == [-0.5, 0.5]
    assert side["map"]["kind"] == "pyramid"
    assert "65535" in side["encoding"]
    assert side["source"] == str(photo)
    assert side["model"] == "lpnet"
    decoded = decode_u16(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB), tuple(side["value_range"]))
    np.testing.assert_allclose(decoded, np.clip(arr, -0.5, 0.5), atol=1.0 / 65535 + 1e-6)
    assert abs(int(stored[0, 0, 0]) - 32768) < 32768  # signed data stored with an offset, 0 ↦ mid-scale

    with pytest.raises(OSError, match="already exists"):
        insp.export_selected(out / "detail.npy")
    files = insp.export_all(out, ".tif")
    images = sorted(p.name for p in files if p.suffix == ".tif")
    assert len(images) == 10
    assert "rainy_output_level1.tif" in images
    assert all(p.exists() for p in files)
    assert len(files) == 20  # each with its sidecar
    assert window.commands["export_maps"].isEnabled()


def test_maps_of_a_very_large_image_come_from_a_smaller_copy(qtbot, window, photo: Path, monkeypatch) -> None:
    from weatherstudio.engine import session as worker

    monkeypatch.setattr(worker, "MAPS_FULL_RES_MAX_PIXELS", 5_000)  # the 96 × 128 photo counts as "very large"
    monkeypatch.setattr(worker, "MAPS_PIXELS", 3_072)  # → a 48 × 64 copy
    open_and_wait(qtbot, window, photo)
    result = window.result
    assert result.image.shape == (96, 128, 3)  # the restored image is still full size
    assert result.maps["input_level5"].shape == (48, 64, 3)
    assert result.specs["input_level5"].scale == pytest.approx(0.5)
    assert result.specs["input_level1"].scale == pytest.approx(0.5 / 16)
    assert any("maps computed on a 64×48 copy" in n for n in result.notes)
    insp = window.inspector
    insp.select("input_level5")
    rect = insp.item.mapRectToParent(insp.item.boundingRect())
    assert rect.width() == pytest.approx(128)  # still over the input
    assert rect.height() == pytest.approx(96)
    np.testing.assert_array_equal(insp.value_at(51.0, 31.0), result.maps["input_level5"][15, 25])
