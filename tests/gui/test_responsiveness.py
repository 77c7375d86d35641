"""The heavy work of a restore runs off the GUI thread: reading, inference and display conversions.

How long the event loop stalls and how fast a 24 MP preview comes are measured in
``benchmarks/responsiveness.py`` (timings are a benchmark's business, not a test's).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.gui.helpers import make_window, recording, write_photo

pytestmark = pytest.mark.gui


def test_reading_inference_and_conversions_run_off_the_gui_thread(qtbot, settings, tmp_path: Path, monkeypatch):
    from weatherstudio.core import image_io
    from weatherstudio.engine import restore as restore_module
    from weatherstudio.engine import session as session_module
    from weatherstudio.gui import image_convert

    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(session_module, "restore", recording(calls, "restore", session_module.restore))
    monkeypatch.setattr(restore_module, "restore_preview", recording(calls, "preview", restore_module.restore_preview))
    for name in ("diff_map", "thumbnail", "enlarge_u8"):
        monkeypatch.setattr(image_convert, name, recording(calls, name, getattr(image_convert, name)))
    monkeypatch.setattr(image_io, "read_image", recording(calls, "read_image", image_io.read_image))

    path = write_photo(tmp_path / "two_mp.png", h=1200, w=1700, exif=False)  # 2.04 MP: preview, then tiles
    window = make_window(qtbot, settings)
    window.set_mode("split")
    previews, tiles = [], []
    # connected after the window's own slots: they see the viewer right after it handled the signal
    window.worker.preview_ready.connect(lambda *a: previews.append(window.viewer.output_state))
    window.worker.tile_ready.connect(lambda *a: tiles.append(window.viewer.output_state))
    with qtbot.waitSignal(window.restore_done, timeout=120_000):
        window.open_path(path)
    # the full path ran: a downscaled preview first, then full-resolution tiles painted over it, then the result
    assert previews == ["preview"]
    assert len(tiles) > 1
    assert set(tiles) == {"partial"}
    assert window.viewer.output_state == "done"
    names = {name for name, _ in calls}
    assert {"read_image", "restore", "preview", "diff_map", "thumbnail", "enlarge_u8"} <= names
    gui_thread = threading.get_ident()
    on_gui = sorted({name for name, ident in calls if ident == gui_thread})
    assert on_gui == [], f"ran on the GUI thread: {on_gui}"
    window.close()
