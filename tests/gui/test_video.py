"""The studio with a video: open → scrub → the restored frame shown → play → export (with sound) → cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from tests.test_video_io import _clip  # noqa: E402
from weatherstudio.core.video_io import VideoReader  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return _clip(tmp_path / "rainy.mp4", n=10, size=(48, 64))


def _open(qtbot, window, path: Path) -> None:
    window.model_panel.set_arch("lpnet")
    window.debounce.stop()
    with qtbot.waitSignal(window.restore_done, timeout=60_000):
        window.open_path(path)


def test_open_scrub_and_see_the_restored_frame(qtbot, window, clip: Path) -> None:
    _open(qtbot, window, clip)
    assert window.timeline.isVisible()
    assert window.timeline.count == 10
    assert window.result.request.frame == 0
    assert window.commands["export_video"].isEnabled()
    with VideoReader(clip) as reader:
        frame6 = reader.frame(6)
    decoded = []
    window.decoder.frame_ready.connect(lambda p, i, u8, loaded: decoded.append(i))
    with qtbot.waitSignal(window.restore_done, timeout=60_000):
        window.timeline.set_frame(6, emit=True)  # as a drag of the slider ends on frame 6
    assert 6 in decoded  # the input frame came from the decoder thread
    assert window.result.request.frame == 6
    assert np.array_equal(window.loaded.rgb, frame6)  # the viewer's input is frame 6
    assert np.array_equal(window.viewer.output_u8, window.result.display)
    assert window.timeline.strip.ready == {0, 6}
    # a cached frame shows at once when the user comes back to it
    window.timeline.set_frame(0, emit=True)
    assert np.array_equal(window.viewer.output_u8, window.frame_cache[0])


def test_play_restores_ahead_and_stops_at_the_end(qtbot, window, clip: Path) -> None:
    _open(qtbot, window, clip)
    window.timeline.set_frame(6, emit=False)
    window.set_playing(True)
    qtbot.waitUntil(lambda: not window.play_timer.isActive(), timeout=60_000)
    assert window.timeline.frame == 9
    assert {7, 8, 9} <= set(window.frame_cache)


def test_export_keeps_the_sound_and_cancel_leaves_nothing(qtbot, window, clip: Path, tmp_path: Path) -> None:
    _open(qtbot, window, clip)
    out = tmp_path / "clean.mp4"
    worker = window.start_export(out, "h264", 20, "0:10")
    with qtbot.waitSignal(worker.finished_export, timeout=120_000) as blocker:
        pass
    assert blocker.args[0] == str(out)
    assert "kept audio (aac)" in blocker.args[1]
    with VideoReader(out) as r:
        assert r.frame_count == 10
        assert r.info.streams[0].kind == "audio"
    never = tmp_path / "never.mp4"
    worker = window.start_export(never, "h264", 20, "0:10")
    worker.cancel()
    with qtbot.waitSignal(worker.finished_export, timeout=60_000) as blocker:
        pass
    assert blocker.args[0] == ""
    assert "cancelled" in blocker.args[1]
    assert not never.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]  # no half file either


def test_a_broken_video_is_one_message(qtbot, window, tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    window.model_panel.set_arch("lpnet")
    with qtbot.waitSignal(window.restore_failed, timeout=30_000) as blocker:
        window.open_path(bad)
    assert "broken.mp4: not a video FFmpeg can read" in blocker.args[0]


def test_a_broken_video_after_a_good_one_keeps_the_good_one(qtbot, window, clip: Path, tmp_path: Path) -> None:
    _open(qtbot, window, clip)
    bad = tmp_path / "notes.mp4"
    bad.write_text("text, not a video")
    with qtbot.waitSignal(window.restore_failed, timeout=30_000):
        window.open_path(bad)
    assert window.video_path == str(clip)
    assert window.timeline.count == 10
    with qtbot.waitSignal(window.restore_done, timeout=60_000):
        window.timeline.set_frame(3, emit=True)
    assert window.result.request.frame == 3


def test_the_export_dialog_offers_encoder_speeds_where_the_codec_has_them(qtbot, clip: Path) -> None:
    from weatherstudio.gui.video_export import ExportDialog

    dialog = ExportDialog(clip, 10)
    qtbot.addWidget(dialog)
    dialog.codec.setCurrentIndex(dialog.codec.findData("prores"))
    assert not dialog.speed.isEnabled()  # ProRes and FFV1 have one speed
    assert dialog.path.text().endswith(".mov")
    dialog.codec.setCurrentIndex(dialog.codec.findData("h264"))
    assert dialog.speed.isEnabled()
    dialog.speed.setCurrentIndex(dialog.speed.findData("small"))
    out, codec, quality, span, overwrite, speed = dialog.values()
    assert (codec, speed, span, overwrite) == ("h264", "small", "0:10", False)
    assert out.suffix == ".mov" and not out.exists()  # H.264 fits the .mov the ProRes choice suggested


def test_auto_on_a_clear_video_says_the_video_is_kept_as_it_is(qtbot, window, tmp_path: Path) -> None:
    """Auto judges the clip (frames spread over it) and tells the user a clear video is left as it is."""
    import cv2

    from weatherstudio.samples import default_sample

    clean = Path(default_sample("rain").clean).parent / "rainy_coffee_clip"
    frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(clean.glob("frame_*.jpg"))[:6]]
    path = tmp_path / "clear.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.height, stream.width = (s // 2 * 2 for s in frames[0].shape[:2])
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: stream.height, : stream.width]), "rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    window.model_panel.set_arch("auto")
    window.debounce.stop()
    with qtbot.waitSignal(window.restore_done, timeout=60_000):
        window.open_path(path)
    assert window.result.model is None and window.result.decision.video
    assert window.banner.level == "info"
    assert window.banner.text().startswith("This video looks clear (")
    assert "frames kept as they are" in window.banner.text()
