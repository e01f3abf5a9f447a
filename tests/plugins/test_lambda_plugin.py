from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense
from loopkit.plugins import LambdaPlugin


def make_model() -> lk.Sequential:
    lk.set_random_seed(2)
    model = lk.Sequential([Dense(2, input_dim=3), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((8, 3)).astype(np.float32)
    return x, x[:, :1].copy()


def hooks_of(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines())


def test_lambda_plugin_calls_each_function_with_keras_arguments(data) -> None:
    x, y = data
    calls: list[tuple[Any, ...]] = []
    plugin = LambdaPlugin(
        on_train_begin=lambda logs: calls.append(("train_begin", dict(logs))),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch, dict(logs))),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: calls.append(
            ("batch_end", batch, sorted(logs))
        ),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, dict(logs))),
        on_train_end=lambda logs: calls.append(("train_end", dict(logs))),
    )
    history = make_model().fit(x, y, epochs=2, batch_size=4, verbose=0, plugins=[plugin])
    last = {k: v[-1] for k, v in history.history.items()}
    first = {k: v[0] for k, v in history.history.items()}
    assert calls == [
        ("train_begin", {}),
        ("epoch_begin", 0, {}),
        ("batch_begin", 0),
        ("batch_end", 0, ["loss"]),
        ("batch_begin", 1),
        ("batch_end", 1, ["loss"]),
        ("epoch_end", 0, first),
        ("epoch_begin", 1, {}),
        ("batch_begin", 0),
        ("batch_end", 0, ["loss"]),
        ("batch_begin", 1),
        ("batch_end", 1, ["loss"]),
        ("epoch_end", 1, last),
        ("train_end", last),
    ]


def test_lambda_plugin_accepts_keras_batch_aliases(data) -> None:
    x, y = data
    batches: list[tuple[str, int]] = []
    plugin = LambdaPlugin(
        on_batch_begin=lambda batch, logs: batches.append(("begin", batch)),
        on_batch_end=lambda batch, logs: batches.append(("end", batch)),
    )
    make_model().fit(x, y, epochs=1, batch_size=4, verbose=0, plugins=[plugin])
    assert batches == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]
    assert sorted(plugin.functions) == ["on_train_batch_begin", "on_train_batch_end"]


def test_lambda_plugin_takes_any_other_hook_by_name(data) -> None:
    x, y = data
    seen: list[Any] = []
    plugin = LambdaPlugin(
        on_test_end=lambda logs: seen.append(("test_end", sorted(logs))),
        on_before_optimizer_step=lambda step: seen.append(("step", step.batch_size)),
        on_exception=lambda exception: seen.append(("exception", str(exception))),
    )
    model = make_model()
    model.fit(
        x, y, epochs=1, batch_size=8, verbose=0, validation_data=(x, y), plugins=[plugin]
    )
    assert seen == [("step", 8), ("test_end", ["loss"])]
    seen.clear()
    with pytest.raises(lk.ShapeError):
        model.predict(np.zeros((2, 5), np.float32), verbose=0, plugins=[plugin])
    assert seen[0][0] == "exception" and "(2, 5)" in seen[0][1]


def test_lambda_plugin_on_epoch_end_may_add_keys_for_later_plugins(data) -> None:
    x, y = data
    plugin = LambdaPlugin(
        on_epoch_end=lambda epoch, logs: logs.update(double=2 * logs["loss"])
    )
    history = make_model().fit(x, y, epochs=2, verbose=0, plugins=[plugin])
    assert history.history["double"] == [2 * v for v in history.history["loss"]]


def test_lambda_plugin_implements_only_the_hooks_given() -> None:
    plugin = LambdaPlugin(on_epoch_end=lambda epoch, logs: None)
    # Keras's empty Callback methods are there to call by hand, and are no hooks.
    assert plugin.on_train_batch_end(0, {}) is None
    hooks = hooks_of(make_model().show_loop(plugins=[plugin]))
    assert hooks["on_epoch_end"] == "lambda_plugin, history"
    assert hooks["on_train_batch_end"] == "-"
    assert hooks["on_train_batch_begin"] == "-"
    assert hooks["on_train_begin"] == "history"


def test_lambda_plugin_order_places_it_among_other_plugins() -> None:
    late = LambdaPlugin(on_epoch_end=lambda epoch, logs: None, order=2000)
    hooks = hooks_of(make_model().show_loop(plugins=[late]))
    assert hooks["on_epoch_end"] == "history, lambda_plugin"


def test_lambda_plugin_rejects_an_unknown_keyword_with_a_suggestion() -> None:
    with pytest.raises(
        lk.ConfigError,
        match=r"keyword 'on_epoch_ends', which is not a hook\. Did you mean "
        r"'on_epoch_end'\? Valid keywords: \['on_after_optimizer_step'",
    ):
        LambdaPlugin(on_epoch_ends=lambda epoch, logs: None)


def test_lambda_plugin_rejects_a_hook_given_twice() -> None:
    with pytest.raises(
        lk.ConfigError, match=r"both 'on_train_batch_end' and its alias 'on_batch_end'"
    ):
        LambdaPlugin(on_train_batch_end=print, on_batch_end=print)


def test_lambda_plugin_rejects_a_value_that_is_not_callable() -> None:
    with pytest.raises(
        TypeError,
        match=r"on_epoch_end=3 of type int; expected a function such "
        r"as on_epoch_end=lambda epoch, logs: \.\.\.",
    ):
        LambdaPlugin(on_epoch_end=3)
    with pytest.raises(TypeError, match=r"on_train_end='x' .* on_train_end=lambda logs: "):
        LambdaPlugin(on_train_end="x")


def test_lambda_plugin_without_any_function_is_refused() -> None:
    with pytest.raises(
        lk.ConfigError,
        match=r"LambdaPlugin\(\) got no function.*Pass at least "
        r"one, e\.g\. LambdaPlugin\(on_epoch_end=",
    ):
        LambdaPlugin()


def test_lambda_plugin_by_entry_point_name_fails_clearly(data) -> None:
    x, y = data
    with pytest.raises(
        lk.PluginError, match=r"'lambda_plugin'.*LambdaPlugin\(\) got no function"
    ):
        make_model().fit(x, y, epochs=1, verbose=0, plugins=["lambda_plugin"])


def test_two_lambda_plugins_run_in_one_fit(data) -> None:
    x, y = data
    seen: list[str] = []
    first = LambdaPlugin(on_train_begin=lambda logs: seen.append("first"))
    second = LambdaPlugin(on_train_begin=lambda logs: seen.append("second"))
    make_model().fit(x, y, epochs=1, verbose=0, plugins=[first, second])
    assert seen == ["first", "second"]
