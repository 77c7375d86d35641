"""The video timeline under the viewer: a slider with frame number and timecode, play/pause, ±1 frame and
±1 second steps, jump to a frame, and a strip that shows which frames are restored and ready to play."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget


def timecode(seconds: float) -> str:
    """``H:MM:SS.mmm``."""
    h, rem = divmod(max(0.0, seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{s:06.3f}"


class ReadyStrip(QWidget):
    """A thin bar over the slider: restored frames in the accent colour, the rest left empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(4)
        self.count = 1
        self.ready: set[int] = set()
        self.color = QColor("#3d8bfd")

    def set_ready(self, count: int, ready: Iterable[int]) -> None:
        self.count = max(1, count)
        self.ready = set(ready)
        self.update()

    def paintEvent(self, _event: object) -> None:  # noqa: N802 - Qt override
        if not self.ready:
            return
        p = QPainter(self)
        w = self.width() / self.count
        for i in sorted(self.ready):
            p.fillRect(QRectF(i * w, 0, max(1.0, w), self.height()), self.color)
        p.end()


class Timeline(QWidget):
    """Frame navigation for an open video; emits ``seek(frame)`` for every move the user makes."""

    seek = Signal(int)
    play_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fps = Fraction(25)
        self.timestamps: list[float] = []  # seconds of each frame (variable frame rate)
        self._quiet = False

        def button(text: str, tip: str) -> QToolButton:
            b = QToolButton(text=text, toolTip=tip, autoRaise=True)
            return b

        self.back_second = button("−1 s", "Back one second (Shift+Left)")
        self.back = button("−1", "Previous frame (Left)")
        self.play = button("▶", "Play the restored video (K)")
        self.play.setCheckable(True)
        self.forward = button("+1", "Next frame (Right)")
        self.forward_second = button("+1 s", "Forward one second (Shift+Right)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setTracking(True)
        self.strip = ReadyStrip()
        self.jump = QSpinBox(minimum=0, maximum=0, prefix="frame ", keyboardTracking=False)
        self.jump.setToolTip("Jump to a frame")
        self.label = QLabel(objectName="muted")
        self.label.setMinimumWidth(190)
        bar = QVBoxLayout()
        bar.setSpacing(1)
        bar.addWidget(self.strip)
        bar.addWidget(self.slider)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 2, 8, 4)
        for b in (self.back_second, self.back, self.play, self.forward, self.forward_second):
            row.addWidget(b)
        row.addLayout(bar, 1)
        row.addWidget(self.jump)
        row.addWidget(self.label)

        self.slider.valueChanged.connect(self._on_slider)
        self.jump.valueChanged.connect(lambda v: self.set_frame(v, emit=True))
        self.back.clicked.connect(lambda: self.step(-1))
        self.forward.clicked.connect(lambda: self.step(1))
        self.back_second.clicked.connect(lambda: self.step_seconds(-1))
        self.forward_second.clicked.connect(lambda: self.step_seconds(1))
        self.play.toggled.connect(self._on_play)

    # Set up ----------------------------------------------------------------------------------------------
    def set_video(self, count: int, fps: Fraction, timestamps: list[float] | None = None) -> None:
        self._quiet = True
        self.fps = fps or Fraction(25)
        self.timestamps = list(timestamps or [i / float(self.fps) for i in range(count)])
        self.slider.setRange(0, max(0, count - 1))
        self.jump.setRange(0, max(0, count - 1))
        self.slider.setValue(0)
        self.jump.setValue(0)
        self.strip.set_ready(count, [])
        self._quiet = False
        self._update_label(0)

    @property
    def count(self) -> int:
        return self.slider.maximum() + 1

    @property
    def frame(self) -> int:
        return self.slider.value()

    # Moving ----------------------------------------------------------------------------------------------
    def set_frame(self, index: int, emit: bool = False) -> None:
        index = max(0, min(self.slider.maximum(), int(index)))
        self._quiet = not emit
        self.slider.setValue(index)
        self._quiet = False
        self._sync(index)

    def step(self, frames: int) -> None:
        self.set_frame(self.frame + frames, emit=True)

    def step_seconds(self, seconds: float) -> None:
        self.step(round(seconds * float(self.fps)) or (1 if seconds > 0 else -1))

    def _on_slider(self, value: int) -> None:
        self._sync(value)
        if not self._quiet:
            self.seek.emit(value)

    def _sync(self, value: int) -> None:
        self.jump.blockSignals(True)
        self.jump.setValue(value)
        self.jump.blockSignals(False)
        self._update_label(value)

    def _update_label(self, value: int) -> None:
        t = self.timestamps[value] if value < len(self.timestamps) else value / float(self.fps)
        self.label.setText(f"{value + 1} / {self.count}  ·  {timecode(t)}")

    def _on_play(self, on: bool) -> None:
        self.play.setText("❚❚" if on else "▶")
        self.play_toggled.emit(on)

    def set_playing(self, on: bool) -> None:
        self.play.blockSignals(True)
        self.play.setChecked(on)
        self.play.setText("❚❚" if on else "▶")
        self.play.blockSignals(False)

    def set_ready(self, ready: Iterable[int]) -> None:
        self.strip.set_ready(self.count, ready)
