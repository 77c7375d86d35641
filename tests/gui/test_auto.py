"""Auto in the studio: the weather classifier picks the network, the panel says what and how sure, a clear
photo is shown unchanged, and choosing a network overrides it."""

from __future__ import annotations

import numpy as np
import pytest

from weatherstudio import samples

pytestmark = pytest.mark.gui


def test_auto_restores_snow_with_the_snow_network_and_says_so(qtbot, window) -> None:
    snowy = samples.default_sample("snow")
    assert snowy is not None
    window.model_panel.set_arch("auto")
    window.debounce.stop()
    assert not window.model_panel.weights.isEnabled()  # chosen per photo
    with qtbot.waitSignal(window.restore_done, timeout=120_000):
        window.open_path(snowy.path)
    assert window.result.model.arch == "resdesnow"
    assert window.result.decision.guess.weather == "snow"
    status = window.model_panel.status.text()
    assert status.startswith("Auto: snow (")
    assert "→ resdesnow" in status
    assert window.result.notes[0].startswith("auto: snow (")
    # the user overrides the choice: the same photo with the rain network
    with qtbot.waitSignal(window.restore_done, timeout=60_000):
        window.model_panel.set_arch("lpnet")
    assert window.result.model.arch == "lpnet"
    assert window.result.decision.guess is None


def test_a_clear_photo_is_shown_unchanged(qtbot, window, tmp_path) -> None:
    sample = samples.default_sample("rain")
    clear = tmp_path / "clear.jpg"
    clear.write_bytes(sample.clean.read_bytes())
    window.model_panel.set_arch("auto")
    window.debounce.stop()
    with qtbot.waitSignal(window.restore_done, timeout=60_000):
        window.open_path(clear)
    assert window.result.model is None
    assert np.array_equal(window.result.image, window.loaded.rgb)
    assert window.banner.level == "info"
    assert "passed through unchanged" in window.banner.text()
    assert "passed through unchanged" in window.status.currentMessage()
