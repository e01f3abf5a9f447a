"""Running an iterator ahead in a background thread, so data loading overlaps compute."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Prefetcher"]

_DONE = object()


class Prefetcher:
    """Iterates ``items`` in a background thread, ``depth`` ahead, converting each.

    Data loading (a generator's work, a Sequence's file reads) then overlaps the
    training step. Errors in the thread are re-raised in the consumer. Stopping early
    (``close`` or leaving a ``for`` loop) tells the thread to stop and waits for it
    at most ``GRACE`` seconds: a thread blocked inside the source's ``next()`` (a
    generator waiting on a socket) cannot be interrupted, and waiting for it would
    make the first Ctrl-C hang ``fit``. The thread is a daemon; whoever iterates the
    same source again first calls ``close(timeout=None)``.
    """

    GRACE = 0.5

    def __init__(self, items: Iterator[Any], convert: Any, depth: int = 2) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(items, convert), daemon=True, name="loopkit-prefetch"
        )
        self._thread.start()

    def _put(self, value: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: Iterator[Any], convert: Any) -> None:
        try:
            for item in items:
                if not self._put(("item", convert(item))):
                    return
        except BaseException as err:  # handed to the consumer, which re-raises it
            self._put(("error", err))
            return
        self._put(("done", _DONE))

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                kind, value = self._queue.get()
                if kind == "done":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            self.close()

    def close(self, timeout: float | None = GRACE) -> None:
        """Stop the background thread; wait up to ``timeout`` seconds (None: until done)."""
        self._stop.set()
        self._thread.join(timeout)
