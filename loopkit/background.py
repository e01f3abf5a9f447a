"""Writing files in a background thread, one at a time, so saving never stalls training."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["BackgroundWriter"]


class BackgroundWriter:
    """Runs one write at a time in a worker thread.

    ``submit`` first waits for the previous write, so at most one is in flight and
    they land in order. An error in a write is raised by the next ``submit`` or
    ``wait``. Call ``wait`` before relying on the files (plugins do it at train end).
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], None]) -> None:
        """Wait for the previous write, then start ``write()`` in the background."""
        self.wait()

        def run() -> None:
            try:
                write()
            except BaseException as err:  # handed to the caller by wait()
                self._error = err

        self._thread = threading.Thread(target=run, name="loopkit-writer", daemon=False)
        self._thread.start()

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk; raise its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    @property
    def busy(self) -> bool:
        """Whether a write is still running."""
        return self._thread is not None and self._thread.is_alive()
