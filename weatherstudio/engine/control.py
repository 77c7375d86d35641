"""Pause, resume and stop a long run (training, fine-tuning) from another thread.

:meth:`RunControl.should_stop` is what the training loop asks between steps
(:class:`~weatherstudio.engine.training.TrainCallbacks`): it returns at once while running, blocks while
paused, and answers True once :meth:`stop` was called — so a Stop takes effect at the next step.
"""

from __future__ import annotations

import threading


class RunControl:
    """Thread-safe pause / resume / stop for one run."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stopped = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stopped.set()
        self._running.set()  # a paused run wakes up to stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set() and not self._stopped.is_set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def should_stop(self) -> bool:
        """Between steps: wait while paused; True once stopped."""
        self._running.wait()
        return self._stopped.is_set()
