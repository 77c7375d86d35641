"""Decode-ahead / encode-behind threads of the video export (weatherstudio.core.streaming)."""

from __future__ import annotations

import threading

import pytest

from weatherstudio.core.streaming import ReadAhead, WriteBehind


def test_read_ahead_yields_every_item_in_order_and_stays_bounded():
    made: list[int] = []
    with ReadAhead(lambda i: made.append(i) or i * i, range(50), depth=2) as items:
        first = next(iter(items))
        threading.Event().wait(0.05)  # let the worker run ahead as far as it may
        assert len(made) <= 1 + 2 + 1  # the consumed item, the queue, one in hand
        rest = list(items)
    assert [first, *rest] == [(i, i * i) for i in range(50)]


def test_read_ahead_raises_the_producers_error_at_its_item():
    def produce(i: int) -> int:
        if i == 3:
            raise ValueError("frame 3 is broken")
        return i

    seen = []
    with ReadAhead(produce, range(10)) as items, pytest.raises(ValueError, match="frame 3"):
        for index, _ in items:
            seen.append(index)
    assert seen == [0, 1, 2]


def test_read_ahead_close_stops_a_worker_blocked_on_a_full_queue():
    ahead = ReadAhead(lambda i: i, range(10**6), depth=1)
    next(iter(ahead))
    ahead.close()
    assert not ahead._thread.is_alive()


def test_write_behind_writes_in_order_and_finishes():
    written: list[int] = []
    w = WriteBehind(lambda i, f: written.append(i), lambda: "done", lambda: written.append(-1))
    for i in range(20):
        w.write(i, None)
    assert w.finish() == "done"
    assert written == list(range(20))


def test_write_behind_error_reaches_the_producer_and_abort_cleans_up():
    aborted = []

    def write(i: int, _: object) -> None:
        if i == 2:
            raise OSError("disk full")

    w = WriteBehind(write, lambda: "done", lambda: aborted.append(True), depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            w.write(i, None)
    w.abort()
    assert aborted == [True]
    assert not w._thread.is_alive()
