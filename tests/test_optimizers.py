"""Optimizers against Keras 3's update equations written out per parameter in float64."""

from __future__ import annotations

import inspect
import json
import math
import re
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from loopkit import optimizers
from loopkit.errors import CheckpointError, ConfigError, ShapeError
from loopkit.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Nadam,
    Optimizer,
    RMSprop,
)
from loopkit.optimizers import base as optimizer_base
from loopkit.schedules import ExponentialDecay, PiecewiseConstantDecay

# Flat layout: a (2, 3) kernel, a frozen (4,) block, then two adjacent trainable
# parameters that merge into one segment but are clipped separately by clipnorm.
PARAMS = {"a": slice(0, 6), "frozen": slice(6, 10), "b": slice(10, 15), "c": slice(15, 18)}
SIZE = 18
TRAINABLE = [PARAMS["a"], PARAMS["b"], PARAMS["c"]]
STEPS = 6

# --- reference update rules: Keras 3's equations, one parameter at a time ------------


def ref_sgd(w, g, st, lr, t, glob, momentum=0.0, nesterov=False):  # type: ignore[no-untyped-def]
    if momentum == 0:
        return w - lr * g
    m = momentum * st.get("m", 0 * w) - lr * g
    st["m"] = m
    return w + momentum * m - lr * g if nesterov else w + m


def ref_rmsprop(w, g, st, lr, t, glob, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):  # type: ignore[no-untyped-def]
    v = rho * st.get("v", 0 * w) + (1 - rho) * g**2
    st["v"] = v
    if centered:
        a = rho * st.get("a", 0 * w) + (1 - rho) * g
        st["a"] = a
        denominator = v - a**2 + epsilon
    else:
        denominator = v + epsilon
    increment = lr * g / np.sqrt(denominator)
    if momentum > 0:
        st["mom"] = momentum * st.get("mom", 0 * w) + increment
        return w - st["mom"]
    return w - increment


def ref_adam(w, g, st, lr, t, glob, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):  # type: ignore[no-untyped-def]
    m = st.get("m", 0 * w)
    v = st.get("v", 0 * w)
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    st["m"], st["v"] = m, v
    if amsgrad:
        st["vhat"] = np.maximum(st.get("vhat", 0 * w), v)
        v = st["vhat"]
    alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    return w - alpha * m / (np.sqrt(v) + epsilon)


def ref_adamax(w, g, st, lr, t, glob, beta_1=0.9, beta_2=0.999, epsilon=1e-7):  # type: ignore[no-untyped-def]
    m = st.get("m", 0 * w)
    m = m + (g - m) * (1 - beta_1)
    u = np.maximum(beta_2 * st.get("u", 0 * w), np.abs(g))
    st["m"], st["u"] = m, u
    return w - lr * m / ((1 - beta_1**t) * (u + epsilon))


def ref_adagrad(w, g, st, lr, t, glob, initial_accumulator_value=0.1, epsilon=1e-7):  # type: ignore[no-untyped-def]
    acc = st.get("acc", np.full_like(w, initial_accumulator_value)) + g**2
    st["acc"] = acc
    return w - lr * g / np.sqrt(acc + epsilon)


def ref_adadelta(w, g, st, lr, t, glob, rho=0.95, epsilon=1e-7):  # type: ignore[no-untyped-def]
    eg = rho * st.get("eg", 0 * w) + (1 - rho) * g**2
    ed = st.get("ed", 0 * w)
    delta = -np.sqrt(ed + epsilon) * g / np.sqrt(eg + epsilon)
    st["eg"], st["ed"] = eg, rho * ed + (1 - rho) * delta**2
    return w + lr * delta


def ref_nadam(w, g, st, lr, t, glob, beta_1=0.9, beta_2=0.999, epsilon=1e-7):  # type: ignore[no-untyped-def]
    u_t = beta_1 * (1 - 0.5 * 0.96**t)
    u_next = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
    if glob.get("t") != t:  # the product of u is advanced once per step, not per weight
        glob["product"], glob["t"] = glob.get("product", 1.0) * u_t, t
    product = glob["product"]
    m = st.get("m", 0 * w)
    v = st.get("v", 0 * w)
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    st["m"], st["v"] = m, v
    m_hat = u_next * m / (1 - product * u_next) + (1 - u_t) * g / (1 - product)
    v_hat = v / (1 - beta_2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + epsilon)


REFERENCES: dict[type[Optimizer], Callable[..., Any]] = {
    SGD: ref_sgd,
    RMSprop: ref_rmsprop,
    Adam: ref_adam,
    AdamW: ref_adam,
    Adamax: ref_adamax,
    Adagrad: ref_adagrad,
    Adadelta: ref_adadelta,
    Nadam: ref_nadam,
}
BASE_ARGS = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm")


def reference_run(cls, kwargs, w0, grads, lrs):  # type: ignore[no-untyped-def]
    """Keras 3's apply(): clip, decay the weights, update; per parameter, float64."""
    rule = REFERENCES[cls]
    hyper = {k: v for k, v in kwargs.items() if k not in (*BASE_ARGS, "learning_rate")}
    wd = kwargs.get("weight_decay", 0.004 if cls is AdamW else None)
    ws = [w0[s].astype(np.float64) for s in TRAINABLE]
    states: list[dict[str, Any]] = [{} for _ in TRAINABLE]
    glob: dict[str, Any] = {}
    for t, (g_flat, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        gs = [g_flat[s].astype(np.float64) for s in TRAINABLE]
        if kwargs.get("clipnorm"):
            c = kwargs["clipnorm"]
            gs = [g * c / max(np.sqrt(np.sum(g * g)), c) for g in gs]
        if kwargs.get("global_clipnorm"):
            c = kwargs["global_clipnorm"]
            norm = np.sqrt(sum(np.sum(g * g) for g in gs))
            gs = [g * c * min(1 / norm, 1 / c) for g in gs]
        if kwargs.get("clipvalue"):
            gs = [np.clip(g, -kwargs["clipvalue"], kwargs["clipvalue"]) for g in gs]
        if wd:
            ws = [w - w * wd * lr for w in ws]
        ws = [
            rule(w, g, st, lr, t, glob, **hyper)
            for w, g, st in zip(ws, gs, states, strict=True)
        ]
    out = w0.astype(np.float64)
    for s, w in zip(TRAINABLE, ws, strict=True):
        out[s] = w
    return out


def make_data(rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Any, list[Any]]:
    w0 = rng.standard_normal(SIZE).astype(dtype)
    grads = [(3.0 * rng.standard_normal(SIZE) + 0.5).astype(dtype) for _ in range(STEPS)]
    for g in grads:
        g[PARAMS["frozen"]] = 100.0  # would dominate the global norm if it were counted
    return w0, grads


def run(opt: Optimizer, w0: Any, grads: list[Any], lrs: list[float] | None = None) -> Any:
    params = w0.copy()
    opt.build(SIZE, w0.dtype, TRAINABLE)
    buf = np.empty_like(w0)  # the model's gradient buffer, overwritten each step
    for i, g in enumerate(grads):
        if lrs is not None:
            opt.learning_rate = lrs[i]
        buf[...] = g
        opt.apply(params, buf)
    return params


VARIANTS = [
    (SGD, {"learning_rate": 0.1}),
    (SGD, {"learning_rate": 0.1, "momentum": 0.8}),
    (SGD, {"learning_rate": 0.1, "momentum": 0.8, "nesterov": True}),
    (RMSprop, {"learning_rate": 0.01, "rho": 0.8, "epsilon": 1e-3}),
    (RMSprop, {"learning_rate": 0.01, "momentum": 0.7, "epsilon": 1e-3}),
    (RMSprop, {"learning_rate": 0.01, "centered": True, "epsilon": 1e-3}),
    (RMSprop, {"learning_rate": 0.01, "momentum": 0.7, "centered": True}),
    (Adam, {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3}),
    (Adam, {"learning_rate": 0.05, "beta_2": 0.9, "amsgrad": True, "epsilon": 1e-3}),
    (AdamW, {"learning_rate": 0.05, "weight_decay": 0.1, "beta_1": 0.8}),
    (AdamW, {"learning_rate": 0.05, "amsgrad": True}),
    (Adamax, {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3}),
    (Adagrad, {"learning_rate": 0.05, "initial_accumulator_value": 0.5, "epsilon": 1e-3}),
    (Adadelta, {"learning_rate": 1.0, "rho": 0.8, "epsilon": 1e-3}),
    (Nadam, {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3}),
]
DEFAULTS = [(cls, {}) for cls in REFERENCES]
EXTRAS = [{"weight_decay": 0.05}, {"clipnorm": 1.0}, {"global_clipnorm": 2.0}]
EXTRAS += [{"clipvalue": 0.5}]


def case_id(case: Any) -> str:
    return (
        type(case).__name__
        if not isinstance(case, dict)
        else "-".join(f"{k}={v}" for k, v in case.items() if k != "learning_rate")
        or "defaults"
    )


def assert_matches_reference(cls: Any, kwargs: dict[str, Any], rng: Any) -> None:
    w0, grads = make_data(rng)
    opt = cls(**kwargs)
    lr = kwargs.get("learning_rate", opt.learning_rate)
    got = run(opt, w0, grads)
    expected = reference_run(cls, kwargs, w0, grads, [lr] * STEPS)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert np.array_equal(got[PARAMS["frozen"]], w0[PARAMS["frozen"]])
    assert not np.allclose(got[PARAMS["b"]], w0[PARAMS["b"]])  # something happened
    assert opt.iterations == STEPS


@pytest.mark.parametrize(("cls", "kwargs"), VARIANTS + DEFAULTS, ids=case_id)
def test_optimizer_matches_keras_update_equations(cls: Any, kwargs: Any, rng: Any) -> None:
    assert_matches_reference(cls, kwargs, rng)


@pytest.mark.parametrize("extra", EXTRAS, ids=case_id)
@pytest.mark.parametrize("cls", list(REFERENCES), ids=lambda c: c.__name__)
def test_optimizer_matches_keras_with_weight_decay_and_clipping(
    cls: Any, extra: Any, rng: Any
) -> None:
    lr = 0.02 if cls is not Adadelta else 1.0
    assert_matches_reference(cls, {"learning_rate": lr, **extra}, rng)


@pytest.mark.parametrize(("cls", "kwargs"), VARIANTS, ids=case_id)
def test_optimizer_is_the_same_when_segments_are_cut_into_many_blocks(
    cls: Any, kwargs: Any, rng: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(optimizer_base, "BLOCK_BYTES", 3 * 8)  # 3 float64 per block
    assert_matches_reference(cls, {**kwargs, "global_clipnorm": 2.0}, rng)


@pytest.mark.parametrize(("cls", "kwargs"), VARIANTS, ids=case_id)
def test_optimizer_in_float32_follows_the_float64_reference(
    cls: Any, kwargs: Any, rng: Any
) -> None:
    w0, grads = make_data(rng, np.float32)
    got = run(cls(**kwargs), w0, grads)
    assert got.dtype == np.float32
    expected = reference_run(cls, kwargs, w0, grads, [kwargs["learning_rate"]] * STEPS)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_global_clipnorm_ignores_frozen_gradients_and_clips_in_place(rng: Any) -> None:
    opt = SGD(1.0, global_clipnorm=1.0)
    opt.build(SIZE, np.float64, TRAINABLE)
    params, grads = np.zeros(SIZE), rng.standard_normal(SIZE) * 10
    frozen = grads[PARAMS["frozen"]].copy()
    opt.apply(params, grads)
    trainable = np.r_[0:6, 10:18]
    assert np.linalg.norm(grads[trainable]) == pytest.approx(1.0)
    assert np.array_equal(grads[PARAMS["frozen"]], frozen)
    np.testing.assert_allclose(params[trainable], -grads[trainable])


def test_a_non_finite_global_norm_makes_the_step_nan_as_in_keras() -> None:
    opt = SGD(0.1, global_clipnorm=1.0)
    opt.build(4, np.float64, [slice(0, 2), slice(2, 4)])
    params, grads = np.zeros(4), np.array([1.0, np.inf, 1.0, 1.0])
    opt.apply(params, grads)
    assert np.isnan(params).all()


# --- learning rate -------------------------------------------------------------------


def test_learning_rate_set_between_steps_takes_effect_on_the_next_step(rng: Any) -> None:
    w0, grads = make_data(rng)
    lrs = [0.1, 0.1, 0.01, 0.05, 0.2, 0.001]
    kwargs = {"momentum": 0.9, "weight_decay": 0.1}
    got = run(SGD(**kwargs), w0, grads, lrs)
    np.testing.assert_allclose(got, reference_run(SGD, kwargs, w0, grads, lrs), rtol=1e-12)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, Nadam], ids=lambda c: c.__name__)
def test_schedule_is_evaluated_at_each_step_from_step_zero(cls: Any, rng: Any) -> None:
    schedule = ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    w0, grads = make_data(rng)
    got = run(cls(learning_rate=schedule), w0, grads)
    lrs = [schedule(i) for i in range(STEPS)]
    np.testing.assert_allclose(got, reference_run(cls, {}, w0, grads, lrs), rtol=1e-10)


def test_current_learning_rate_follows_iterations_and_the_multiplier() -> None:
    opt = Adam(learning_rate=PiecewiseConstantDecay([1], [0.1, 0.01]))
    opt.build(2, np.float64, [slice(0, 2)])
    params, grads = np.zeros(2), np.ones(2)
    assert opt.current_learning_rate == 0.1
    opt.apply(params, grads)
    opt.apply(params, grads)
    assert opt.current_learning_rate == 0.01
    opt.learning_rate_multiplier = 0.5
    assert opt.current_learning_rate == 0.005
    opt.learning_rate = 0.2  # a float may replace a schedule
    assert opt.current_learning_rate == 0.1


def test_learning_rate_reads_the_rate_in_force_as_keras_does() -> None:
    """Keras 3's ``optimizer.learning_rate`` is the schedule's value, not the schedule."""
    schedule = PiecewiseConstantDecay([1], [0.1, 0.01])
    opt = SGD(learning_rate=schedule)
    opt.build(2, np.float64, [slice(0, 2)])
    params, grads = np.zeros(2), np.ones(2)
    assert type(opt.learning_rate) is float and opt.learning_rate == 0.1
    assert opt.raw_learning_rate is schedule
    opt.apply(params, grads)
    opt.apply(params, grads)
    assert float(opt.learning_rate) == 0.01  # what Keras users write
    np.testing.assert_array_equal(params, [-0.2, -0.2])  # 0.1 up to step 1 inclusive
    assert opt.get_config()["learning_rate"]["class_name"] == "PiecewiseConstantDecay"
    opt.learning_rate = 0.5
    assert opt.raw_learning_rate == 0.5 and opt.learning_rate == 0.5


def test_learning_rate_multiplier_scales_the_step(rng: Any) -> None:
    w0, grads = make_data(rng)
    got = run(SGD(0.1, learning_rate_multiplier=0.25), w0, grads)
    expected = reference_run(SGD, {}, w0, grads, [0.025] * STEPS)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_learning_rate_accepts_ints_and_numpy_scalars_as_floats() -> None:
    assert SGD(1).learning_rate == 1.0
    opt = SGD(np.float32(0.5))
    assert type(opt.learning_rate) is float and opt.learning_rate == 0.5


@pytest.mark.parametrize("bad", [True, "0.01", None, [0.1]])
def test_learning_rate_of_the_wrong_kind_is_a_type_error_with_the_fix(bad: Any) -> None:
    with pytest.raises(
        TypeError, match=rf"learning_rate={re.escape(repr(bad))}.*Pass a num"
    ):
        Adam(learning_rate=bad)


def test_learning_rate_must_be_non_negative_and_is_checked_when_set() -> None:
    with pytest.raises(
        ConfigError, match=r"learning_rate=-0.1; expected a finite number >= 0"
    ):
        Adam(learning_rate=-0.1)
    paused = SGD(learning_rate=0.0)  # allowed, as in Keras: the weights do not move
    paused.build(2, np.float32, [slice(0, 2)])
    params = np.ones(2, np.float32)
    paused.apply(params, np.ones(2, np.float32))
    np.testing.assert_array_equal(params, np.ones(2))
    opt = Adam()
    with pytest.raises(TypeError, match=r"learning_rate='fast'"):
        opt.learning_rate = "fast"  # type: ignore[assignment]
    with pytest.raises(ConfigError, match=r"learning_rate=nan"):
        opt.learning_rate = math.nan


# --- state ---------------------------------------------------------------------------


ALL_VARIANTS = [(c, {**k, "weight_decay": 0.01}) for c, k in VARIANTS]


@pytest.mark.parametrize(("cls", "kwargs"), ALL_VARIANTS, ids=case_id)
def test_restored_optimizer_continues_bit_for_bit(cls: Any, kwargs: Any, rng: Any) -> None:
    w0, grads = make_data(rng, np.float32)
    original = cls(**kwargs)
    params = run(original, w0, grads[:3])
    state = original.get_state()
    assert state["iterations"] == 3 and set(state["slots"]) == set(original.slot_names())

    restored = cls(**kwargs)
    restored.build(SIZE, np.float32, TRAINABLE)
    restored.set_state(json.loads(json.dumps(state, default=lambda a: a.tolist())))
    a, b = params.copy(), params.copy()
    for g in grads[3:]:
        original.apply(a, g.copy())
        restored.apply(b, g.copy())
    assert np.array_equal(a, b)
    assert restored.iterations == original.iterations == STEPS


def test_state_set_before_build_is_loaded_by_build(rng: Any) -> None:
    w0, grads = make_data(rng)
    original = Nadam(0.05)
    params = run(original, w0, grads[:2])
    restored = Nadam(0.05)
    restored.set_state(original.get_state())
    assert restored.iterations == 2 and not restored.built
    restored.build(SIZE, np.float64, TRAINABLE)
    a, b = params.copy(), params.copy()
    original.apply(a, grads[2].copy())
    restored.apply(b, grads[2].copy())
    assert np.array_equal(a, b)


def test_get_state_returns_copies() -> None:
    opt = Adam()
    opt.build(3, np.float64, [slice(0, 3)])
    opt.apply(np.zeros(3), np.ones(3))
    state = opt.get_state()
    state["slots"]["momentum"][:] = 42.0
    assert not (opt.get_state()["slots"]["momentum"] == 42.0).any()


def test_set_state_names_the_slot_and_both_sizes_when_they_differ() -> None:
    opt = Adam()
    opt.build(5, np.float32, [slice(0, 5)])
    state = {"iterations": 1, "slots": {"momentum": np.zeros(4), "velocity": np.zeros(5)}}
    with pytest.raises(CheckpointError, match=r"slot 'momentum' has shape \(4,\).*\(5,\)"):
        opt.set_state(state)
    assert opt.iterations == 0  # nothing was changed


def test_set_state_before_build_reports_the_size_mismatch_at_build() -> None:
    opt = Adam()
    opt.set_state(
        {"iterations": 1, "slots": {"momentum": np.zeros(4), "velocity": np.zeros(4)}}
    )
    with pytest.raises(CheckpointError, match=r"'momentum' has shape \(4,\).*shape \(5,\)"):
        opt.build(5, np.float32, [slice(0, 5)])


def test_set_state_refuses_slots_of_other_settings() -> None:
    opt = SGD(momentum=0.0)
    with pytest.raises(
        CheckpointError, match=r"slots \['momentum'\], but.*uses \[\].*settings"
    ):
        opt.set_state({"iterations": 3, "slots": {"momentum": np.zeros(2)}})


@pytest.mark.parametrize(
    "state",
    [
        None,
        {"slots": {}},
        {"iterations": -1, "slots": {}},
        {"iterations": 1.5, "slots": {}},
    ],
)
def test_set_state_refuses_malformed_states(state: Any) -> None:
    with pytest.raises(CheckpointError, match=r"Adam.set_state\(\) got .*expected"):
        Adam().set_state(state)


# --- building ------------------------------------------------------------------------


def test_rebuilding_with_new_spans_keeps_the_slots(rng: Any) -> None:
    opt = SGD(0.1, momentum=0.9)
    opt.build(4, np.float64, [slice(0, 2), slice(2, 4)])
    params = np.zeros(4)
    opt.apply(params, np.ones(4))  # momentum is now -0.1 everywhere
    opt.build(4, np.float64, [slice(2, 4)])  # the first parameter was frozen
    opt.apply(params, np.ones(4))
    np.testing.assert_allclose(params, [-0.1, -0.1, -0.1 - 0.19, -0.1 - 0.19])
    opt.build(4, np.float64, [slice(0, 2), slice(2, 4)])  # and unfrozen
    opt.apply(params, np.ones(4))
    np.testing.assert_allclose(params[:2], -0.1 - 0.19)  # kept its old momentum


def test_rebuilding_with_another_size_starts_fresh_slots() -> None:
    opt = Adagrad(initial_accumulator_value=0.5)
    opt.build(2, np.float64, [slice(0, 2)])
    opt.apply(np.zeros(2), np.ones(2))
    opt.build(3, np.float64, [slice(0, 3)])
    assert np.array_equal(opt.get_state()["slots"]["accumulator"], [0.5, 0.5, 0.5])


def test_turning_momentum_on_after_build_allocates_its_slot() -> None:
    opt = SGD(0.1)
    opt.build(2, np.float64, [slice(0, 2)])
    params = np.zeros(2)
    opt.apply(params, np.ones(2))
    opt.momentum = 0.5
    opt.apply(params, np.ones(2))
    opt.apply(params, np.ones(2))
    np.testing.assert_allclose(params, -0.1 - 0.1 - (0.5 * 0.1 + 0.1))


def test_apply_with_no_trainable_span_changes_nothing_but_counts_the_step() -> None:
    opt = Adam(weight_decay=0.5)
    opt.build(3, np.float64, [])
    params = np.ones(3)
    opt.apply(params, np.ones(3))
    assert np.array_equal(params, np.ones(3)) and opt.iterations == 1


@pytest.mark.parametrize(
    "cls",
    [SGD, RMSprop, Adam, AdamW, Adamax, Adagrad, Adadelta, Nadam],
    ids=lambda c: c.__name__,
)
def test_apply_allocates_nothing_the_size_of_the_parameters(cls: Any) -> None:
    n = 1_000_000
    variants: dict[type, dict[str, Any]] = {
        SGD: {"momentum": 0.9, "nesterov": True},
        RMSprop: {"momentum": 0.9, "centered": True},
        Adam: {"amsgrad": True},
        AdamW: {"amsgrad": True},
    }
    kwargs = {**variants.get(cls, {}), "weight_decay": 0.01}
    spans = [slice(0, n // 2), slice(n // 2 + 10, n)]
    for clip in [{"clipnorm": 1.0}, {"global_clipnorm": 1.0}, {"clipvalue": 0.1}]:
        opt = cls(**kwargs, **clip)
        opt.build(n, np.float32, spans)
        params, grads = np.ones(n, np.float32), np.full(n, 0.5, np.float32)
        opt.apply(params, grads)  # first call binds its views of the buffers
        tracemalloc.start()
        try:
            opt.apply(params, grads)
            opt.apply(params, grads)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            np.empty(n, np.float32).fill(0)  # the measurement does see NumPy buffers
            control = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 100_000, (clip, peak)
        assert control >= 4 * n


@pytest.mark.parametrize(
    ("size", "dtype", "spans", "message"),
    [
        (-1, np.float32, [], r"size=-1; expected an int >= 0"),
        (4, np.int32, [], r"dtype=<class 'numpy.int32'>; expected float32 or float64"),
        (4, "floaty", [], r"dtype='floaty'; expected float32 or float64"),
        (4, np.float32, [slice(2, 6)], r"span slice\(2, 6, None\) for a buffer of size 4"),
        (4, np.float32, [slice(0, 4, 2)], r"span slice\(0, 4, 2\).*no step"),
        (4, np.float32, [slice(0, 3), slice(2, 4)], r"spans overlap at index 2"),
    ],
)
def test_build_rejects_bad_buffers_and_spans(
    size: Any, dtype: Any, spans: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Adam().build(size, dtype, spans)


def test_apply_before_build_says_to_build() -> None:
    with pytest.raises(
        ConfigError, match=r"Adam.apply\(\): the optimizer is not built.*build"
    ):
        Adam().apply(np.zeros(2), np.zeros(2))


def test_apply_checks_the_buffers_against_the_build() -> None:
    opt = Adam()
    opt.build(4, np.float32, [slice(0, 4)])
    with pytest.raises(ShapeError, match=r"params of shape \(3,\).*shape \(4,\)"):
        opt.apply(np.zeros(3, np.float32), np.zeros(4, np.float32))
    with pytest.raises(ConfigError, match=r"grads of dtype float64; .* built for float32"):
        opt.apply(np.zeros(4, np.float32), np.zeros(4))


# --- construction, config, lookup ----------------------------------------------------

KERAS_DEFAULTS = {
    SGD: {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    RMSprop: {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-07,
              "centered": False},
    Adam: {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
           "amsgrad": False},
    AdamW: {"learning_rate": 0.001, "weight_decay": 0.004, "beta_1": 0.9, "beta_2": 0.999,
            "epsilon": 1e-07, "amsgrad": False},
    Adamax: {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07},
    Adagrad: {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-07},
    Adadelta: {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-07},
    Nadam: {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07},
}  # fmt: skip


@pytest.mark.parametrize("cls", list(KERAS_DEFAULTS), ids=lambda c: c.__name__)
def test_positional_arguments_and_defaults_are_keras_s(cls: Any) -> None:
    params = list(inspect.signature(cls).parameters.values())
    positional = {p.name: p.default for p in params if p.kind is p.POSITIONAL_OR_KEYWORD}
    assert positional == KERAS_DEFAULTS[cls]
    shared = {
        "clipnorm",
        "clipvalue",
        "global_clipnorm",
        "name",
        "learning_rate_multiplier",
    }
    assert shared <= {p.name for p in params}
    assert cls().weight_decay == (0.004 if cls is AdamW else None)


@pytest.mark.parametrize("cls", list(KERAS_DEFAULTS), ids=lambda c: c.__name__)
def test_config_survives_a_json_round_trip(cls: Any) -> None:
    schedule = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    opt = cls(
        learning_rate=schedule, clipnorm=2.0, name="mine", learning_rate_multiplier=0.5
    )
    data = json.loads(json.dumps(optimizers.serialize(opt)))
    assert data["config"]["learning_rate"]["class_name"] == "ExponentialDecay"
    again = optimizers.get(data)
    assert type(again) is cls and again.get_config() == opt.get_config()
    assert again.raw_learning_rate == schedule


NAMES = ["sgd", "rmsprop", "adam", "adamw", "adamax", "adagrad", "adadelta", "nadam"]


@pytest.mark.parametrize("name", [*NAMES, "Adam", "RMSprop", "SGD"])
def test_get_builds_an_optimizer_by_name(name: str) -> None:
    opt = optimizers.get(name)
    assert type(opt).__name__.lower() == name.lower()
    assert optimizers.get(opt) is opt


def test_get_suggests_the_closest_name() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^optimizers\.get\('adamm'\): unknown optimizer 'adamm'; expected one of "
        r"\['adadelta', .*\]\. Pass one of those names.*Did you mean 'adam'\?$",
    ):
        optimizers.get("adamm")


def test_get_refuses_other_kinds() -> None:
    with pytest.raises(TypeError, match=r"got 3 of type int; expected an optimizer name"):
        optimizers.get(3)


def test_keras_configs_load_without_their_ema_and_scaling_entries() -> None:
    config = {"class_name": "Adam", "config": {
        "name": "adam", "learning_rate": 0.002, "use_ema": False, "ema_momentum": 0.99,
        "ema_overwrite_frequency": None, "loss_scale_factor": None,
        "gradient_accumulation_steps": None}}  # fmt: skip
    assert optimizers.get(config).learning_rate == 0.002
    config["config"]["use_ema"] = True
    with pytest.raises(ConfigError, match=r"use_ema=True, which loopkit.*EMA or gradient"):
        optimizers.get(config)


def test_deserialize_lists_the_arguments_when_the_config_does_not_fit() -> None:
    with pytest.raises(
        ConfigError, match=r"SGD takes no argument 'momentun'.*mean 'momentum'"
    ):
        optimizers.deserialize({"class_name": "SGD", "config": {"momentun": 0.9}})


def test_only_one_clipping_option_may_be_set() -> None:
    with pytest.raises(ConfigError, match=r"Adam\(clipnorm=1.0, clipvalue=0.5\): only one"):
        Adam(clipnorm=1.0, clipvalue=0.5)


def test_adamw_needs_a_weight_decay() -> None:
    with pytest.raises(
        ConfigError, match=r"AdamW\(weight_decay=None\).*weight_decay=0.004"
    ):
        AdamW(weight_decay=None)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: SGD(momentum=1.5),
            ConfigError,
            r"momentum=1.5; expected a number in \[0.0",
        ),
        (
            lambda: SGD(nesterov="yes"),
            TypeError,
            r"nesterov='yes' of type str; expected True",
        ),
        (
            lambda: Adam(beta_1=1.0),
            ConfigError,
            r"beta_1=1.0; expected a number in \[0.0, 1.0\)",
        ),
        (lambda: Adam(clipnorm=0.0), ConfigError, r"clipnorm=0.0; expected a number > 0"),
        (
            lambda: Adam(weight_decay=-1),
            ConfigError,
            r"weight_decay=-1; expected a number >= 0",
        ),
        (
            lambda: Adagrad(initial_accumulator_value=-0.1),
            ConfigError,
            r"accumulator_value",
        ),
        (lambda: RMSprop(centered=1), TypeError, r"centered=1 of type int"),
    ],
)
def test_hyperparameters_are_validated_at_construction(
    make: Any, error: Any, message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


def test_global_clipnorm_handles_float32_overflow_of_the_squared_norm() -> None:
    # sum(g**2) = 4e60 overflows float32, but the norm 2e30 does not: the gradient is
    # clipped to norm 1 (each element 0.5) instead of zeroed or turned into NaN.
    optimizer = optimizers.SGD(learning_rate=0.1, global_clipnorm=1.0)
    optimizer.build(4, np.float32, [slice(0, 4)])
    params = np.zeros(4, np.float32)
    optimizer.apply(params, np.full(4, 1e30, np.float32))
    np.testing.assert_allclose(params, np.full(4, -0.05), rtol=1e-6)


@pytest.mark.parametrize(
    "name", ["sgd", "rmsprop", "adam", "adamw", "adamax", "adagrad", "adadelta", "nadam"]
)
def test_apply_leaves_the_gradient_buffer_as_it_was_without_clipping(name: str) -> None:
    # Plugins read model.flat_gradients after the step (hookspecs promise it holds the
    # applied gradient), so no optimizer may use it as scratch space.
    optimizer = optimizers.get(
        {"class_name": name, "config": {"momentum": 0.9}}
        if name in ("sgd", "rmsprop")
        else name
    )
    optimizer.build(5000, np.float32, [slice(0, 3000), slice(3500, 5000)])
    rng = np.random.default_rng(0)
    params = rng.standard_normal(5000).astype(np.float32)
    for _ in range(3):
        grads = rng.standard_normal(5000).astype(np.float32)
        before = grads.copy()
        optimizer.apply(params, grads)
        np.testing.assert_array_equal(grads, before)
