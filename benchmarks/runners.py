"""The runners: a workload trained by the floor, loopkit, Keras 3 (JAX) or PyTorch eager.

Each runner builds the workload's model with its framework's defaults (Glorot
initializers where the framework has them, Adam(1e-3), sparse categorical
cross-entropy on a softmax output) and exposes the same four calls to the worker:
``fit`` (epochs over shuffled data, last partial batch included; returns each
epoch's seconds with the calibration probes around it), ``train_on_batch``,
``loss`` and ``sync``.
"""

from __future__ import annotations

import importlib.util
import itertools
import time
from typing import Any

import numpy as np

from benchmarks.calibration import probe
from benchmarks.floor import FloorConv, FloorMLP
from benchmarks.floor_lstm import FloorLSTM
from benchmarks.workloads import CLASSES, Workload

__all__ = ["RUNNERS", "availability", "import_framework", "make_runner"]

Timing = tuple[float, float, float]
"""``(seconds, probe before, probe after)`` of one timed repetition."""

RUNNERS = ("floor", "loopkit", "functional", "keras", "torch")
"""Every runner, in the table's column order."""

_NEEDS = {
    "floor": (),
    "loopkit": ("loopkit",),
    "functional": ("loopkit",),
    "keras": ("keras", "jax"),
    "torch": ("torch",),
}


def availability(runner: str) -> str | None:
    """Return None if ``runner`` can run here, else why not (the missing packages)."""
    missing = [m for m in _NEEDS[runner] if importlib.util.find_spec(m) is None]
    if missing:
        return f"not installed: {', '.join(missing)}"
    return None


class FloorRunner:
    """The hand-written NumPy floor (``benchmarks.floor``)."""

    label = "floor (NumPy by hand)"

    def __init__(self, workload: Workload, seed: int) -> None:
        if workload.model == "conv":
            self.net: Any = FloorConv(
                workload.input_shape, workload.hidden, workload.batch_size, seed
            )
        elif workload.model == "lstm":
            self.net = FloorLSTM(
                workload.input_shape, workload.hidden[0], CLASSES, workload.batch_size, seed
            )
        else:
            self.net = FloorMLP(
                (workload.features, *workload.hidden, CLASSES), workload.batch_size, seed
            )
        self.rng = np.random.default_rng(seed)

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int) -> list[Timing]:
        timer = EpochTimer()
        for _ in range(epochs):
            timer.begin()
            self.net.fit_epoch(x, y, self.rng.permutation(len(x)))
            timer.end()
        return timer.timings

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> None:
        self.net.train_on_batch(x, y)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self.net.loss(x, y))

    def sync(self) -> None:
        pass

    def version(self) -> str:
        return f"numpy {np.__version__}"


class LoopkitRunner:
    """loopkit's ``fit``/``train_on_batch`` with default settings."""

    label = "loopkit"

    def __init__(self, workload: Workload, seed: int, functional: bool = False) -> None:
        import loopkit as lk
        from loopkit.layers import LSTM, Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D

        self.lk = lk
        lk.set_random_seed(seed)
        if workload.model == "conv":
            f1, f2 = workload.hidden
            layers = [
                Conv2D(f1, 3, activation="relu", input_shape=workload.input_shape),
                MaxPooling2D(),
                Conv2D(f2, 3, activation="relu"),
                GlobalAveragePooling2D(),
                Dense(CLASSES, activation="softmax"),
            ]
        elif workload.model == "lstm":
            layers = [
                LSTM(workload.hidden[0], input_shape=workload.input_shape),
                Dense(CLASSES, activation="softmax"),
            ]
        else:
            first, *rest = workload.hidden
            layers = [Dense(first, activation="relu", input_shape=workload.input_shape)]
            layers += [Dense(units, activation="relu") for units in rest]
            layers.append(Dense(CLASSES, activation="softmax"))
        if functional:  # the same chain through the functional API
            first_layer = layers[0]
            first_layer.input_shape = None
            tensor = inputs = lk.Input(shape=workload.input_shape)
            for layer in layers:
                tensor = layer(tensor)
            self.model = lk.Model(inputs, tensor)
            self.label = "loopkit functional"
        else:
            self.model = lk.Sequential(layers)
        self.model.compile(
            optimizer=lk.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy"
        )
        self.batch_size = workload.batch_size

    def fit(
        self, x: np.ndarray, y: np.ndarray, epochs: int, plugins: list[Any] | None = None
    ) -> list[Timing]:
        timer = EpochTimer.for_loopkit(self.lk)
        self.model.fit(
            x,
            y,
            batch_size=self.batch_size,
            epochs=epochs,
            verbose=0,
            shuffle=True,
            plugins=[timer, *(plugins or [])],
        )
        return timer.timings

    def fit_wall(
        self, x: np.ndarray, y: np.ndarray, epochs: int, plugins: list[Any] | None = None
    ) -> Timing:
        """One whole ``fit`` call, bracketed by probes (for the plugin workload)."""
        before = probe()
        start = time.perf_counter()
        self.model.fit(
            x,
            y,
            batch_size=self.batch_size,
            epochs=epochs,
            verbose=0,
            shuffle=True,
            plugins=plugins,
        )
        seconds = time.perf_counter() - start
        return seconds, before, probe()

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> None:
        self.model.train_on_batch(x, y)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self.model.evaluate(x, y, batch_size=self.batch_size, verbose=0))

    def sync(self) -> None:
        pass

    def version(self) -> str:
        return f"loopkit {self.lk.__version__}"


class EpochTimer:
    """Times each epoch (a plugin or callback) and probes the machine before and after.

    The probes run outside the timed span (see ``benchmarks.calibration``).
    """

    def __init__(self) -> None:
        self.timings: list[Timing] = []
        self._start = 0.0
        self._before = 0.0

    def begin(self) -> None:
        self._before = probe()
        self._start = time.perf_counter()

    def end(self) -> None:
        seconds = time.perf_counter() - self._start
        self.timings.append((seconds, self._before, probe()))

    @classmethod
    def for_loopkit(cls, lk: Any) -> Any:
        class LoopkitEpochTimer(cls):  # type: ignore[misc, valid-type]
            name = "epoch_timer"

            @lk.hookimpl
            def on_epoch_begin(self) -> None:
                self.begin()

            @lk.hookimpl
            def on_epoch_end(self) -> None:
                self.end()

        return LoopkitEpochTimer()


class KerasRunner:
    """Keras 3 ``fit``/``train_on_batch`` on the JAX backend (jit, the default)."""

    label = "Keras 3 (JAX)"

    def __init__(self, workload: Workload, seed: int) -> None:
        import keras

        if keras.backend.backend() != "jax":
            raise RuntimeError(
                f"Keras runs on {keras.backend.backend()!r}; the worker sets "
                "KERAS_BACKEND=jax before importing it."
            )
        self.keras = keras
        keras.utils.set_random_seed(seed)
        layers = keras.layers
        stack: list[Any] = [keras.Input(workload.input_shape)]
        if workload.model == "conv":
            f1, f2 = workload.hidden
            stack += [
                layers.Conv2D(f1, 3, activation="relu"),
                layers.MaxPooling2D(),
                layers.Conv2D(f2, 3, activation="relu"),
                layers.GlobalAveragePooling2D(),
            ]
        elif workload.model == "lstm":
            stack.append(layers.LSTM(workload.hidden[0]))
        else:
            stack += [layers.Dense(units, activation="relu") for units in workload.hidden]
        stack.append(layers.Dense(CLASSES, activation="softmax"))
        self.model = keras.Sequential(stack)
        self.model.compile(
            optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy"
        )
        self.batch_size = workload.batch_size

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int) -> list[Timing]:
        keras = self.keras
        timer = EpochTimer()

        class Callback(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                timer.begin()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                timer.end()

        self.model.fit(
            x,
            y,
            batch_size=self.batch_size,
            epochs=epochs,
            verbose=0,
            shuffle=True,
            callbacks=[Callback()],
        )
        return timer.timings

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> None:
        self.model.train_on_batch(x, y)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self.model.evaluate(x, y, batch_size=self.batch_size, verbose=0))

    def sync(self) -> None:
        import jax

        for w in self.model.trainable_variables:
            jax.block_until_ready(w.value)

    def version(self) -> str:
        import jax

        return f"keras {self.keras.__version__}, jax {jax.__version__}"


class TorchRunner:
    """PyTorch eager: the usual hand-written loop with ``torch.optim.Adam``.

    Shuffling draws ``torch.randperm`` each epoch and gathers each batch with
    fancy indexing from tensors that share the NumPy arrays' memory. Adam's
    epsilon is Keras's 1e-7 (PyTorch's default is 1e-8); images are fed as NCHW.
    """

    label = "PyTorch eager"

    def __init__(self, workload: Workload, seed: int, threads: int) -> None:
        import torch
        from torch import nn

        self.torch = torch
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        if workload.model == "conv":
            c = workload.input_shape[2]
            f1, f2 = workload.hidden
            modules: list[Any] = [
                nn.Conv2d(c, f1, 3), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(f1, f2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                nn.Linear(f2, CLASSES),
            ]  # fmt: skip
        elif workload.model == "lstm":
            modules = [_torch_lstm_last(workload.input_shape[1], workload.hidden[0])]
            modules.append(nn.Linear(workload.hidden[0], CLASSES))
        else:
            widths = (workload.features, *workload.hidden)
            modules = []
            for k, n in itertools.pairwise(widths):
                modules += [nn.Linear(k, n), nn.ReLU()]
            modules.append(nn.Linear(widths[-1], CLASSES))
        self.model = nn.Sequential(*modules)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, eps=1e-7)
        self.loss_fn = nn.CrossEntropyLoss()  # log-softmax + NLL, fused
        self.batch_size = workload.batch_size
        self.conv = workload.model == "conv"

    def _tensor(self, x: np.ndarray) -> Any:
        if self.conv:  # NHWC -> NCHW: a view for one channel, one copy otherwise
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return self.torch.from_numpy(x)

    def _step(self, xb: Any, yb: Any) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(xb), yb)
        loss.backward()
        self.opt.step()
        return float(loss.item())

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int) -> list[Timing]:
        torch = self.torch
        xt, yt = self._tensor(x), torch.from_numpy(y)
        n, size, timer = len(x), self.batch_size, EpochTimer()
        self.model.train()
        for _ in range(epochs):
            timer.begin()
            order = torch.randperm(n)
            for first in range(0, n, size):
                index = order[first : first + size]
                self._step(xt[index], yt[index])
            timer.end()
        return timer.timings

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> None:
        self._step(self._tensor(x), self.torch.from_numpy(y))

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        torch = self.torch
        total = 0.0
        with torch.no_grad():
            for first in range(0, len(x), self.batch_size):
                xb = self._tensor(x[first : first + self.batch_size])
                yb = torch.from_numpy(y[first : first + self.batch_size])
                total += float(self.loss_fn(self.model(xb), yb)) * len(yb)
        return total / len(x)

    def sync(self) -> None:
        pass

    def version(self) -> str:
        return f"torch {self.torch.__version__}"


def _torch_lstm_last(features: int, units: int) -> Any:
    """Return a torch module: ``nn.LSTM`` over ``(batch, steps, features)``, last output."""
    from torch import nn

    class LastOutput(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(features, units, batch_first=True)

        def forward(self, x: Any) -> Any:
            _, (h, _) = self.lstm(x)
            return h[-1]

    return LastOutput()


def import_framework(name: str) -> None:
    """Import runner ``name``'s framework, so memory measured after excludes its code."""
    for module in _NEEDS[name]:
        importlib.import_module(module)


def make_runner(name: str, workload: Workload, seed: int, threads: int) -> Any:
    """Build runner ``name`` for ``workload`` (importing its framework now)."""
    if name == "floor":
        return FloorRunner(workload, seed)
    if name == "loopkit":
        return LoopkitRunner(workload, seed)
    if name == "functional":
        return LoopkitRunner(workload, seed, functional=True)
    if name == "keras":
        return KerasRunner(workload, seed)
    if name == "torch":
        return TorchRunner(workload, seed, threads)
    raise ValueError(f"unknown runner {name!r}; expected one of {list(RUNNERS)}")
