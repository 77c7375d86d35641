"""Decode ahead and encode behind: a video export's three stages on their own threads.

While the network restores frame N, one thread decodes frame N + 1 (and a few more) and another encodes
frame N − 1, so the export runs at the network's own speed instead of network + decode + encode. FFmpeg's
codecs (PyAV) and the colour conversions (numpy / swscale) release the GIL, so the stages overlap. Queues are
bounded: memory stays a few frames whatever the clip's length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_DONE = object()


class ReadAhead(Generic[T]):
    """Iterate ``produce(i)`` for ``i`` in ``indices``, computed ``depth`` items ahead on a worker thread.

    An exception in ``produce`` is raised in the consumer at the item where it happened; ``close()`` (or
    leaving the ``with`` block) stops the worker and joins it.
    """

    def __init__(self, produce: Callable[[int], T], indices: Iterable[int], depth: int = 3) -> None:
        self._produce = produce
        self._indices = list(indices)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for i in self._indices:
                if self._stop.is_set() or not self._put((i, self._produce(i), None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((None, None, exc))
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[tuple[int, T]]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            index, value, exc = item
            if exc is not None:
                raise exc
            yield index, value

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WriteBehind:
    """Calls ``write(index, frame)`` on a worker thread, in order, at most ``depth`` frames behind.

    ``finish()`` waits for the last write and returns ``on_finish()``; an error in a write is raised by the
    next ``write`` or by ``finish``. ``abort()`` drops what is queued and calls ``on_abort()``.
    """

    def __init__(
        self,
        write: Callable[[int, Any], None],
        on_finish: Callable[[], T],
        on_abort: Callable[[], None],
        depth: int = 3,
    ) -> None:
        self._write, self._on_finish, self._on_abort = write, on_finish, on_abort
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # raised in the producer by its next call
                    self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, index: int, frame: Any) -> None:
        self._raise_error()
        self._queue.put((index, frame))

    def finish(self) -> Any:
        self._queue.put(_DONE)
        self._thread.join()
        self._raise_error()
        return self._on_finish()

    def abort(self) -> None:
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("aborted")  # the worker skips whatever it still gets
            while True:  # drop what is queued, then let the worker end
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._queue.put(_DONE)
            self._thread.join()
        self._on_abort()
