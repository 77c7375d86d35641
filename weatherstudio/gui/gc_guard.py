"""Python's cyclic garbage collector, run by a timer on the GUI thread instead of whenever an allocation
trips it.

An automatic collection can start in any thread, in the middle of anything: on a worker thread it would
destroy Qt objects there, and on the GUI thread it can run while Qt is halfway through delivering a signal
from a worker. Either can crash Qt. So the studio turns automatic collection off and collects from an event-loop
timer, between events, with the collector's own thresholds (youngest generation first).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

_INTERVAL_MS = 500


class _Collector(QObject):
    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.thresholds = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        self.timer.start(_INTERVAL_MS)

    def collect(self) -> None:
        """Collect each generation whose count is past its threshold (as automatic collection would)."""
        counts = gc.get_count()
        for generation in range(3):
            if counts[generation] <= self.thresholds[generation]:
                break
            gc.collect(generation)


def collect_on_gui_thread() -> None:
    """Turn automatic collection off and collect from a GUI-thread timer instead (once per application)."""
    app = QCoreApplication.instance()
    if app is None or app.property("weatherstudio_gc_timer"):
        return
    app.setProperty("weatherstudio_gc_timer", True)
    app._weatherstudio_collector = _Collector(app)  # (kept alive with the application)
    gc.disable()
