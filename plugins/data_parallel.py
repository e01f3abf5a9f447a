"""DataParallel: train one model in N MPI processes, each on its shard of every batch."""

from __future__ import annotations

import math
import zlib
from collections.abc import Generator, MutableMapping
from typing import Any

import numpy as np
from attrs import define, field

from loopkit import ConfigError, LoopState, Model, OptimizerStep, Plugin, hookimpl
from loopkit.distributed import (
    Communicator,
    DistributedError,
    ProcessGroup,
    import_mpi,
    launched_by_mpi,
    set_process_group,
    shard,
)
from loopkit.typing import Array

__all__ = ["DataParallel"]


def _timeout(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"DataParallel(timeout={value!r}) got a {type(value).__name__}; expected "
            "seconds as a number > 0, such as timeout=300."
        )
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"DataParallel(timeout={value!r}): expected a finite number of seconds > 0, "
            "such as timeout=300."
        )


def _flat_states(states: list[dict[str, Any]]) -> list[Array]:
    return [np.asarray(v, np.float64).ravel() for st in states for v in st.values()]


def _reduce_logs(
    model: Model,
    logs: MutableMapping[str, float],
    comm: Communicator,
    what: str,
    sums: list[float],
    samples: int,
    states: list[dict[str, Any]],
    *,
    restore: bool,
) -> None:
    """Replace ``logs``' loss, per-output losses and metrics with their global values.

    Sums the loss sums (``[loss, *per-output losses]``, each weighted by samples), the
    sample count and every metric's state over the ranks in one allreduce, then
    computes each mean and metric result from the totals, as one process would.

    Args:
        model: The model (its per-output loss names and metrics, in order).
        logs: The logs to update in place.
        comm: The ranks' communicator.
        what: The reduction's name, for a timeout's message.
        sums: This rank's loss sum, then each output's loss sum.
        samples: This rank's real samples (padding excluded).
        states: Each metric's state on this rank.
        restore: Put each metric's own state back afterwards; else leave the
            global state in it.
    """
    parts = _flat_states(states)
    buffer = np.concatenate([np.asarray([*sums, float(samples)], np.float64), *parts])
    comm.allreduce(buffer, what)
    count = buffer[len(sums)]
    if count > 0:
        keys = ["loss", *model.loss_term_names]
        for key, total in zip(keys, buffer[: len(sums)], strict=True):
            logs[key] = float(total / count)
    offset = len(sums) + 1
    for metric, local in zip(model.metrics, states, strict=True):
        summed: dict[str, Any] = {}
        for key, value in local.items():
            shape = np.shape(value)
            size = int(np.prod(shape, dtype=np.int64))
            summed[key] = buffer[offset : offset + size].reshape(shape)
            offset += size
        current = metric.get_state()
        metric.set_state(summed)
        logs[metric.name] = float(metric.result())
        if restore:
            metric.set_state(current)


@define(eq=False, slots=False)
class DataParallel(Plugin):
    """Data-parallel training over MPI: ``mpirun -n N python train.py`` trains one model.

    Each of the N ranks runs the same script. Per step, rank ``r`` trains on its part
    of the global batch (``batch_size`` is **per rank**: the global batch is
    ``N * batch_size``, as in Horovod), cut from the same shuffled epoch order on
    every rank (``loopkit.distributed.shard`` states the rule: no sample is dropped
    or repeated; padding of weight 0 where a short last batch has fewer samples than
    ranks). The gradients are then averaged, weighted by each rank's sample count,
    with one ``Allreduce`` over the model's single flat gradient buffer, in place,
    before any other plugin sees them (after GradientAccumulation, before
    GradientClipping: clipping acts on the average), so every rank takes the same
    optimizer step and the weights stay bitwise identical.

    At train begin rank 0's weights, optimizer state, shuffle seed and random
    generators are broadcast (every rank draws dropout masks from the same stream,
    so a checkpoint of rank 0 resumes every rank exactly); after every plugin's
    ``on_train_begin`` (a BackupAndRestore restore included) the ranks check that
    they agree on the weights and the resume position.
    Epoch logs are global: the loss and each metric are computed from sums and counts
    reduced over the ranks (not averaged averages), so History, EarlyStopping and
    ReduceLROnPlateau decide the same on every rank. Batch logs (progress bar) stay
    this rank's running means. ``model.stop_training`` set on any rank stops every
    rank after the same batch. Validation (and ``evaluate`` with this plugin) is
    sharded by the same rule, without padding steps (nothing runs in lockstep), and
    its logs are reduced from sums and counts in ``on_test_end``: ``val_`` logs are
    global, identical on every rank and equal to one process's.

    Rank 0 alone writes files and prints: other plugins ask
    ``loopkit.distributed.is_primary()``. A rank that dies makes mpirun end the job;
    one that hangs makes the others raise DistributedError after ``timeout`` seconds;
    an error on one rank aborts every rank (``MPI_Abort``) after the plugins closed.

    Without an MPI launcher (or with one rank) the plugin does nothing: training is
    exactly as without it, and mpi4py is not even imported.

    Args:
        timeout: Seconds any rank waits for the others in one collective before
            failing (a dead or hung rank). Keep it above the longest pause of rank 0,
            such as writing a checkpoint.
        abort_on_error: When ``fit`` fails on one rank, abort every rank of the job so
            none waits for it. Turn off only if the script handles errors itself.
        comm: An mpi4py communicator to train over (a sub-communicator); by default
            ``MPI.COMM_WORLD`` when launched by mpirun, mpiexec or srun.

    Attributes:
        group: This process's rank and the number of ranks.
        communication_seconds: Seconds spent in the per-step gradient allreduce
            (waiting for slower ranks included), summed over the run.
    """

    default_name = "data_parallel"
    default_order = -8  # after gradient accumulation, before clipping

    timeout: float = field(default=300.0, validator=_timeout)
    abort_on_error: bool = True
    comm: Any = field(default=None, kw_only=True, repr=False)
    after: tuple[str, ...] = field(
        default=("gradient_accumulation",), kw_only=True, converter=tuple
    )
    before: tuple[str, ...] = field(
        default=("gradient_clipping",), kw_only=True, converter=tuple
    )
    group: ProcessGroup = field(factory=ProcessGroup, init=False)
    communication_seconds: float = field(default=0.0, init=False)
    _comm: Communicator | None = field(default=None, init=False, repr=False)
    _shard: Any = field(default=None, init=False, repr=False)
    _fit_hooks: Any = field(default=None, init=False, repr=False)
    _pending_broadcast: bool = field(default=False, init=False, repr=False)
    _in_batch: bool = field(default=False, init=False, repr=False)
    _loss_sum: float = field(default=0.0, init=False, repr=False)
    _term_sums: list[float] = field(factory=list, init=False, repr=False)
    _eval_shard: Any = field(default=None, init=False, repr=False)
    _eval_cache: tuple[Any, Any] | None = field(default=None, init=False, repr=False)
    _samples: int = field(default=0, init=False, repr=False)
    _window: int = field(default=0, init=False, repr=False)
    _window_balanced: bool = field(default=True, init=False, repr=False)
    _train_states: list[dict[str, Any]] | None = field(default=None, init=False, repr=False)
    _stat_params: list[Any] = field(factory=list, init=False, repr=False)
    _stats: Array = field(factory=lambda: np.zeros(0), init=False, repr=False)
    _flag: Array = field(factory=lambda: np.zeros(1), init=False, repr=False)
    _weight: Array = field(factory=lambda: np.zeros(1), init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.timeout = float(self.timeout)
        if self.comm is None and not launched_by_mpi():
            return
        comm = self.comm if self.comm is not None else import_mpi().COMM_WORLD
        if comm.Get_size() > 1:
            self._comm = Communicator(comm, self.timeout)
            self.group = ProcessGroup(comm.Get_rank(), comm.Get_size())
            set_process_group(self.group)

    @property
    def communicator(self) -> Communicator | None:
        """The communicator between the ranks (None when training alone)."""
        return self._comm

    # --- train begin: shard, broadcast, agree -------------------------------------------

    @hookimpl(wrapper=True, tryfirst=True)
    def on_train_begin(self, model: Model, state: LoopState) -> Generator[None, Any, Any]:
        if self._comm is not None:
            self._begin(model, state, self._comm)
        result = yield
        if self._comm is not None and model.built:
            self._agree(model, state, self._comm)
        return result

    def _begin(self, model: Model, state: LoopState, comm: Communicator) -> None:
        self._fit_hooks = state.hooks
        self._train_states, self._in_batch = None, False
        self._window, self._window_balanced = 0, True
        seed = comm.broadcast_object(model.shuffle_seed, "the shuffle-seed broadcast")
        model.shuffle_seed = seed
        self._shard = shard(state.train_data, comm.rank, comm.size, seed=seed)
        state.train_data = self._shard
        state.steps_per_epoch = self._shard.steps
        state.params["steps"] = self._shard.steps
        state.params["world_size"] = comm.size
        if state.batch_size is not None:
            state.params["global_batch_size"] = comm.size * state.batch_size
        self._pending_broadcast = True
        if model.built:  # else at the first batch, once the data has built it
            self._broadcast(model, comm)

    def _broadcast(self, model: Model, comm: Communicator) -> None:
        self._pending_broadcast = False
        self._stat_params = [  # state that forward passes update: moving statistics
            p
            for ly in model.layers
            if ly.trainable
            for p in ly.parameters
            if not p.trainable
        ]
        self._stats = np.zeros(sum(p.value.size for p in self._stat_params), np.float64)
        comm.broadcast(model.flat_weights, "the weight broadcast at train begin")
        optimizer = model.optimizer
        if optimizer is None:
            return
        model.trainable_spans  # noqa: B018 - builds the optimizer, so it has its slots
        saved = optimizer.get_state()
        slots = {}
        for name in sorted(saved["slots"]):
            buf = np.ascontiguousarray(saved["slots"][name])
            comm.broadcast(buf, "the optimizer-state broadcast at train begin")
            slots[name] = buf
        iterations = comm.broadcast_object(saved["iterations"], "the optimizer broadcast")
        optimizer.set_state({"iterations": iterations, "slots": slots})

    def _sync_generators(self, model: Model, comm: Communicator) -> None:
        """Give every rank rank 0's random generators (dropout masks, noise layers).

        Identical streams, as Horovod scripts seeding every worker alike get: a
        checkpoint holds rank 0's generators, and restoring them on every rank then
        continues each rank's stream exactly. Ranks draw the same amounts in every
        step but an epoch's last (a short one), so this runs at each epoch's end.
        """
        generators = [model.rng, *(ly.rng for ly in model.layers if ly.rng is not None)]
        unique = list({id(g): g for g in generators}.values())
        states = comm.broadcast_object(
            [g.bit_generator.state for g in unique], "the random-generator broadcast"
        )
        for generator, saved in zip(unique, states, strict=True):
            generator.bit_generator.state = saved

    def _agree(self, model: Model, state: LoopState, comm: Communicator) -> None:
        """Raise DistributedError unless every rank holds rank 0's weights and position."""
        self._sync_generators(model, comm)
        resume = state.resume_epoch if state.resume_epoch is not None else -1
        checksum = float(zlib.crc32(model.flat_weights.tobytes()))
        mine = np.array([checksum, resume, state.resume_batch], np.float64)
        extremes = np.concatenate([mine, -mine])
        comm.allreduce(extremes, "the agreement check at train begin", op="max")
        highest, lowest = extremes[:3], -extremes[3:]
        if np.array_equal(highest, lowest):
            return
        low, high = lowest.astype(np.int64).tolist(), highest.astype(np.int64).tolist()
        raise DistributedError(
            f"DataParallel: after on_train_begin the ranks disagree (rank {comm.rank} "
            f"resumes at epoch {resume}, batch {state.resume_batch}; -1: not resuming): "
            f"weight checksums {low[0]}..{high[0]}, resume epochs {low[1]}..{high[1]}, "
            f"resume batches {low[2]}..{high[2]}. A plugin restored different state on "
            "different ranks: put BackupAndRestore's backup_dir (and any checkpoint "
            "read at train begin) on a filesystem every rank sees."
        )

    # --- every step: one allreduce of the flat gradient buffer ---------------------------

    @hookimpl
    def on_train_batch_begin(self, model: Model) -> None:
        if self._comm is None:
            return
        self._in_batch = True
        if self._pending_broadcast:  # a generator's first batch built the model
            self._broadcast(model, self._comm)
            self._agree(model, model.state, self._comm)

    @hookimpl
    def on_before_optimizer_step(self, model: Model, step: OptimizerStep) -> None:
        comm = self._comm
        if comm is None:
            return
        if self._in_batch:  # a batch of the loop, not a flush of accumulated batches
            samples = self._shard.samples
            self._loss_sum += step.loss * samples
            if model.loss_term_names:  # several outputs: each output's loss is logged
                if len(self._term_sums) != len(model.loss_terms):
                    self._term_sums = [0.0] * len(model.loss_terms)
                for i, term in enumerate(model.loss_terms):
                    self._term_sums[i] += term * samples
            self._samples += samples
            self._window += samples
            self._window_balanced &= self._shard.balanced
        if step.skip:
            return
        self._average(model, comm)
        self._window, self._window_balanced = 0, True

    def _average(self, model: Model, comm: Communicator) -> None:
        """Average the gradients (and moving statistics) over the ranks, in place."""
        grads, stats = model.flat_gradients, self._stats
        if stats.size:  # statistics layers (BatchNormalization) updated in this forward
            np.concatenate([p.value.reshape(-1) for p in self._stat_params], out=stats)
        requests = []
        if not self._window_balanced:  # weigh each rank's mean by its sample count
            grads *= grads.dtype.type(self._window)
            stats *= self._window
            self._weight[0] = self._window
            requests.append(comm.start_allreduce(self._weight))
        requests.append(comm.start_allreduce(grads))  # the one big message of the step
        if stats.size:
            requests.append(comm.start_allreduce(stats))
        before = comm.seconds
        comm.wait(requests, "the gradient allreduce")
        self.communication_seconds += comm.seconds - before
        total = comm.size if self._window_balanced else max(float(self._weight[0]), 1.0)
        grads *= grads.dtype.type(1.0 / total)
        if stats.size:
            stats *= 1.0 / total
            offset = 0
            for p in self._stat_params:
                p.value[...] = stats[offset : offset + p.value.size].reshape(p.value.shape)
                offset += p.value.size

    @hookimpl(trylast=True)
    def on_train_batch_end(self, model: Model, state: LoopState, batch: int) -> None:
        if self._comm is None:
            return
        self._in_batch = False
        self._agree_to_stop(model, self._comm)
        steps = state.steps_per_epoch
        if model.stop_training or steps is None or batch + 1 >= steps:
            # the epoch's training ends here; validation resets the metrics next
            self._train_states = [m.get_state() for m in model.metrics]

    def _agree_to_stop(self, model: Model, comm: Communicator) -> None:
        self._flag[0] = 1.0 if model.stop_training else 0.0
        comm.allreduce(self._flag, "the stop_training agreement", op="max")
        model.stop_training = bool(self._flag[0])

    # --- epoch logs: reduced from sums and counts -----------------------------------------

    @hookimpl
    def on_epoch_begin(self) -> None:
        self._loss_sum, self._samples, self._train_states = 0.0, 0, None
        self._term_sums = []

    @hookimpl(wrapper=True)
    def on_epoch_end(
        self, model: Model, logs: MutableMapping[str, float]
    ) -> Generator[None, Any, Any]:
        if self._comm is not None:
            self._global_logs(model, logs, self._comm)
            self._sync_generators(model, self._comm)
        result = yield
        if self._comm is not None:
            self._agree_to_stop(model, self._comm)
        return result

    def _global_logs(
        self, model: Model, logs: MutableMapping[str, float], comm: Communicator
    ) -> None:
        states = (
            self._train_states
            if self._train_states is not None
            else [m.get_state() for m in model.metrics]
        )
        self._train_states = None
        names = model.loss_term_names
        terms = self._term_sums or [0.0] * len(names)
        sums = [self._loss_sum, *terms]
        _reduce_logs(
            model,
            logs,
            comm,
            "the epoch-log reduction",
            sums,
            self._samples,
            states,
            restore=True,
        )

    # --- evaluation and validation: each rank its shard, logs reduced --------------------

    @hookimpl(tryfirst=True)
    def on_test_begin(self, state: LoopState) -> None:
        self._eval_shard = None
        comm = self._comm
        if comm is None or state.eval_data is None:
            return
        data = state.eval_data
        cached = self._eval_cache
        if cached is None or cached[0] is not data:  # fit validates on one dataset
            cached = (data, shard(data, comm.rank, comm.size, lockstep=False))
            self._eval_cache = cached
        self._eval_shard = state.eval_data = cached[1]

    @hookimpl(tryfirst=True)
    def on_test_end(self, model: Model, logs: MutableMapping[str, float]) -> None:
        part, self._eval_shard = self._eval_shard, None
        if self._comm is None or part is None:
            return
        # The loop's means count every row it ran; a rank with no real sample ran one
        # padding row of weight 0, whose loss holds only the regularization penalty.
        real = part.epoch_samples
        rows = part.epoch_rows if real else 0
        sums = [logs["loss"] * rows, *(logs[n] * rows for n in model.loss_term_names)]
        states = [m.get_state() for m in model.metrics]
        _reduce_logs(
            model,
            logs,
            self._comm,
            "the evaluation-log reduction",
            sums,
            real,
            states,
            restore=False,
        )

    # --- failure: no rank waits for a dead one ----------------------------------------

    @hookimpl(trylast=True)
    def on_train_end(self, state: LoopState) -> None:
        comm, self._fit_hooks, self._in_batch = self._comm, None, False
        if comm is not None and self.abort_on_error and state.exception is not None:
            comm.abort(state.exception)
