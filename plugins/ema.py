"""EMA: an exponential moving average of the weights, for evaluation and checkpoints."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from attrs import define, field

from loopkit import (
    CheckpointError,
    ConfigError,
    LoopState,
    OptimizerStep,
    Plugin,
    Sequential,
    ShapeError,
    hookimpl,
)
from loopkit.typing import FloatArray
from loopkit.validators import boolean, in_half_open_range

__all__ = ["EMA"]


@define(eq=False, slots=False)
class EMA(Plugin):
    """Keep an exponential moving average (EMA) of the weights during ``fit``.

    After every applied optimizer step (``on_after_optimizer_step``; skipped steps
    are ignored) the average is updated over ``model.flat_weights`` with three
    in-place vectorized calls and no allocation:
    ``shadow = decay * shadow + (1 - decay) * weights`` (Polyak averaging; computed
    as ``(shadow - weights) * decay + weights``, so weights that do not move, such as
    frozen layers', stay bit-identical in the average). Every weight is averaged,
    including non-trainable state such as moving statistics. The average starts from
    the weights at ``on_train_begin`` of each ``fit``, unless ``load_state_dict``
    restored one.

    Keras 3 does this inside the optimizer (``use_ema=True``, ``ema_momentum=0.99``,
    ``ema_overwrite_frequency``); ``decay`` is its ``ema_momentum``, and as a plugin
    it works with any optimizer and can be added to one run only. Like Keras with
    ``use_ema``, ``use_for_eval=True`` overwrites the weights with the average at the
    end of a ``fit`` that did not fail. Unlike Keras, it also evaluates the average
    during ``fit``:

    - every evaluation inside ``fit`` (validation, or an ``evaluate`` a plugin runs)
      sees the average: it is swapped in at ``on_test_begin`` (``tryfirst``) and
      out at ``on_test_end`` (``trylast``);
    - ``on_epoch_end`` is wrapped (``@hookimpl(wrapper=True)``), so every plugin's
      ``on_epoch_end`` (ModelCheckpoint, EarlyStopping with restore_best_weights,
      BackupAndRestore) sees the averaged weights, whatever its order; training then
      continues from the raw weights. If a plugin writes the weights there (e.g. a
      restore of the best weights), they are kept, and the average restarts from
      them;
    - ``evaluate``/``predict`` outside ``fit`` use the model's weights as they are;
      use ``swap`` or ``copy_to`` for the average.

    Swapping copies into one spare buffer allocated once: no allocation per swap.
    A checkpoint written while the average is swapped in (at ``on_epoch_end``) holds
    the averaged weights as the model's, so ``state_dict`` then also holds the raw
    weights, which ``load_state_dict`` puts back (at ``on_load_checkpoint``, or the
    next ``on_train_begin``): a resumed run continues from the raw weights.

    Args:
        decay: Share of the average kept at each step, in [0, 1) (Keras's
            ``ema_momentum``, whose default is 0.99); the average spans about
            ``1 / (1 - decay)`` steps.
        use_for_eval: Evaluate and checkpoint the average during ``fit``, and assign
            it to the model at the end of ``fit``.
        name: Checkpoint key and ordering name (two EMAs of one run get ``ema``
            and ``ema_1`` without it).
    """

    default_name = "ema"
    default_order = 0

    decay: float = field(default=0.999, validator=in_half_open_range(0, 1))
    use_for_eval: bool = field(default=False, validator=boolean)
    _shadow: FloatArray | None = field(default=None, init=False, repr=False)
    _spare: FloatArray | None = field(default=None, init=False, repr=False)
    _depth: int = field(default=0, init=False, repr=False)
    _in_fit: bool = field(default=False, init=False, repr=False)
    _restored: bool = field(default=False, init=False, repr=False)
    _pending_raw: FloatArray | None = field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.decay = float(self.decay)  # validated as given, so messages show it

    @property
    def shadow(self) -> FloatArray | None:
        """The moving average, aligned with ``model.flat_weights`` (None before fit)."""
        return self._shadow

    # --- the average -------------------------------------------------------------------

    @hookimpl
    def on_train_begin(self, model: Sequential) -> None:
        weights = model.flat_weights
        self._put_back_raw(model)
        if self._restored:
            self._restored = False
            shadow = self._check_fits(model, "EMA.load_state_dict()", CheckpointError)
            if shadow.dtype != weights.dtype:
                self._shadow = shadow.astype(weights.dtype)
        else:
            old = self._shadow
            if (
                old is not None
                and old.shape == weights.shape
                and old.dtype == weights.dtype
            ):
                np.copyto(old, weights)
            else:
                self._shadow = weights.copy()
        self._depth = 0
        self._in_fit = True

    @hookimpl
    def on_after_optimizer_step(self, model: Sequential, step: OptimizerStep) -> None:
        if step.skip:
            return
        shadow, weights = self._shadow, model.flat_weights
        assert shadow is not None
        np.subtract(shadow, weights, out=shadow)
        shadow *= self.decay
        shadow += weights

    # --- swapping the average in for evaluation and epoch-end plugins ------------------

    @hookimpl(tryfirst=True)
    def on_test_begin(self, model: Sequential) -> None:
        if self.use_for_eval and self._in_fit:
            self._swap_in(model)

    @hookimpl(trylast=True)
    def on_test_end(self, model: Sequential) -> None:
        if self.use_for_eval and self._in_fit:
            self._swap_out(model)

    @hookimpl(wrapper=True)
    def on_epoch_end(self, model: Sequential) -> Generator[None, Any, Any]:
        if not (self.use_for_eval and self._in_fit):
            return (yield)
        self._swap_in(model)
        try:
            result = yield
        except BaseException:
            self._restore(model)
            raise
        self._swap_out(model, keep_written=True)
        return result

    @hookimpl
    def on_exception(self, model: Sequential) -> None:
        self._restore(model)

    @hookimpl(tryfirst=True)  # before plugins that restore weights at the end
    def on_train_end(self, model: Sequential, state: LoopState) -> None:
        self._restore(model)
        self._in_fit = False
        if self.use_for_eval and state.exception is None and self._shadow is not None:
            np.copyto(model.flat_weights, self._shadow)

    @hookimpl
    def on_load_checkpoint(self, model: Sequential) -> None:
        self._put_back_raw(model)

    @contextmanager
    def swap(self, model: Sequential) -> Iterator[Sequential]:
        """Put the average into ``model`` inside a ``with`` block, the raw weights after.

        ``with ema.swap(model): model.evaluate(x, y)``. The raw weights come back
        when the block ends, also on an error; changes made to the weights inside the
        block are discarded. Nested swaps are no-ops.

        Raises:
            ConfigError: there is no average yet (fit with this plugin first).
            ShapeError: ``model`` is not the model the average was taken of.
        """
        self._swap_in(model)
        try:
            yield model
        finally:
            self._swap_out(model)

    def copy_to(self, model: Sequential) -> None:
        """Overwrite ``model``'s weights with the average, for good (ends any swap).

        Raises:
            ConfigError: there is no average yet (fit with this plugin first).
            ShapeError: ``model`` is not the model the average was taken of.
        """
        shadow = self._check_fits(model, "EMA.copy_to()", ShapeError)
        self._depth = 0  # the raw weights are dropped, so no swap puts them back
        np.copyto(model.flat_weights, shadow)

    def _check_fits(
        self, model: Sequential, call: str, error: type[Exception]
    ) -> FloatArray:
        if self._shadow is None:
            raise ConfigError(
                f"{call}: there is no moving average yet; fit the model with this EMA "
                "plugin first, or restore one with load_state_dict()."
            )
        size = model.flat_weights.size
        if self._shadow.shape != (size,):
            raise error(
                f"{call}: the moving average holds {self._shadow.size} values, but model "
                f"{model.name!r} has {size} weights. Use the model the average was "
                "taken of."
            )
        return self._shadow

    def _swap_in(self, model: Sequential) -> None:
        if self._depth == 0:
            shadow = self._check_fits(model, "EMA.swap()", ShapeError)
            weights = model.flat_weights
            if self._spare is None or self._spare.shape != weights.shape:
                self._spare = np.empty_like(weights)
            np.copyto(self._spare, weights)
            np.copyto(weights, shadow)
        self._depth += 1

    def _swap_out(self, model: Sequential, keep_written: bool = False) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth:
            return
        weights = model.flat_weights
        assert self._spare is not None and self._shadow is not None
        if keep_written and not np.array_equal(weights, self._shadow, equal_nan=True):
            np.copyto(self._shadow, weights)  # a plugin set the weights: keep them
            return
        np.copyto(weights, self._spare)

    def _restore(self, model: Sequential) -> None:
        if self._depth:
            self._depth = 1
            self._swap_out(model)

    def _put_back_raw(self, model: Sequential) -> None:
        raw, self._pending_raw = self._pending_raw, None
        if raw is None:
            return
        weights = model.flat_weights
        if raw.shape != weights.shape:
            raise CheckpointError(
                f"EMA.load_state_dict(): the saved raw weights have shape {raw.shape}, "
                f"but model {model.name!r} has weights of shape {weights.shape}. Resume "
                "with the model the checkpoint was written for."
            )
        np.copyto(weights, raw, casting="same_kind")

    # --- resumable state ----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Return the average and, while it is swapped in, the raw weights."""
        swapped = self._depth > 0 and self._spare is not None
        return {
            "shadow": None if self._shadow is None else np.array(self._shadow, copy=True),
            "raw": np.array(self._spare, copy=True) if swapped else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned; the next ``fit`` keeps this average.

        Raises:
            CheckpointError: inside ``fit``, the saved average does not fit the model.
        """
        shadow = state.get("shadow")
        raw = state.get("raw")
        self._pending_raw = None if raw is None else np.array(raw, copy=True)
        if shadow is None:
            return
        shadow = np.asarray(shadow)
        if self._in_fit and self._shadow is not None:  # restored after on_train_begin
            if shadow.shape != self._shadow.shape:
                raise CheckpointError(
                    f"EMA.load_state_dict(): the saved average has shape {shadow.shape}, "
                    f"but the model's weights have shape {self._shadow.shape}. Resume "
                    "with the model the checkpoint was written for."
                )
            np.copyto(self._shadow, shadow, casting="same_kind")
        else:
            self._shadow = np.array(shadow, copy=True)
            self._restored = True
