"""Keras's training API on a model: fit, evaluate and predict, with their plugins."""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from attrs import define, field

from loopkit._data.datasets import (
    split_validation,
)
from loopkit._data.structures import (
    StructuredDataset,
)
from loopkit._dispatch.dispatcher import HookDispatcher, PluginRegistry, plugin_name
from loopkit._dispatch.entry_points import enabled_from_environment, resolve_plugin_names
from loopkit._training import loop
from loopkit._training.history import History
from loopkit._training.model_data import ModelData
from loopkit.errors import ConfigError, PluginError

__all__ = ["Trainer"]

_VERBOSE = (0, 1, 2, "auto")


def _resolve_verbose(verbose: Any, call: str) -> int:
    if isinstance(verbose, bool):  # Keras code passes verbose=True
        return int(verbose)
    if verbose not in _VERBOSE:
        raise ConfigError(
            f"{call} got verbose={verbose!r}; expected 0 (silent), 1 (progress bar), "
            "2 (one line per epoch) or 'auto'."
        )
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


@define(eq=False, slots=False)
class Trainer(ModelData):
    """``fit``, ``evaluate`` and ``predict``: check the arguments, then run the loop."""

    plugins: PluginRegistry = field(init=False, factory=PluginRegistry, repr=False)
    """Plugins that stay registered across calls: ``model.plugins.register(obj)``."""
    history: History | None = field(init=False, default=None, repr=False)
    """The History of the last ``fit``."""

    # --- plugins ----------------------------------------------------------------------

    def _dispatcher(
        self,
        plugins: Any,
        callbacks: Any,
        verbose: int,
        call: str,
        history: History | None = None,
    ) -> HookDispatcher:
        chosen: list[Any] = []
        for label, value in (("plugins", plugins), ("callbacks", callbacks)):
            if value is None:
                continue
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise PluginError(
                    f"{call} got {label}={value!r}; expected a list such as "
                    f"{label}=[EarlyStopping()] or {label}=['early_stopping']."
                )
            chosen.extend(value)
        resolved = resolve_plugin_names([*enabled_from_environment(), *chosen])
        run_plugins: list[Any] = [*self.plugins, *resolved]
        if history is not None:
            run_plugins.append(history)
        if verbose:
            from loopkit.plugins.progress import EpochLines, ProgressBar

            run_plugins.append(ProgressBar() if verbose == 1 else EpochLines())
        return HookDispatcher(run_plugins)

    def show_loop(self, plugins: Sequence[Any] | None = None, verbose: Any = 0) -> str:
        """Print and return, for each hook, the plugins ``fit`` would call, in order."""
        text = self._dispatcher(
            plugins,
            None,
            _resolve_verbose(verbose, "show_loop()"),
            "show_loop()",
            History(),
        ).describe()
        print(text)
        return text

    # --- checks shared by fit and evaluate --------------------------------------------

    def _check_compiled(self, call: str) -> None:
        if not self.compiled:
            raise ConfigError(
                f"{call} was called before compile(); call model.compile(optimizer=..., "
                "loss=...) first."
            )
        if all(head.loss is None for head in self.heads):  # Keras trains outputs with one
            raise ConfigError(
                f"{call} needs a loss, but compile() got loss=None; pass one such as "
                "loss='mse' or loss='sparse_categorical_crossentropy'."
            )

    @property
    def metrics_names(self) -> list[str]:
        """The keys ``evaluate`` returns, in order: ``loss``, outputs' losses, metrics."""
        return ["loss", *self.loss_term_names, *(m.name for m in self.metrics)]

    def _log_keys(self, validation: bool) -> frozenset[str]:
        keys = ["loss", *self.loss_term_names, *(m.name for m in self.metrics)]
        val_keys = ["val_" + k for k in keys] if validation else []
        return frozenset([*keys, *val_keys, "learning_rate"])

    def _check_required_keys(self, hooks: HookDispatcher, log_keys: frozenset[str]) -> None:
        plugins = hooks.originals()
        provided = set(log_keys)
        for plugin in plugins:
            provided.update(getattr(plugin, "provided_log_keys", ()) or ())
        for plugin in plugins:
            needed = getattr(plugin, "required_log_keys", ()) or ()
            missing = sorted(set(needed) - provided)
            if missing:
                raise ConfigError(
                    f"fit(): plugin {plugin_name(plugin)!r} needs the log key(s) "
                    f"{missing}, "
                    f"but this run logs only {sorted(provided)}. Add the metric to "
                    "compile(metrics=[...]), pass validation data for 'val_' keys, or "
                    "change the plugin's monitor=."
                )

    # --- the Keras API ----------------------------------------------------------------

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        plugins: Sequence[Any] | None = None,
        callbacks: Sequence[Any] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: Mapping[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int | Sequence[int] = 1,
    ) -> History:
        """Train for ``epochs`` epochs; return the History of the run (Keras semantics).

        Args:
            x: Inputs: an array (or a one-array list/dict), a pandas DataFrame or
                Series (a Series is one column), a generator or iterable of
                ``(x, y[, sample_weight])`` batches, or a Sequence (``len`` batches by
                index). A ``np.memmap`` trains without being loaded whole.
            y: Targets (an array, DataFrame or Series), for array ``x`` only.
            batch_size: Samples per batch (32 by default; None for generators).
            epochs: Index of the epoch to stop before (with ``initial_epoch``).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch, "auto": 1 on a
                terminal, else 2.
            plugins: Plugin objects or installed plugin names for this call.
            callbacks: Alias of ``plugins``, so Keras code runs as is.
            validation_split: Fraction of the samples, taken from the end before
                shuffling, held out for validation.
            validation_data: ``(x, y)``, ``(x, y, sample_weight)``, or a generator or
                Sequence; overrides ``validation_split``.
            shuffle: Visit the training samples in a new order every epoch.
            class_weight: Class index -> weight, multiplying each sample's loss.
            sample_weight: One weight per training sample.
            initial_epoch: Epoch to start at (to continue a previous run).
            steps_per_epoch: Batches per epoch; needed for a generator that never ends.
            validation_steps: Validation batches per epoch (all when None).
            validation_batch_size: Validation batch size (``batch_size`` when None).
            validation_freq: Validate every N epochs, or after the listed (1-based)
                epochs.

        Returns:
            The History plugin of this run, also stored as ``model.history``.

        Raises:
            ConfigError, ShapeError, TypeError: bad arguments or data, before any step.
        """
        call = "fit()"
        self._check_compiled(call)
        verbose_level = _resolve_verbose(verbose, call)
        for label, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or value < 0
            ):
                raise ConfigError(f"{call} got {label}={value!r}; expected an int >= 0.")
        if isinstance(validation_split, bool) or not (
            isinstance(validation_split, (int, float)) and 0.0 <= validation_split < 1.0
        ):
            raise ConfigError(
                f"{call} got validation_split={validation_split!r}; expected a fraction "
                "in [0, 1), such as 0.2 to hold out the last 20% of the samples."
            )
        validate_when = loop.validation_schedule(validation_freq)
        train = self._dataset(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=shuffle,
            steps=steps_per_epoch,
            class_weight=class_weight,
            call=call,
        )
        validation = None
        if validation_data is not None:
            validation = self._validation_dataset(
                validation_data, validation_batch_size or batch_size, validation_steps
            )
        elif validation_split and isinstance(train, StructuredDataset):
            train, validation = train.split(
                math.floor(len(train) * (1.0 - validation_split)),
                validation_batch_size or train.batch_size,
                validation_steps,
            )
        elif validation_split:
            if not hasattr(train, "x"):
                raise ConfigError(
                    f"{call} got validation_split={validation_split} with a "
                    f"{type(x).__name__}; a split needs arrays. Pass validation_data= "
                    "instead."
                )
            train, validation = split_validation(
                train,
                validation_split,
                call,
                validation_batch_size=validation_batch_size,
                validation_steps=validation_steps,
            )
        if getattr(validation, "one_shot", False) and validation_steps is None:
            validated = (
                e for e in range(int(initial_epoch), int(epochs)) if validate_when(e)
            )
            if len(list(itertools.islice(validated, 2))) > 1:
                raise ConfigError(
                    f"{call} got a generator as validation_data with no validation_steps; "
                    "it runs dry after the first validation. Pass validation_steps= (and "
                    "make it loop forever), or a Sequence or arrays."
                )
        self.stop_training = False
        history = History()
        hooks = self._dispatcher(plugins, callbacks, verbose_level, call, history)
        state = self.state
        state.epochs, state.initial_epoch = int(epochs), int(initial_epoch)
        state.steps_per_epoch = train.steps
        state.batch_size = getattr(train, "batch_size", None)
        state.train_data = train
        state.log_keys = self._log_keys(validation is not None)
        state.params = {
            "verbose": verbose_level,
            "epochs": int(epochs),
            "steps": train.steps,
        }
        self._check_required_keys(hooks, state.log_keys)
        _introduce(self, hooks, state.params)
        self.history = history
        loop.run_fit(
            self,
            hooks,
            train,
            validation,
            epochs=int(epochs),
            initial_epoch=int(initial_epoch),
            validation_freq=validate_when,
        )
        return history

    def _validation_dataset(
        self, data: Any, batch_size: int | None, steps: int | None
    ) -> Any:
        call = "fit(validation_data=...)"
        if (
            isinstance(data, list)
            and len(data) in (2, 3)
            and not any(isinstance(item, tuple) for item in data)
        ):
            data = tuple(data)  # Keras reads a list as (x, y[, sample_weight]) too
        if isinstance(data, tuple):
            if len(data) not in (2, 3):
                raise ConfigError(
                    f"{call} got a tuple of {len(data)} items; expected (x_val, y_val) or "
                    "(x_val, y_val, sample_weight_val)."
                )
            vx, vy, vw = (*data, None)[:3]
            return self._dataset(
                vx,
                vy,
                vw,
                batch_size=batch_size,
                shuffle=False,
                steps=steps,
                class_weight=None,
                call=call,
            )
        return self._dataset(
            data,
            None,
            None,
            batch_size=None,
            shuffle=False,
            steps=steps,
            class_weight=None,
            call=call,
        )

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        plugins: Sequence[Any] | None = None,
        callbacks: Sequence[Any] | None = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """Return the loss (and metrics) over ``x``/``y``, as Keras does.

        Returns:
            The loss when no metric is compiled, else ``[loss, *metrics]``; the dict
            ``{"loss": ..., name: ...}`` with ``return_dict=True``.
        """
        call = "evaluate()"
        self._check_compiled(call)
        level = _resolve_verbose(verbose, call)
        data = self._dataset(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=False,
            steps=steps,
            class_weight=None,
            call=call,
        )
        hooks = self._dispatcher(plugins, callbacks, level, call)
        _introduce(self, hooks, {"verbose": level, "epochs": 1, "steps": data.steps})
        logs = loop.run_evaluate(self, hooks, data)
        result: float | list[float] | dict[str, float] = self._keras_result(
            logs, return_dict
        )
        return result

    def _keras_result(self, logs: Mapping[str, float], return_dict: bool) -> Any:
        if return_dict:
            return dict(logs)
        keys = [*self.loss_term_names, *(m.name for m in self.metrics)]
        if not keys:
            return logs["loss"]
        return [logs["loss"], *(logs[k] for k in keys)]

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        plugins: Sequence[Any] | None = None,
        callbacks: Sequence[Any] | None = None,
    ) -> Any:
        """Return the model's outputs for ``x``, batch by batch, concatenated.

        One output comes as an array; several as a list in output order, or a dict
        when the model's outputs were given as a dict.
        """
        call = "predict()"
        level = _resolve_verbose(verbose, call)
        data = self._inputs_dataset(x, batch_size, steps, call)
        hooks = self._dispatcher(plugins, callbacks, level, call)
        _introduce(self, hooks, {"verbose": level, "epochs": 1, "steps": data.steps})
        return loop.run_predict(self, hooks, data)


def _introduce(model: Trainer, hooks: HookDispatcher, params: dict[str, Any]) -> None:
    """Give the plugins the model and Keras's ``params`` (``set_model``/``set_params``)."""
    hooks.introduce(model, params)
