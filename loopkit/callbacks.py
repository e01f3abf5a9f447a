"""Keras's ``keras.callbacks`` names: the Callback base, CallbackList, built-in plugins.

Keras code changes its import and runs::

    from loopkit import callbacks

    class StopAt2(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    model.fit(x, y, epochs=10, callbacks=[StopAt2(), callbacks.EarlyStopping()])

``Callback`` is ``loopkit.Plugin``: a subclass overrides Keras's methods unmarked
(called by position, as Keras does) or marks loopkit hooks with
``@loopkit.hookimpl``. ``self.model`` and ``self.params`` are set before every run
on any callback, subclass or not. The built-in plugins are here under their Keras
names (``LambdaCallback`` is ``loopkit.plugins.LambdaPlugin``, ``ProgbarLogger``
is ``loopkit.plugins.ProgressBar``), resolved on first use as in
``loopkit.plugins``, and can be driven by hand with Keras's arguments::

    stopper = callbacks.EarlyStopping(patience=1)
    stopper.set_model(model)
    stopper.on_train_begin()
    stopper.on_epoch_end(0, {"val_loss": 0.3})
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from loopkit._dispatch.plugin import KERAS_ALIASES, Plugin, bind_by_hand, is_by_hand
from loopkit._naming import plugin_name

if TYPE_CHECKING:  # resolved on first use at run time (see __getattr__)
    from loopkit.plugins import (
        BackupAndRestore,
        CSVLogger,
        EarlyStopping,
        History,
        LearningRateScheduler,
        ModelCheckpoint,
        ReduceLROnPlateau,
        TensorBoard,
        TerminateOnNaN,
    )
    from loopkit.plugins import LambdaPlugin as LambdaCallback
    from loopkit.plugins import ProgressBar as ProgbarLogger

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]

Callback = Plugin
"""Keras's ``keras.callbacks.Callback``: loopkit's Plugin base class."""

_PLUGINS = {  # Keras name -> name in loopkit.plugins
    "BackupAndRestore": "BackupAndRestore",
    "CSVLogger": "CSVLogger",
    "EarlyStopping": "EarlyStopping",
    "History": "History",
    "LambdaCallback": "LambdaPlugin",
    "LearningRateScheduler": "LearningRateScheduler",
    "ModelCheckpoint": "ModelCheckpoint",
    "ProgbarLogger": "ProgressBar",
    "ReduceLROnPlateau": "ReduceLROnPlateau",
    "TensorBoard": "TensorBoard",
    "TerminateOnNaN": "TerminateOnNaN",
}


def __getattr__(name: str) -> Any:
    target = _PLUGINS.get(name)
    if target is None:
        raise AttributeError(f"module 'loopkit.callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module("loopkit.plugins"), target)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def _introduce(callback: Any, attr: str, value: Any) -> None:
    setter = getattr(callback, f"set_{attr}", None)
    if callable(setter):
        setter(value)
    else:
        setattr(callback, attr, value)


class CallbackList:
    """Calls a list of callbacks by hand, as Keras's ``CallbackList`` (custom loops).

    Each ``on_*`` method calls that method of every callback that has it, with
    Keras's arguments; a loopkit hook implementation gets the arguments it names,
    ``model`` from ``set_model`` and ``state`` from ``model.state``. Iterating
    yields the callbacks, so ``fit(callbacks=CallbackList([...]))`` works too.

    Args:
        callbacks: The callbacks, in call order.
        add_history: Append a ``History`` (and set ``model.history`` to it).
        add_progbar: Append a ``ProgbarLogger``.
        model: Passed to ``set_model`` when given.
        **params: Passed to ``set_params`` when given.
    """

    def __init__(
        self,
        callbacks: Iterable[Any] | None = None,
        add_history: bool = False,
        add_progbar: bool = False,
        model: Any = None,
        **params: Any,
    ) -> None:
        self.callbacks: list[Any] = list(callbacks or [])
        self.model: Any = None
        self.params: dict[str, Any] = {}
        self._history: Any = None
        if add_history:
            from loopkit import History

            self._history = History()
            self.callbacks.append(self._history)
        if add_progbar:
            self.callbacks.append(__getattr__("ProgbarLogger")())
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self.callbacks))

    def __len__(self) -> int:
        return len(self.callbacks)

    def append(self, callback: Any) -> None:
        """Add ``callback`` at the end."""
        self.callbacks.append(callback)

    def set_model(self, model: Any) -> None:
        """Give every callback ``model`` (``set_model``, else a ``model`` attribute)."""
        self.model = model
        if self._history is not None:
            model.history = self._history
        for callback in self.callbacks:
            _introduce(callback, "model", model)

    def set_params(self, params: dict[str, Any]) -> None:
        """Give every callback ``params`` (``set_params``, else a ``params`` attribute)."""
        self.params = params
        for callback in self.callbacks:
            _introduce(callback, "params", params)

    def _call(self, attr: str, *args: Any, **kwargs: Any) -> None:
        hook = KERAS_ALIASES.get(attr, attr)
        for callback in self.callbacks:
            method = getattr(callback, attr, None)
            if not callable(method):
                continue
            if hasattr(method, "loopkit_impl") and not is_by_hand(method):
                params = tuple(inspect.signature(method).parameters)
                owner = f"{plugin_name(callback)}.{attr}()"
                method(**bind_by_hand(owner, hook, params, self.model, args, kwargs))
            else:
                method(*args, **kwargs)

    def on_train_begin(self, logs: Any = None) -> None:
        """Call every callback's ``on_train_begin``."""
        self._call("on_train_begin", logs)

    def on_train_end(self, logs: Any = None) -> None:
        """Call every callback's ``on_train_end``."""
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        """Call every callback's ``on_epoch_begin``."""
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        """Call every callback's ``on_epoch_end``."""
        self._call("on_epoch_end", epoch, logs)

    def on_batch_begin(self, batch: int, logs: Any = None) -> None:
        """Call every callback's ``on_batch_begin`` (Keras's alias)."""
        self._call("on_batch_begin", batch, logs)

    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        """Call every callback's ``on_batch_end`` (Keras's alias)."""
        self._call("on_batch_end", batch, logs)

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        """Call every callback's ``on_train_batch_begin``."""
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        """Call every callback's ``on_train_batch_end``."""
        self._call("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs: Any = None) -> None:
        """Call every callback's ``on_test_begin``."""
        self._call("on_test_begin", logs)

    def on_test_end(self, logs: Any = None) -> None:
        """Call every callback's ``on_test_end``."""
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch: int, logs: Any = None) -> None:
        """Call every callback's ``on_test_batch_begin``."""
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        """Call every callback's ``on_test_batch_end``."""
        self._call("on_test_batch_end", batch, logs)

    def on_predict_begin(self, logs: Any = None) -> None:
        """Call every callback's ``on_predict_begin``."""
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs: Any = None) -> None:
        """Call every callback's ``on_predict_end``."""
        self._call("on_predict_end", logs)

    def on_predict_batch_begin(self, batch: int, logs: Any = None) -> None:
        """Call every callback's ``on_predict_batch_begin``."""
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
        """Call every callback's ``on_predict_batch_end``."""
        self._call("on_predict_batch_end", batch, logs)
