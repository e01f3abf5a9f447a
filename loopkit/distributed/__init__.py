"""Training one model in several processes: which rank this is, and each rank's data.

Plugins that write files or print (checkpoints, CSV, TensorBoard, progress) ask
``is_primary()`` and write only on rank 0; every rank still runs their hooks. The
DataParallel plugin sets the group when constructed under an MPI launcher and puts
each rank's ``shard`` of the training data in ``state.train_data``. Without a
launcher the group is ``ProcessGroup(rank=0, world_size=1)`` and nothing changes.
"""

from __future__ import annotations

from loopkit.distributed.group import (
    LAUNCHER_VARIABLES,
    ProcessGroup,
    is_primary,
    launched_by_mpi,
    process_group,
    rank,
    set_process_group,
    world_size,
)
from loopkit.distributed.mpi import Communicator, DistributedError, import_mpi
from loopkit.distributed.sharding import ArrayShard, IterableShard, SequenceShard, shard

__all__ = [
    "LAUNCHER_VARIABLES",
    "ArrayShard",
    "Communicator",
    "DistributedError",
    "IterableShard",
    "ProcessGroup",
    "SequenceShard",
    "import_mpi",
    "is_primary",
    "launched_by_mpi",
    "process_group",
    "rank",
    "set_process_group",
    "shard",
    "world_size",
]
