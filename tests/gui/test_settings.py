"""Settings persist across windows (in a temporary store), with typed defaults; the theme follows a menu choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from tests.gui.helpers import make_window, open_and_wait
from weatherstudio.gui import theme
from weatherstudio.gui.settings import DEFAULTS, Settings

pytestmark = pytest.mark.gui


def test_typed_defaults_and_coercion(tmp_path: Path) -> None:
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    s = Settings(store)
    assert s.get("tile") == 0
    assert s.get("fp16") is True
    assert s.get("recent_files") == []
    store.setValue("fp16", "false")  # what an INI file gives back
    store.setValue("tile", "256")
    store.setValue("overlap", "not a number")
    assert s.get("fp16") is False
    assert s.get("tile") == 256
    assert s.get("overlap") == DEFAULTS["overlap"]
    with pytest.raises(KeyError, match="unknown setting 'no_such_key'"):
        s.set("no_such_key", 1)
    for i in range(12):
        s.add_recent(tmp_path / f"{i}.png")
    assert len(s.recent_files()) == 10
    assert s.recent_files()[0].endswith("11.png")


def test_settings_persist_across_windows(qtbot, settings: Settings, photo: Path) -> None:
    first = make_window(qtbot, settings)
    open_and_wait(qtbot, first, photo)
    first.model_panel.set_config("paper")
    first.model_panel.tile.setValue(256)
    first.model_panel.overlap.setValue(32)
    first.model_panel.maps.setChecked(False)
    assert first.request_fields()["align_memory"]  # on by default
    first.model_panel.align.setChecked(False)
    assert first.request_fields()["align_memory"] is False
    backends = [first.model_panel.backend.itemData(i) for i in range(first.model_panel.backend.count())]
    assert backends[:2] == ["auto", "torch"]  # then each runtime installed here
    first.model_panel.backend.setCurrentIndex(backends.index("torch"))
    assert first.request_fields()["backend"] == "torch"
    first.debounce.stop()
    first.set_mode("diff")
    first.set_theme("dark")
    first.resize(900, 640)
    first.close()

    second = make_window(qtbot, Settings(QSettings(settings.store.fileName(), QSettings.Format.IniFormat)))
    second.debounce.stop()
    p = second.model_panel
    assert p.arch() == "lpnet"
    assert p.tile.value() == 256
    assert p.overlap.value() == 32
    assert not p.maps.isChecked()
    assert not p.align.isChecked()
    assert p.backend.currentData() == "torch"
    assert second.viewer.mode == "diff"
    assert second.commands["mode_diff"].isChecked()
    assert second.settings.get("theme") == "dark"
    assert second.settings.get("last_folder") == str(photo.parent)
    assert second.settings.recent_files() == [str(photo.resolve())]
    assert [a.text() for a in second.recent_menu.actions()][0] == photo.name
    assert second.settings.get("geometry").size() > 0
    second.close()


def test_theme_menu_overrides_the_system(qtbot, window) -> None:
    app = QApplication.instance()
    window.commands["theme_dark"].trigger()
    assert window.theme == "dark"
    assert app.palette().window().color().lightness() < 100
    assert window.settings.get("theme") == "dark"
    window.commands["theme_light"].trigger()
    assert app.palette().window().color().lightness() > 200
    window.commands["theme_system"].trigger()
    expected = "dark" if theme.system_is_dark() else "light"
    assert theme.resolve("system") == expected
    assert window.theme == "system"
