"""MPI collectives with a deadline: a dead or hung rank fails the others, never hangs them.

Every collective is started non-blocking and waited on by polling, so a rank whose
peers never join raises ``DistributedError`` after ``timeout`` seconds instead of
waiting forever in a blocking call (Horovod's stall check warns after 60 s; MPI
itself has no timeout). The launcher usually ends the job sooner: Open MPI's mpirun
and Slurm's ``srun --kill-on-bad-exit`` stop every rank when one exits abnormally.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from typing import Any

import numpy as np

from loopkit.errors import ConfigError, LoopkitError
from loopkit.typing import Array

__all__ = ["Communicator", "DistributedError", "import_mpi"]

_INSTALL_HINT = (
    "Install MPI and its Python bindings from the package index with "
    "pip install 'loopkit[mpi]' (mpi4py and Open MPI's wheel; no system package needed)."
)


class DistributedError(LoopkitError, RuntimeError):
    """Ranks of a multi-process run disagree, or one stopped answering."""


def import_mpi() -> Any:
    """Import and return ``mpi4py.MPI`` (initializing MPI), or explain how to install it.

    Raises:
        ConfigError: mpi4py or the MPI library it needs is not installed.
    """
    try:
        mpi = importlib.import_module("mpi4py.MPI")  # initializes MPI: only when used
    except ImportError as err:
        raise ConfigError(
            f"DataParallel needs mpi4py under an MPI launcher, and importing it failed "
            f"({err}). {_INSTALL_HINT}"
        ) from err
    return mpi


class Communicator:
    """An mpi4py communicator whose collectives give up after ``timeout`` seconds.

    Args:
        comm: An ``mpi4py.MPI.Comm`` (``MPI.COMM_WORLD`` for the whole job).
        timeout: Seconds to wait for the other ranks in any one collective.
        mpi: The ``mpi4py.MPI`` module (imported when None).
    """

    def __init__(self, comm: Any, timeout: float, mpi: Any = None) -> None:
        self.mpi = mpi if mpi is not None else import_mpi()
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self.timeout = float(timeout)
        self.seconds = 0.0
        """Seconds spent in collectives (waiting included), for benchmarks."""

    def wait(self, requests: list[Any], what: str) -> None:
        """Poll ``requests`` until all are done; raise DistributedError past the deadline.

        Raises:
            DistributedError: some rank did not join within ``timeout`` seconds.
        """
        started = time.perf_counter()
        deadline = started + self.timeout
        spins = 0
        # Spin, as MPI_Wait does: a non-blocking collective advances only inside MPI
        # calls, so sleeping between tests would stall a large message's pipeline.
        while not self.mpi.Request.Testall(requests):
            spins += 1
            if spins % 1024 == 0 and time.perf_counter() > deadline:
                raise DistributedError(
                    f"DataParallel: rank {self.rank} of {self.size} waited "
                    f"{self.timeout:g} s in {what} and the other ranks never all "
                    "joined: one of them died or hangs. Find the failing rank in "
                    "the launcher's output; raise DataParallel(timeout=...) if a "
                    "step (or rank 0 writing a checkpoint) legitimately takes longer."
                )
        self.seconds += time.perf_counter() - started

    def start_allreduce(self, buffer: Array, op: str = "sum") -> Any:
        """Start reducing ``buffer`` in place across ranks; return its request."""
        mpi_op = self.mpi.SUM if op == "sum" else self.mpi.MAX
        return self.comm.Iallreduce(self.mpi.IN_PLACE, buffer, op=mpi_op)

    def allreduce(self, buffer: Array, what: str, op: str = "sum") -> None:
        """Reduce ``buffer`` in place across ranks (``"sum"`` or ``"max"``)."""
        self.wait([self.start_allreduce(buffer, op)], what)

    def broadcast(self, buffer: Array, what: str) -> None:
        """Overwrite ``buffer`` on every rank with rank 0's, in place."""
        self.wait([self.comm.Ibcast(buffer, root=0)], what)

    def broadcast_object(self, value: Any, what: str) -> Any:
        """Return rank 0's ``value`` (pickled) on every rank."""
        payload = np.frombuffer(self.mpi.pickle.dumps(value), np.uint8)
        length = np.array([payload.size], np.int64)
        self.broadcast(length, what)
        data = payload.copy() if self.rank == 0 else np.empty(int(length[0]), np.uint8)
        self.broadcast(data, what)
        return self.mpi.pickle.loads(data.tobytes())

    def abort(self, error: BaseException) -> None:
        """Print ``error`` with this rank's number, then end every rank of the job."""
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        sys.stdout.flush()
        sys.stderr.write(
            f"loopkit DataParallel: rank {self.rank} of {self.size} failed; aborting "
            f"every rank so none waits forever for it.\n{text}"
        )
        sys.stderr.flush()
        self.comm.Abort(1)
