"""Writing files in a background thread, one at a time, so saving never stalls training."""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Callable

__all__ = ["BackgroundWriter"]

_Job = Callable[[], None]


class _Worker:
    """One long-lived daemon thread that runs every writer's jobs in submission order.

    Starting a thread per write made the training thread wait in ``Thread.start``
    until the new thread first ran: milliseconds per save on 2 cores kept busy by
    BLAS. A queue ``put`` wakes the worker without waiting. At interpreter exit the
    worker finishes what is queued.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, job: _Job) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="loopkit-writer", daemon=True
                )
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def drain(self) -> None:
        """Run what is queued, then stop the thread (at interpreter exit)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._jobs.put(None)
            thread.join()


_WORKER = _Worker()
atexit.register(_WORKER.drain)


class BackgroundWriter:
    """Runs one write at a time off the training thread.

    ``submit`` first waits for this writer's previous write, so at most one is in
    flight and they land in order. An error in a write is raised by the next
    ``submit`` or ``wait``. Call ``wait`` before relying on the files (plugins do it
    at train end). Every writer's jobs run in one shared worker thread, in the
    order submitted; a write must not itself submit to or wait on a writer.
    """

    def __init__(self) -> None:
        self._done = threading.Event()
        self._done.set()
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], None]) -> None:
        """Wait for the previous write, then queue ``write()`` for the worker thread."""
        self.wait()
        self._done.clear()

        def job() -> None:
            try:
                write()
            except BaseException as err:  # handed to the caller by wait()
                self._error = err
            finally:
                self._done.set()

        _WORKER.put(job)

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk; raise its error."""
        self._done.wait()
        error, self._error = self._error, None
        if error is not None:
            raise error

    @property
    def busy(self) -> bool:
        """Whether a write is still running or queued."""
        return not self._done.is_set()
