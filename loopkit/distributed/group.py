"""Which rank this process is among those training one model, for plugins to consult."""

from __future__ import annotations

import os

from attrs import field, frozen

from loopkit.errors import ConfigError

__all__ = [
    "LAUNCHER_VARIABLES",
    "ProcessGroup",
    "is_primary",
    "launched_by_mpi",
    "process_group",
    "rank",
    "set_process_group",
    "world_size",
]

LAUNCHER_VARIABLES = (
    "OMPI_COMM_WORLD_SIZE",  # Open MPI's mpirun/mpiexec
    "PMI_SIZE",  # MPICH/Intel MPI (Hydra), Slurm srun --mpi=pmi2
    "PMIX_RANK",  # PMIx launchers: Open MPI 5 prterun, Slurm srun --mpi=pmix
)
"""Environment variables an MPI launcher sets in every process it starts."""


def _non_negative(instance: object, attribute: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"ProcessGroup got {getattr(attribute, 'name', '?')}={value!r}; expected an "
            "int >= 0."
        )


@frozen
class ProcessGroup:
    """The processes training one model together, and this one's place among them.

    Args:
        rank: This process's index, ``0 <= rank < world_size``; rank 0 is the one that
            writes files and prints progress.
        world_size: How many processes train the model (1 without a launcher).
    """

    rank: int = field(default=0, validator=_non_negative)
    world_size: int = field(default=1, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.world_size < 1 or self.rank >= self.world_size:
            raise ConfigError(
                f"ProcessGroup(rank={self.rank}, world_size={self.world_size}): expected "
                "world_size >= 1 and 0 <= rank < world_size."
            )

    @property
    def is_primary(self) -> bool:
        """Whether this is rank 0, the process that alone writes files and progress."""
        return self.rank == 0


_current = ProcessGroup()


def process_group() -> ProcessGroup:
    """Return the group this process trains in: ``ProcessGroup(0, 1)`` unless set."""
    return _current


def set_process_group(group: ProcessGroup) -> ProcessGroup:
    """Make ``group`` the current one; return the previous one.

    Called by the plugin that runs the processes together (DataParallel sets it when
    constructed under an MPI launcher); other plugins only read it.
    """
    global _current
    if not isinstance(group, ProcessGroup):
        raise TypeError(
            f"set_process_group() got a {type(group).__name__}; expected a "
            "loopkit.distributed.ProcessGroup(rank=..., world_size=...)."
        )
    previous, _current = _current, group
    return previous


def rank() -> int:
    """Return this process's rank (0 when it trains alone)."""
    return _current.rank


def world_size() -> int:
    """Return how many processes train the model together (1 when alone)."""
    return _current.world_size


def is_primary() -> bool:
    """Return whether this process is rank 0: the one that writes files and progress.

    Plugins that write checkpoints, logs or terminal output do so only when this is
    true, so N processes never write the same file; every rank still runs their
    hooks (a restore reads the checkpoint on every rank).
    """
    return _current.rank == 0


def launched_by_mpi() -> bool:
    """Return whether an MPI launcher (mpirun, mpiexec, srun) started this process."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)
