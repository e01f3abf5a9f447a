"""Learning-rate schedules against their closed forms, serialization and errors."""

from __future__ import annotations

import json
import math

import pytest

from loopkit import schedules
from loopkit.errors import ConfigError
from loopkit.schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    LinearWarmup,
    PiecewiseConstantDecay,
    PolynomialDecay,
    deserialize,
    get,
    serialize,
)

STEPS = [0, 1, 5, 9, 10, 11, 25, 99, 100, 150]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def test_exponential_decay_matches_its_formula_smooth_and_staircase() -> None:
    smooth = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    stairs = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    for s in STEPS:
        assert close(smooth(s), 0.1 * 0.5 ** (s / 10))
        assert close(stairs(s), 0.1 * 0.5 ** (s // 10))


def test_inverse_time_decay_matches_its_formula_smooth_and_staircase() -> None:
    smooth = InverseTimeDecay(0.1, decay_steps=5, decay_rate=2.0)
    stairs = InverseTimeDecay(0.1, decay_steps=5, decay_rate=2.0, staircase=True)
    for s in STEPS:
        assert close(smooth(s), 0.1 / (1 + 2.0 * s / 5))
        assert close(stairs(s), 0.1 / (1 + 2.0 * (s // 5)))


def test_polynomial_decay_matches_its_formula_and_holds_the_end_rate() -> None:
    sched = PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, power=2.0)
    for s in STEPS:
        assert close(sched(s), 0.09 * (1 - min(s, 10) / 10) ** 2 + 0.01)
    assert close(sched(1000), 0.01)
    assert close(PolynomialDecay(0.1, 10)(10), 0.0001)  # Keras's default end rate


def test_polynomial_decay_with_cycle_uses_the_next_multiple_of_decay_steps() -> None:
    sched = PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, cycle=True)
    expected = {0: 0.1, 5: 0.09 * 0.5 + 0.01, 10: 0.01, 11: 0.09 * (1 - 11 / 20) + 0.01}
    expected[15] = 0.09 * (1 - 15 / 20) + 0.01
    expected[35] = 0.09 * (1 - 35 / 40) + 0.01
    for s, value in expected.items():
        assert close(sched(s), value), s


def test_piecewise_constant_decay_includes_each_boundary_in_the_interval_before() -> None:
    sched = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    expected = {0: 1.0, 10: 1.0, 11: 0.5, 20: 0.5, 21: 0.1, 1000: 0.1}
    assert {s: sched(s) for s in expected} == expected


def test_cosine_decay_matches_its_formula_and_stays_at_alpha() -> None:
    sched = CosineDecay(0.1, decay_steps=100, alpha=0.1)
    for s in STEPS:
        cosine = 0.5 * (1 + math.cos(math.pi * min(s, 100) / 100))
        assert close(sched(s), 0.1 * ((1 - 0.1) * cosine + 0.1))
    assert close(sched(10_000), 0.01)


def test_cosine_decay_warms_up_linearly_then_decays_from_the_target() -> None:
    sched = CosineDecay(0.0, decay_steps=100, warmup_target=0.1, warmup_steps=10)
    for s in [0, 3, 5, 9]:
        assert close(sched(s), 0.1 * s / 10)
    for s in [10, 35, 60, 110, 500]:
        cosine = 0.5 * (1 + math.cos(math.pi * min(s - 10, 100) / 100))
        assert close(sched(s), 0.1 * cosine)


def test_cosine_decay_restarts_matches_its_formula_across_growing_periods() -> None:
    sched = CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=2.0, m_mul=0.5, alpha=0.2)
    # periods: [0, 10), [10, 30), [30, 70), [70, 150): (index, start, length)
    periods = [(0, 0, 10), (1, 10, 20), (2, 30, 40), (3, 70, 80)]
    for s in [0, 4, 9, 10, 17, 29, 30, 55, 69, 70, 149]:
        i, start, length = next(p for p in periods if p[1] <= s < p[1] + p[2])
        cosine = 0.5 * 0.5**i * (1 + math.cos(math.pi * (s - start) / length))
        assert close(sched(s), 0.1 * ((1 - 0.2) * cosine + 0.2)), s


def test_cosine_decay_restarts_with_equal_periods() -> None:
    sched = CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=1.0)
    for s in [0, 5, 10, 25, 39]:
        assert close(sched(s), 0.1 * 0.5 * (1 + math.cos(math.pi * (s % 10) / 10)))


def test_cosine_decay_restarts_restarts_exactly_at_period_boundaries() -> None:
    # Periods of 1, 3, 9, 27, 81 steps: period 5 starts at step 121, where Keras's
    # floor(log(243) / log(3)) = floor(4.999...) would stay in period 4 at lr 0.
    sched = CosineDecayRestarts(1.0, first_decay_steps=1, t_mul=3.0)
    assert sched(121) == 1.0
    assert close(sched(120), 0.5 * (1 + math.cos(math.pi * 80 / 81)))


def test_linear_warmup_ramps_to_the_wrapped_schedule_then_follows_it_shifted() -> None:
    inner = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    sched = LinearWarmup(inner, warmup_steps=4, initial_learning_rate=0.02)
    for s in [0, 1, 2, 3]:
        assert close(sched(s), 0.02 + (0.1 - 0.02) * s / 4)
    for s in [4, 5, 14, 40]:
        assert close(sched(s), 0.1 * 0.5 ** ((s - 4) / 10))


def test_linear_warmup_accepts_a_constant_learning_rate() -> None:
    sched = LinearWarmup(0.3, warmup_steps=3)
    assert [sched(s) for s in range(5)] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.3])
    assert LinearWarmup(0.3, warmup_steps=0)(0) == 0.3


ALL_SCHEDULES = [
    ExponentialDecay(0.1, 10, 0.5, staircase=True),
    InverseTimeDecay(0.1, 5, 2.0),
    PolynomialDecay(0.1, 10, end_learning_rate=0.01, power=2.0, cycle=True),
    PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
    CosineDecay(0.0, 100, alpha=0.1, warmup_target=0.1, warmup_steps=10),
    CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5, alpha=0.2),
    LinearWarmup(CosineDecay(0.1, 100), warmup_steps=5, initial_learning_rate=0.01),
]


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_schedule_survives_a_json_round_trip(schedule: LearningRateSchedule) -> None:
    data = json.loads(json.dumps(serialize(schedule)))
    assert data["class_name"] == type(schedule).__name__
    restored = get(data)
    assert restored == schedule
    assert [restored(s) for s in STEPS] == [schedule(s) for s in STEPS]


def test_deserialize_ignores_the_keras_name_entry() -> None:
    config = {"class_name": "ExponentialDecay", "config": {
        "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5,
        "staircase": False, "name": "ExponentialDecay"}}  # fmt: skip
    assert deserialize(config) == ExponentialDecay(0.1, 10, 0.5)


def test_get_returns_a_schedule_object_unchanged() -> None:
    schedule = ExponentialDecay(0.1, 10, 0.5)
    assert get(schedule) is schedule


def test_a_plain_subclass_is_a_schedule_without_attrs() -> None:
    class Halving(LearningRateSchedule):
        def __call__(self, step: int) -> float:
            return 1.0 / 2**step

    assert get(Halving())(3) == 0.125
    with pytest.raises(NotImplementedError, match=r"Halving must implement get_config"):
        Halving().get_config()
    with pytest.raises(NotImplementedError, match=r"must implement __call__"):
        LearningRateSchedule()(0)


# --- errors ----------------------------------------------------------------------------


def test_decay_steps_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"decay_steps=0; expected a number > 0"):
        ExponentialDecay(0.1, decay_steps=0, decay_rate=0.5)
    with pytest.raises(ConfigError, match=r"first_decay_steps=-1; expected a number > 0"):
        CosineDecayRestarts(0.1, first_decay_steps=-1)


def test_staircase_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=r"staircase='yes' of type str; expected True or"):
        ExponentialDecay(0.1, 10, 0.5, staircase="yes")  # type: ignore[arg-type]


def test_piecewise_constant_decay_needs_one_more_value_than_boundaries() -> None:
    with pytest.raises(
        ConfigError, match=r"1 boundaries and 1 values; pass exactly one more"
    ):
        PiecewiseConstantDecay([10], [1.0])


def test_piecewise_constant_decay_needs_increasing_boundaries() -> None:
    with pytest.raises(
        ConfigError, match=r"boundaries=\(20, 10\).*strictly increasing; sort"
    ):
        PiecewiseConstantDecay([20, 10], [1.0, 0.5, 0.1])


def test_piecewise_constant_decay_rejects_negative_and_non_numeric_values() -> None:
    with pytest.raises(ConfigError, match=r"values=\(1.0, -0.5\).*must be >= 0"):
        PiecewiseConstantDecay([10], [1.0, -0.5])
    with pytest.raises(
        TypeError, match=r"boundaries=\('10',\).*boundaries must be a list of"
    ):
        PiecewiseConstantDecay(["10"], [1.0, 0.5])


def test_cosine_decay_refuses_warmup_steps_without_a_target() -> None:
    with pytest.raises(ConfigError, match=r"warmup_steps=10\) has no warmup_target.*Pass"):
        CosineDecay(0.1, 100, warmup_steps=10)


def test_cosine_decay_alpha_must_be_a_fraction() -> None:
    with pytest.raises(ConfigError, match=r"alpha=2.0; expected a number in \[0.0, 1.0\]"):
        CosineDecay(0.1, 100, alpha=2.0)


def test_cosine_decay_restarts_refuses_shrinking_periods() -> None:
    with pytest.raises(ConfigError, match=r"t_mul=0.5\).*Pass t_mul >= 1"):
        CosineDecayRestarts(0.1, 10, t_mul=0.5)


def test_linear_warmup_validates_its_arguments() -> None:
    with pytest.raises(TypeError, match=r"schedule='fast' of type str; expected a Learn"):
        LinearWarmup("fast", warmup_steps=10)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"warmup_steps=-1; expected an int >= 0"):
        LinearWarmup(0.1, warmup_steps=-1)
    with pytest.raises(TypeError, match=r"warmup_steps=2.5; expected an int >= 0"):
        LinearWarmup(0.1, warmup_steps=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"schedule=0.0; expected a number > 0"):
        LinearWarmup(0.0, warmup_steps=3)


def test_get_refuses_a_bare_name_and_explains_the_accepted_kinds() -> None:
    with pytest.raises(
        TypeError, match=r"got 'ExponentialDecay' of type str; expected a Le"
    ):
        get("ExponentialDecay")


def test_deserialize_suggests_the_closest_class_name() -> None:
    with pytest.raises(
        ConfigError, match=r"'ExponentialDekay'.*Did you mean 'ExponentialDecay'"
    ):
        deserialize({"class_name": "ExponentialDekay", "config": {}})


def test_deserialize_names_the_arguments_when_the_config_does_not_fit() -> None:
    with pytest.raises(
        ConfigError, match=r"no argument 'decay_rat'.*Did you mean 'decay_rate'"
    ):
        deserialize({"class_name": "ExponentialDecay", "config": {"decay_rat": 0.5}})


def test_schedules_take_a_name_and_keep_it_through_their_config() -> None:
    schedule = ExponentialDecay(0.1, 100, 0.5, name="decay")
    assert schedule.name == "decay"
    assert ExponentialDecay(0.1, 100, 0.5).name == "ExponentialDecay"  # Keras's default
    restored = schedules.deserialize(schedules.serialize(schedule))
    assert restored == schedule and restored.name == "decay"


def test_an_unknown_schedule_class_gets_the_registrys_message() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^schedules\.deserialize\(.*\): unknown learning rate schedule "
        r"'ExponentialDekay'; expected one of \['CosineDecay', .*\]\. .*"
        r"Did you mean 'ExponentialDecay'\?$",
    ):
        schedules.deserialize({"class_name": "ExponentialDekay", "config": {}})
    with pytest.raises(TypeError, match=r"^schedules\.get\(\) got 'cosine' of type str"):
        schedules.get("cosine")
