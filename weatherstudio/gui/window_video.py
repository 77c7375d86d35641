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
            self._before_times = list(self.timeline.timestamps)
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
            self.timeline.set_video(info.frame_count, info.fps, self._before_times)
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
            self.timeline.set_video(info.frame_count, info.fps, loaded.times)
            self.timeline.set_frame(loaded.frame)  # a video opened at a given frame (--frame N)
            self.timeline.show()
            for note in info.notes:
                self.show_message("warning", f"{Path(info.path).name}: {note}")
        return new

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
        if self.result is not None and self.result.request.frame != index:
            self.result = None  # Save and the pixel readout never mix another frame's result with this one
            self._update_actions()
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

    def cache_capacity(self: Any) -> int:
        """How many restored frames the cache holds at this video's size."""
        info = self.video_info
        per_frame = max(1, (info.width * info.height * 3) if info is not None else 1)
        return max(2, CACHE_BYTES // per_frame)

    def _cache_result(self: Any, result: Any) -> None:
        index = result.request.frame
        if index is None or result.request.path != self.video_path:
            return
        self.frame_cache[index] = result.display
        self.frame_cache.move_to_end(index)
        here = self.timeline.frame
        while len(self.frame_cache) > self.cache_capacity():
            behind = [i for i in self.frame_cache if i < here]  # frames already played go first
            self.frame_cache.pop(behind[0] if behind else next(iter(self.frame_cache)))
        self.timeline.set_ready(self.frame_cache)

    def forget_restored_frames(self: Any) -> None:
        """The network or its settings changed: the cached frames are another network's."""
        self.frame_cache.clear()
        self.timeline.set_ready(())

    # Playing ------------------------------------------------------------------------------------------------
    def set_playing(self: Any, on: bool) -> None:
        """Play the restored video from the current frame at its frame rate (waiting for frames not yet ready)."""
        if not on or not self.video_path or self.video_info is None:
            was = self.play_timer.isActive()
            self.play_timer.stop()
            self.timeline.set_playing(False)
            if was and self.video_path:
                self.frame_debounce.start()  # the frame it stopped on: its full result, maps included
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
        if self.result is not None:
            self.result = None  # the shown frame's full result comes when playback stops
        self._prefetch_from(nxt)

    def _prefetch_from(self: Any, index: int) -> None:
        """Restore the first frame from ``index`` on that is not cached, looking no further ahead than the
        cache holds (else the frames about to play would be evicted by later ones)."""
        for i in range(index, min(self.timeline.count, index + self.cache_capacity() - 1)):
            if i not in self.frame_cache:
                if not (self.running and self._pending_frame == i):
                    self._pending_frame = i
                    self.run_restore(self.video_path, frame=i, ahead=True)
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
            out, codec, quality, frames, overwrite, speed = dialog.values()
            self.start_export(out, codec, quality, frames, overwrite, speed)

    def start_export(
        self: Any,
        output: str | Path,
        codec: str = "h264",
        quality: int | None = None,
        frames: str = "",
        overwrite: bool = False,
        speed: str = "fast",
    ) -> Any:
        """Export the restored video with the current model; returns the running worker."""
        from weatherstudio.gui.video_export import ExportProgress, VideoExportWorker
        from weatherstudio.gui.worker import RestoreRequest

        request = RestoreRequest(path=self.video_path, **self.request_fields())
        worker = VideoExportWorker(
            Path(self.video_path), Path(output), request, codec, quality, frames or None, overwrite, self, speed
        )
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
