"""The window's video commands: a video opens like a photo; the timeline scrubs it (the input frame decoded
off the GUI thread and shown at once, the restored frame as soon as the worker has it, latest request wins),
plays the restored result over a range from a bounded cache, and exports it with its sound.

All the work is the session's (:meth:`~weatherstudio.engine.session.Session.restore_image` with ``frame_of``,
:meth:`~weatherstudio.engine.session.Session.restore_video`); this module only schedules it and shows it.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer

from weatherstudio.core.video_io import is_video_file
from weatherstudio.gui.timeline import Timeline
from weatherstudio.gui.worker import FrameDecoder

#: Restored frames kept for playback and scrubbing back (as 8-bit display copies).
CACHE_BYTES = 768 * 2**20
#: The restore of the frame under the slider starts once the slider has rested this long.
RESTORE_DEBOUNCE_MS = 120


def is_video(path: str | Path) -> bool:
    """A video file by name, or an animated GIF (a still GIF opens as a photo)."""
    return is_video_file(path)


class VideoCommands:
    """Mixed into :class:`~weatherstudio.gui.main_window.MainWindow`."""

    def _init_video(self: Any) -> None:
        self.timeline = Timeline()
        self.timeline.hide()
        self.video_path = ""
        self.video_info: Any = None
        self.frame_cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.decoder = FrameDecoder(self)
        self.decoder.frame_ready.connect(self._on_frame_decoded)
        self.decoder.keyframe_ready.connect(self._on_keyframe)
        self.decoder.failed.connect(lambda _p, i, msg: self.show_message("error", f"Frame {i}: {msg}"))
        self.decoder.start()
        self.frame_debounce = QTimer(self, singleShot=True, interval=RESTORE_DEBOUNCE_MS)
        self.frame_debounce.timeout.connect(self._restore_current_frame)
        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._play_tick)
        self.timeline.seek.connect(self.seek_frame)
        self.timeline.play_toggled.connect(self.set_playing)
        self.exports: list[Any] = []
        self._pending_frame: int | None = None  # the frame playback asked the worker for

    # Opening ------------------------------------------------------------------------------------------------
    def current_frame(self: Any) -> int | None:
        """The frame a request restores (None for a photo)."""
        return self.timeline.frame if self.video_path and self.requested_path == self.video_path else None

    def open_video(self: Any, path: str) -> None:
        self.set_playing(False)
        if path != self.video_path:
            self._before_video = (self.video_path, self.video_info, self.timeline.frame, dict(self.frame_cache))
            self.frame_cache.clear()
            self.video_info = None
        self.video_path = path
        self.timeline.set_frame(0)

    def video_open_failed(self: Any) -> None:
        """A new video could not be read: back to what was shown before (a photo, or the previous video)."""
        if self.video_info is not None:
            return
        path, info, frame, cache = getattr(self, "_before_video", ("", None, 0, {}))
        self.video_path, self.video_info = path, info
        self.frame_cache = OrderedDict(cache)
        if info is not None:
            self.timeline.set_video(info.frame_count, info.fps, self._timestamps(info))
            self.timeline.set_frame(frame)
            self.timeline.set_ready(self.frame_cache)
        else:
            self.timeline.hide()

    def _on_video_loaded(self: Any, loaded: Any) -> bool:
        """A frame the restore worker read; returns whether the video is new (the viewer then fits it)."""
        new = self.video_info is None or Path(self.video_info.path) != Path(loaded.path)
        if new:
            info = loaded.video
            self.video_info = info
            self.timeline.set_video(info.frame_count, info.fps, self._timestamps(info))
            self.timeline.set_frame(loaded.frame)  # a video opened at a given frame (--frame N)
            self.timeline.show()
            for note in info.notes:
                self.show_message("warning", f"{Path(info.path).name}: {note}")
        return new

    def _timestamps(self: Any, info: Any) -> list[float]:
        try:
            reader = self.decoder.session.video(info.path)  # the decoder's own reader (it is idle here)
            return [float(p * info.time_base) - float(reader.timestamps[0] * info.time_base) for p in reader.timestamps]
        except Exception:  # noqa: BLE001 - only the labels need them
            return []

    def leave_video(self: Any) -> None:
        """A photo was opened: the timeline goes away."""
        self.set_playing(False)
        self.video_path = ""
        self.video_info = None
        self.frame_cache.clear()
        self.timeline.hide()

    # Scrubbing ----------------------------------------------------------------------------------------------
    def seek_frame(self: Any, index: int) -> None:
        """The user moved to frame ``index``: the input at once, the restored frame when ready."""
        if not self.video_path:
            return
        self.decoder.request(self.video_path, index)
        if index in self.frame_cache:
            self.frame_cache.move_to_end(index)
            self.viewer.set_output(self.frame_cache[index], "done")
        if not self.play_timer.isActive():
            self.frame_debounce.start()

    def _on_frame_decoded(self: Any, path: str, index: int, u8: np.ndarray, loaded: Any) -> None:
        if path != self.video_path or index != self.timeline.frame:
            return  # the slider has moved on
        self.loaded = loaded
        self.viewer.set_input(u8, fit=False)
        if index not in self.frame_cache and self.viewer.output_state == "done":
            self.viewer.clear_output()  # never show another frame's result over this one

    def _on_keyframe(self: Any, path: str, index: int, u8: np.ndarray) -> None:
        """While the exact frame decodes, the keyframe before it (a few frames off) keeps the picture moving."""
        if path == self.video_path and index == self.timeline.frame:
            self.viewer.set_input(u8, fit=False)

    def _restore_current_frame(self: Any) -> None:
        if self.video_path:
            self.run_restore(self.video_path)

    def _cache_result(self: Any, result: Any) -> None:
        index = result.request.frame
        if index is None or result.request.path != self.video_path:
            return
        self.frame_cache[index] = result.display
        self.frame_cache.move_to_end(index)
        per_frame = max(1, result.display.nbytes)
        while len(self.frame_cache) > max(2, CACHE_BYTES // per_frame):
            self.frame_cache.popitem(last=False)
        self.timeline.set_ready(self.frame_cache)

    # Playing ------------------------------------------------------------------------------------------------
    def set_playing(self: Any, on: bool) -> None:
        """Play the restored video from the current frame at its frame rate (waiting for frames not yet ready)."""
        if not on or not self.video_path or self.video_info is None:
            self.play_timer.stop()
            self.timeline.set_playing(False)
            return
        self.frame_debounce.stop()
        self.timeline.set_playing(True)
        self.play_timer.start(max(1, round(1000 / float(self.video_info.fps))))
        self._prefetch_from(self.timeline.frame)

    def toggle_play(self: Any) -> None:
        self.set_playing(not self.play_timer.isActive())

    def next_frame(self: Any) -> None:
        self.timeline.step(1)

    def previous_frame(self: Any) -> None:
        self.timeline.step(-1)

    def second_forward(self: Any) -> None:
        self.timeline.step_seconds(1)

    def second_back(self: Any) -> None:
        self.timeline.step_seconds(-1)

    def _play_tick(self: Any) -> None:
        nxt = self.timeline.frame + 1
        if nxt >= self.timeline.count:
            self.set_playing(False)
            return
        if nxt not in self.frame_cache:
            self.status.showMessage("Buffering — restoring the next frames…", 1000)
            self._prefetch_from(nxt)
            return
        self.timeline.set_frame(nxt)
        self.decoder.request(self.video_path, nxt)
        self.viewer.set_output(self.frame_cache[nxt], "done")
        self._prefetch_from(nxt)

    def _prefetch_from(self: Any, index: int) -> None:
        for i in range(index, min(self.timeline.count, index + 64)):
            if i not in self.frame_cache:
                if not (self.running and self._pending_frame == i):
                    self._pending_frame = i
                    self.run_restore(self.video_path, frame=i)
                return

    # Export -------------------------------------------------------------------------------------------------
    def export_video_dialog(self: Any) -> None:
        from PySide6.QtWidgets import QDialog

        from weatherstudio.gui.video_export import ExportDialog

        if not self.video_path or self.video_info is None:
            self.show_message("info", "Open a video first (File ▸ Open…)")
            return
        dialog = ExportDialog(Path(self.video_path), self.video_info.frame_count, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            out, codec, quality, frames = dialog.values()
            self.start_export(out, codec, quality, frames)

    def start_export(self: Any, output: str | Path, codec: str = "h264", quality: int | None = None, frames: str = ""):
        """Export the restored video with the current model; returns the running worker."""
        from weatherstudio.gui.video_export import ExportProgress, VideoExportWorker
        from weatherstudio.gui.worker import RestoreRequest

        request = RestoreRequest(path=self.video_path, **self.request_fields())
        worker = VideoExportWorker(Path(self.video_path), Path(output), request, codec, quality, frames or None, self)
        worker.finished_export.connect(
            lambda out, msg: self.show_message("info" if out else "warning", msg) if msg else None
        )
        self.exports.append(worker)
        self.export_progress = ExportProgress(worker, self)
        self.export_progress.show()
        return worker

    def _stop_video_threads(self: Any) -> None:
        self.play_timer.stop()
        self.decoder.stop()
        for worker in self.exports:
            worker.cancel()
            worker.wait(30_000)
