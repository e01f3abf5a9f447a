"""The plugin contract: every hook loopkit calls, in call order, documented where defined.

A plugin implements any subset of these hooks, as methods marked with
``@loopkit.hookimpl`` that take any subset of the hook's arguments, by name and
without defaults (pluggy versions differ on passing those). Keras-style callbacks
(no marked method, methods such as ``on_epoch_end(self, epoch, logs=None)``) are
adapted automatically, and get ``model``/``params`` (``set_model``/``set_params``
when defined, as in Keras; ``loopkit.callbacks.Callback`` is the base class).
A misspelled hook or argument fails when the run's plugins are registered, before
the first step.

Call order in ``fit`` with validation (``...`` repeats per batch and per epoch)::

    on_train_begin
      on_epoch_begin
        on_train_batch_begin
          on_before_optimizer_step
          on_after_optimizer_step
        on_train_batch_end ...
        on_test_begin
          on_test_batch_begin
          on_test_batch_end ...
        on_test_end
      on_epoch_end ...
    on_train_end

When a plugin sets ``model.stop_training = True``, the loop finishes the current
batch (its ``on_train_batch_end`` fires), skips the rest of the epoch and
validation, calls ``on_epoch_end`` for that epoch with the logs it has, then
``on_train_end``. When anything raises inside ``fit`` (data, the model, a plugin),
``on_exception`` fires first, then ``on_train_end``, then the error propagates:
both always fire, so plugins can flush and close. ``evaluate`` and ``predict``
call their ``on_test_*``/``on_predict_*`` hooks the same way, and ``on_exception``
on failure. ``on_save_checkpoint``/``on_load_checkpoint`` fire when a checkpoint
is written or restored during a run (``loopkit.saving.checkpoints``, as the checkpointing
plugins do).

Every hook is called with keyword arguments. ``logs`` mappings are read-only for
implementations unless the hook says otherwise: copy one to keep it.

Hooks of your own. A plugin may declare hooks for other plugins to implement
(pluggy's ``add_hookspecs``): give it a ``hookspecs`` attribute holding a module,
or a class, of functions marked ``@loopkit.hookspec`` (in a class they take
``self`` first, as in pluggy). Each run adds them before registering any plugin,
so implementations are checked like loopkit's own. During a run, ``state.hooks``
is the run's dispatcher; the declaring plugin calls its hook with every argument
of its spec, by keyword, and gets pluggy's result (a list of the non-None results,
or the first one for ``firstresult=True``)::

    class SampleSpecs:
        @loopkit.hookspec
        def on_samples(self, model, state, images): ...

    @define(eq=False)
    class SampleImages:
        hookspecs = SampleSpecs

        @loopkit.hookimpl
        def on_epoch_end(self, model, state):
            images = model.predict(self.noise, verbose=0)
            state.hooks.call("on_samples", model=model, state=state, images=images)

A hook name may be declared once per run; loopkit's own names are taken.

What loopkit reads from a plugin. Every attribute is optional; ``loopkit.Plugin``
(also ``loopkit.callbacks.Callback``) declares them all, and the built-in plugins
set their defaults one way, as class variables ``default_name``/``default_order``:

- ``name`` (str): how other plugins refer to it in ``before``/``after``, and the key
  of its state in checkpoints. Default: the class name in snake case (a module's
  own name). Two plugins of one run with one name get ``name``, ``name_1``, ``name_2``
  ... in the order they were listed (registered plugins, ``LOOPKIT_PLUGINS``, then
  ``plugins=``/``callbacks=``), as Keras names layers, so a script run again gives
  each the same name and a resume restores each its own state.
- ``order`` (number, default 0): lower runs earlier within each hook; ties keep list
  order. Conventions: gradient plugins below 0, monitors 100, checkpoints 150,
  loggers 200, progress 900, History 1000, BackupAndRestore 2000.
- ``before``/``after`` (a name or a list of names): plugins this one must run
  before/after, whatever their ``order``; names of absent plugins are ignored.
- ``hookspecs`` (a class or module): hooks this plugin declares (see above).
- ``state_dict()`` / ``load_state_dict(state)``: resumable state, JSON values and
  NumPy arrays only; saved by ``loopkit.save_checkpoint`` (BackupAndRestore) under
  the plugin's name and restored by ``loopkit.load_checkpoint``.
- ``required_log_keys`` (names): log keys the plugin reads; ``fit`` fails before the
  first step when the run cannot log one. ``provided_log_keys`` (names): keys it
  adds to the epoch logs, which satisfy other plugins' requirements.
- ``set_model(model)`` / ``set_params(params)``: called before every ``fit``,
  ``evaluate`` and ``predict``, as in Keras; a Keras-style callback without them
  gets ``model``/``params`` attributes instead.
- Hook methods: marked with ``@loopkit.hookimpl`` (options: pluggy's ``tryfirst``,
  ``trylast``, ``wrapper``, ``specname``..., and ``every=``/``once=``), or, with no
  marked method at all, Keras callback methods called by position.

Event numbering for ``every=``/``once=`` (numbered from 1, so ``every=N`` fires on
events N, 2N, ...): epoch hooks count epochs (``epoch + 1``); training-batch and
optimizer-step hooks count the model's training batches over every ``fit``
(``state.global_step + 1``); test and predict batch hooks count the batches of the
current run (``batch + 1``). Other hooks have no count and refuse the options.

Several processes: under ``DataParallel`` every rank runs every hook with identical
weights and epoch logs; a plugin that writes files or prints does so only when
``loopkit.distributed.is_primary()`` (rank 0). In ``on_train_begin`` a plugin may
replace ``state.train_data``; the loop draws batches from it after that hook.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from loopkit._training.loop_state import LoopState, OptimizerStep
    from loopkit._training.sequential import Sequential

__all__ = [
    "hookspec",
    "on_after_optimizer_step",
    "on_before_optimizer_step",
    "on_epoch_begin",
    "on_epoch_end",
    "on_exception",
    "on_load_checkpoint",
    "on_predict_batch_begin",
    "on_predict_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_save_checkpoint",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_train_begin",
    "on_train_end",
]

hookspec = pluggy.HookspecMarker("loopkit")


# --- train boundaries --------------------------------------------------------------


@hookspec
def on_train_begin(model: Sequential, state: LoopState, logs: Mapping[str, float]) -> None:
    """Called once at the start of ``fit``, after every check and before the first batch.

    Args:
        model: The model being fit (built and compiled).
        state: The run's loop state: ``epochs``, ``initial_epoch``, ``steps_per_epoch``,
            ``log_keys`` (every key epoch logs will hold), ``params``. Plugins may
            restore their own state here (resume) and may set ``state.resume_epoch``/
            ``state.resume_batch`` to skip work already done.
        logs: Empty, as in Keras.
    """


@hookspec
def on_train_end(model: Sequential, state: LoopState, logs: Mapping[str, float]) -> None:
    """Called once when ``fit`` ends: normally, on ``stop_training``, or after an error.

    Args:
        model: The model being fit.
        state: The loop state; ``state.exception`` is set when fit is failing.
        logs: The last epoch's logs (empty if no epoch ended).
    """


# --- epoch boundaries --------------------------------------------------------------


@hookspec
def on_epoch_begin(
    model: Sequential, state: LoopState, epoch: int, logs: Mapping[str, float]
) -> None:
    """Called at the start of every epoch, before its first training batch.

    Args:
        model: The model being fit.
        state: The loop state; ``state.epoch == epoch``.
        epoch: Zero-based index of the epoch about to run.
        logs: Empty, as in Keras.
    """


@hookspec
def on_epoch_end(
    model: Sequential, state: LoopState, epoch: int, logs: MutableMapping[str, float]
) -> None:
    """Called once per epoch, after its last training batch and after validation.

    Monitors (early stopping, checkpoints, plateau schedulers) see the final logs:
    training means, validation keys, and ``learning_rate``, whatever their order.

    Args:
        model: The model being fit. Set ``model.stop_training = True`` to end the run.
        state: The loop state.
        epoch: Zero-based index of the epoch that just ended.
        logs: Epoch means of the loss and metrics, ``val_`` keys when validation ran
            this epoch, and ``learning_rate``. A plugin with a lower ``order`` may add
            keys for the ones after it (and for History); do not remove keys.
    """


# --- training batches ---------------------------------------------------------------


@hookspec
def on_train_batch_begin(
    model: Sequential, state: LoopState, batch: int, logs: Mapping[str, float]
) -> None:
    """Called before each training batch's forward pass.

    Args:
        model: The model being fit.
        state: The loop state; ``state.batch == batch``, ``state.global_step`` counts
            batches over every fit of this model.
        batch: Zero-based index of the batch within the epoch, as in Keras.
        logs: Empty, as in Keras.
    """


@hookspec
def on_before_optimizer_step(
    model: Sequential, state: LoopState, step: OptimizerStep
) -> None:
    """Called after backward, before the optimizer updates the weights.

    ``model.flat_gradients`` holds this batch's gradients: read, scale, clip or
    accumulate them in place (only ``model.trainable_spans`` are applied). Set
    ``step.skip = True`` to leave the weights untouched for this batch (gradient
    accumulation, a NaN batch); the loop then does not call the optimizer.

    Args:
        model: The model being fit.
        state: The loop state.
        step: The pending update: ``loss`` of the batch, ``skip`` flag, ``batch_size``.
    """


@hookspec
def on_after_optimizer_step(
    model: Sequential, state: LoopState, step: OptimizerStep
) -> None:
    """Called after the optimizer step (also when it was skipped: see ``step.skip``).

    ``model.flat_gradients`` still holds the gradient the step applied: optimizers
    never use it as scratch space, and change it only by their own ``clipnorm``/
    ``clipvalue``/``global_clipnorm`` clipping.

    Args:
        model: The model being fit; its weights are updated unless ``step.skip``.
        state: The loop state (``model.optimizer.iterations`` counts applied updates).
        step: The update just taken or skipped.
    """


@hookspec
def on_train_batch_end(
    model: Sequential, state: LoopState, batch: int, logs: Mapping[str, float]
) -> None:
    """Called after each training batch, once the weights are updated.

    Args:
        model: The model being fit. Set ``model.stop_training = True`` to end the run
            after this batch.
        state: The loop state.
        batch: Zero-based index of the batch within the epoch.
        logs: Running means over the epoch so far of ``loss`` and each metric (Keras
            semantics). A read-only mapping computed when first read, so a plugin
            that reads it only now and then costs no metric work on other batches;
            valid during the call: copy it (``dict(logs)``) to keep it.
    """


# --- evaluation (validation inside fit, or evaluate) ---------------------------------


@hookspec
def on_test_begin(model: Sequential, state: LoopState, logs: Mapping[str, float]) -> None:
    """Called at the start of ``evaluate`` and of each validation run inside ``fit``.

    Args:
        model: The model being evaluated.
        state: The loop state; ``state.mode == "test"`` while it runs.
            ``state.eval_data`` holds the data about to be evaluated; a plugin may
            replace it (DataParallel puts this rank's shard there).
        logs: Empty, as in Keras.
    """


@hookspec
def on_test_batch_begin(
    model: Sequential, state: LoopState, batch: int, logs: Mapping[str, float]
) -> None:
    """Called before each evaluation batch.

    Args:
        model: The model being evaluated.
        state: The loop state.
        batch: Zero-based index of the evaluation batch.
        logs: Empty, as in Keras.
    """


@hookspec
def on_test_batch_end(
    model: Sequential, state: LoopState, batch: int, logs: Mapping[str, float]
) -> None:
    """Called after each evaluation batch.

    Args:
        model: The model being evaluated.
        state: The loop state.
        batch: Zero-based index of the evaluation batch.
        logs: Running means of the loss and metrics over the evaluation so far,
            computed when first read (see ``on_train_batch_end``).
    """


@hookspec
def on_test_end(
    model: Sequential, state: LoopState, logs: MutableMapping[str, float]
) -> None:
    """Called at the end of ``evaluate`` or of each validation run.

    Args:
        model: The model being evaluated.
        state: The loop state.
        logs: Means of the loss and metrics over the evaluation (no ``val_`` prefix).
            A plugin with a lower ``order`` may replace values for the ones after it
            (DataParallel makes them global over the ranks); do not remove keys.
    """


# --- prediction ---------------------------------------------------------------------


@hookspec
def on_predict_begin(
    model: Sequential, state: LoopState, logs: Mapping[str, float]
) -> None:
    """Called at the start of ``predict``.

    Args:
        model: The model predicting.
        state: The loop state; ``state.mode == "predict"``.
        logs: Empty, as in Keras.
    """


@hookspec
def on_predict_batch_begin(
    model: Sequential, state: LoopState, batch: int, logs: Mapping[str, Any]
) -> None:
    """Called before each prediction batch.

    Args:
        model: The model predicting.
        state: The loop state.
        batch: Zero-based index of the batch.
        logs: Empty, as in Keras.
    """


@hookspec
def on_predict_batch_end(
    model: Sequential, state: LoopState, batch: int, logs: Mapping[str, Any]
) -> None:
    """Called after each prediction batch.

    Args:
        model: The model predicting.
        state: The loop state.
        batch: Zero-based index of the batch.
        logs: ``{"outputs": array}``, the batch's predictions, as in Keras. The array
            is a view the next batch overwrites: copy it to keep it.
    """


@hookspec
def on_predict_end(model: Sequential, state: LoopState, logs: Mapping[str, Any]) -> None:
    """Called at the end of ``predict``.

    Args:
        model: The model predicting.
        state: The loop state.
        logs: Empty, as in Keras.
    """


# --- failure ---------------------------------------------------------------------------


@hookspec
def on_exception(model: Sequential, state: LoopState, exception: BaseException) -> None:
    """Called when ``fit``, ``evaluate`` or ``predict`` is failing, before it re-raises.

    Flush and close what you hold so nothing logged so far is lost. Exceptions raised
    here are chained to the original one; the original still propagates. Also fires
    on ``KeyboardInterrupt``.

    Args:
        model: The model whose loop failed.
        state: The loop state at the failure.
        exception: What was raised.
    """


# --- checkpoints -------------------------------------------------------------------------


@hookspec
def on_save_checkpoint(
    model: Sequential, state: LoopState, checkpoint: MutableMapping[str, Any]
) -> None:
    """Called while a checkpoint is assembled, before it is written.

    Add your plugin's state under a key of your own (by convention the plugin's
    ``name``): JSON-ready values (str, int, float, bool, None, lists, dicts) and NumPy
    arrays only, since checkpoints are read without pickle.

    Args:
        model: The model being saved.
        state: The loop state at the save (epoch, batch, global step).
        checkpoint: The checkpoint being assembled; add keys, change none you didn't add.
    """


@hookspec
def on_load_checkpoint(
    model: Sequential, state: LoopState, checkpoint: Mapping[str, Any]
) -> None:
    """Called after a checkpoint's weights, optimizer and loop state are restored.

    Read back what ``on_save_checkpoint`` stored under your key (it may be absent
    when the checkpoint was written without your plugin).

    Args:
        model: The model restored.
        state: The restored loop state.
        checkpoint: The checkpoint's contents, read-only.
    """
