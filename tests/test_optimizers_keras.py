"""Lion, Lamb and Ftrl, and exclude_from_weight_decay, against Keras's published values.

Expected numbers are those of keras/src/optimizers/{lion,lamb,ftrl}_test.py (Keras 3,
keras-team/keras): one step from [1, 2, 3, 4], and the "golden" trajectories of a
ones(10) variable under a first step of 0.01 gradients, then arange(0.1, 1.1, 0.1).
"""

from __future__ import annotations

import numpy as np
import pytest

from loopkit import optimizers
from loopkit.errors import ConfigError, ShapeError
from loopkit.optimizers import Adafactor, Adam, Ftrl, Lamb, Lion, Optimizer


def step(opt: Optimizer, params: np.ndarray, grads: np.ndarray) -> None:
    if not opt.built:
        opt.build(params.size, params.dtype, [slice(0, params.size)])
    opt.apply(params, grads.astype(params.dtype).copy())


@pytest.mark.parametrize(
    ("opt", "expected"),
    [
        (Lion(learning_rate=0.5), [0.5, 1.5, 2.5, 3.5]),
        (Lamb(learning_rate=0.5), [-0.3693, 0.6306, 1.6306, 2.6306]),
        (Ftrl(learning_rate=0.5), [0.2218, 1.3954, 2.3651, 2.8814]),
    ],
    ids=["lion", "lamb", "ftrl"],
)
def test_one_step_matches_keras(opt: Optimizer, expected: list[float]) -> None:
    params = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    step(opt, params, np.array([1.0, 6.0, 7.0, 2.0]))
    np.testing.assert_allclose(params, expected, rtol=1e-4, atol=1e-4)


GOLDEN = {
    "lion": np.tile([[0.999], [0.998], [0.997], [0.996], [0.995]], (1, 10)),
    "lamb": np.tile([[0.999], [0.9982], [0.9974], [0.9965], [0.9955]], (1, 10)),
    "ftrl": np.array(
        [
            [0.0] * 10,
            [
                -0.0034,
                -0.0077,
                -0.0118,
                -0.0157,
                -0.0194,
                -0.023,
                -0.0263,
                -0.0294,
                -0.0325,
                -0.0354,
            ],
            [
                -0.0078,
                -0.0162,
                -0.0242,
                -0.0317,
                -0.0387,
                -0.0454,
                -0.0516,
                -0.0575,
                -0.0631,
                -0.0685,
            ],
            [
                -0.0121,
                -0.0246,
                -0.0363,
                -0.0472,
                -0.0573,
                -0.0668,
                -0.0757,
                -0.0842,
                -0.0922,
                -0.0999,
            ],
            [
                -0.0164,
                -0.0328,
                -0.0481,
                -0.0623,
                -0.0753,
                -0.0875,
                -0.099,
                -0.1098,
                -0.1201,
                -0.1299,
            ],
        ]
    ),
}


def _golden_optimizer(name: str) -> Optimizer:
    if name == "ftrl":
        return Ftrl(
            learning_rate=0.05,
            learning_rate_power=-0.2,
            initial_accumulator_value=0.4,
            l1_regularization_strength=0.05,
            l2_regularization_strength=0.15,
            l2_shrinkage_regularization_strength=0.01,
            beta=0.3,
        )
    return Lion() if name == "lion" else Lamb()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_trajectory_matches_keras(name: str) -> None:
    opt, params = _golden_optimizer(name), np.ones(10, np.float32)
    step(opt, params, np.full(10, 0.01))
    for expected in GOLDEN[name]:
        np.testing.assert_allclose(params, expected, rtol=5e-4, atol=5e-4)
        step(opt, params, np.arange(0.1, 1.1, 0.1))


def test_lamb_scales_each_parameter_by_its_own_trust_ratio() -> None:
    # Two parameters in one buffer: each moves as it would alone (Keras's per-variable
    # norms), not by one ratio over the whole buffer.
    grads = np.array([1.0, 6.0, 7.0, 2.0, 0.5, -3.0])
    both = np.array([1.0, 2.0, 3.0, 4.0, 10.0, -20.0], np.float32)
    lamb = Lamb(learning_rate=0.5)
    lamb.build(6, np.float32, [slice(0, 4), slice(4, 6)])
    lamb.apply(both, grads.astype(np.float32))
    first, second = (
        np.array([1.0, 2.0, 3.0, 4.0], np.float32),
        np.array([10.0, -20.0], np.float32),
    )
    step(Lamb(learning_rate=0.5), first, grads[:4])
    step(Lamb(learning_rate=0.5), second, grads[4:])
    np.testing.assert_allclose(both, np.concatenate([first, second]), rtol=1e-6)


@pytest.mark.parametrize("cls", [Lion, Lamb, Adam])
def test_excluded_parameters_skip_weight_decay_as_in_keras(cls: type[Optimizer]) -> None:
    # Keras's test_weight_decay: zero gradients, learning rate 1, decay 0.004.
    opt = cls(learning_rate=1.0, weight_decay=0.004)
    opt.exclude_from_weight_decay(var_names=["exclude"])
    params = np.array([2.0, 2.0], np.float32)
    opt.build(2, np.float32, [slice(0, 1), slice(1, 2)], names=["dense/kernel", "exclude"])
    opt.apply(params, np.zeros(2, np.float32))
    np.testing.assert_allclose(params, [2.0 * 0.996, 2.0], rtol=1e-6)


def test_exclusion_by_variable_object_says_to_pass_names() -> None:
    with pytest.raises(TypeError, match=r"Pass var_names=\['bias', 'gamma'\]"):
        Lion().exclude_from_weight_decay(var_list=[np.zeros(2)])
    with pytest.raises(ConfigError, match=r"got 1 names for 2 spans"):
        Lion().build(2, np.float32, [slice(0, 1), slice(1, 2)], names=["a"])


def test_bad_settings_are_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"Lion\(beta_1=0\): beta_1 must be in \(0, 1\]"):
        Lion(beta_1=0.0)
    with pytest.raises(
        ConfigError, match=r"learning_rate_power=0\.5; expected a number <= 0"
    ):
        Ftrl(learning_rate_power=0.5)


@pytest.mark.parametrize("name", ["lion", "lamb", "ftrl", "Lion"])
def test_the_added_optimizers_are_reachable_by_name_and_round_trip(name: str) -> None:
    opt = optimizers.get(name)
    assert type(opt).__name__.lower() == name.lower()
    restored = optimizers.deserialize(optimizers.serialize(opt))
    assert restored.get_config() == opt.get_config()


def test_state_round_trips_so_training_continues_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    for cls in (Lion, Lamb, Ftrl):
        a, b = cls(), cls()
        params_a = rng.normal(size=8).astype(np.float32)
        params_b = params_a.copy()
        grads = rng.normal(size=(3, 8)).astype(np.float32)
        step(a, params_a, grads[0])
        step(b, params_b, grads[0])
        b.set_state(a.get_state())
        for g in grads[1:]:
            step(a, params_a, g)
            step(b, params_b, g)
        np.testing.assert_array_equal(params_a, params_b)


# --- apply_gradients for hand-written loops ------------------------------------------


def test_apply_gradients_updates_arrays_in_place_as_keras() -> None:
    # keras/src/optimizers/sgd_test.py test_single_step: SGD(0.5) from [1, 2, 3, 4].
    variable = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    optimizers.SGD(learning_rate=0.5).apply_gradients(
        zip([np.array([1.0, 6.0, 7.0, 2.0])], [variable], strict=True)
    )
    np.testing.assert_allclose(variable, [0.5, -1.0, -0.5, 3.0])


def test_apply_gradients_on_layer_parameters_matches_the_flat_update() -> None:
    from loopkit.layers import Dense

    rng = np.random.default_rng(1)
    dense = Dense(3)
    dense.setup((4,), rng=rng)
    flat = np.concatenate([p.value.ravel() for p in dense.parameters])
    grads = [rng.normal(size=p.shape).astype(np.float32) for p in dense.parameters]
    looped, reference = Adam(learning_rate=0.1), Adam(learning_rate=0.1)
    for _ in range(3):
        looped.apply_gradients(zip(grads, dense.parameters, strict=True))
        step(reference, flat, np.concatenate([g.ravel() for g in grads]))
    np.testing.assert_array_equal(
        np.concatenate([p.value.ravel() for p in dense.parameters]), flat
    )
    assert looped.iterations == 3


def test_apply_gradients_refuses_mismatched_or_foreign_variables() -> None:
    opt = Lion()
    with pytest.raises(TypeError, match=r"got a variable \[1, 2\] of type list"):
        opt.apply_gradients([(np.zeros(2), [1, 2])])
    with pytest.raises(
        ShapeError, match=r"gradient of shape \(3,\) for a variable of shape \(2,\)"
    ):
        opt.apply_gradients([(np.zeros(3), np.zeros(2, np.float32))])
    with pytest.raises(ConfigError, match=r"got no \(gradient, variable\) pairs"):
        opt.apply_gradients([])
    with pytest.raises(ConfigError, match=r"dtypes \['float32', 'float64'\]"):
        opt.apply_gradients(
            [(np.zeros(2), np.zeros(2, np.float32)), (np.zeros(2), np.zeros(2))]
        )


def test_schedules_are_reachable_where_keras_puts_them() -> None:
    from loopkit import schedules
    from loopkit.optimizers.schedules import ExponentialDecay

    assert ExponentialDecay is schedules.ExponentialDecay
    assert optimizers.schedules.CosineDecay is schedules.CosineDecay


# --- Adafactor (keras/src/optimizers/adafactor_test.py) ---------------------------------


def test_adafactor_one_step_matches_keras_for_a_vector_and_a_matrix() -> None:
    vector = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    Adafactor(learning_rate=0.5).apply_gradients([(np.array([1.0, 6.0, 7.0, 2.0]), vector)])
    np.testing.assert_allclose(vector, [-0.3693, 0.6307, 1.6307, 2.6307], atol=1e-4)
    matrix = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    Adafactor(learning_rate=0.5).apply_gradients(
        [(np.array([[1.0, 6.0], [7.0, 2.0]]), matrix)]
    )
    np.testing.assert_allclose(matrix, [[0.7007, -0.0081], [1.2492, 3.4407]], atol=1e-4)


def test_adafactor_golden_trajectory_matches_keras() -> None:
    opt = Adafactor(
        learning_rate=0.5,
        beta_2_decay=-0.65,
        epsilon_1=1e-15,
        epsilon_2=1e-4,
        clip_threshold=0.9,
        relative_step=False,
    )
    golden = np.array(
        [
            [0.55] * 10,
            [
                0.3031,
                0.3026,
                0.3025,
                0.3024,
                0.3024,
                0.3024,
                0.3024,
                0.3024,
                0.3024,
                0.3024,
            ],
            [
                0.1671,
                0.1665,
                0.1663,
                0.1663,
                0.1663,
                0.1663,
                0.1663,
                0.1663,
                0.1663,
                0.1663,
            ],
            [
                0.0923,
                0.0916,
                0.0915,
                0.0914,
                0.0914,
                0.0914,
                0.0914,
                0.0914,
                0.0914,
                0.0914,
            ],
            [
                0.0554,
                0.0548,
                0.0546,
                0.0546,
                0.0546,
                0.0546,
                0.0546,
                0.0545,
                0.0545,
                0.0545,
            ],
        ]
    )
    x = np.ones(10, np.float32)
    opt.apply_gradients([(np.full(10, 0.01), x)])
    for expected in golden:
        np.testing.assert_allclose(x, expected, rtol=5e-4, atol=5e-4)
        opt.apply_gradients([(np.arange(0.1, 1.1, 0.1), x)])


def test_adafactor_weight_decay_spares_excluded_parameters() -> None:
    opt = Adafactor(learning_rate=1.0, weight_decay=0.004)
    opt.exclude_from_weight_decay(var_names=["exclude"])
    params = np.array([2.0, 2.0], np.float32)
    opt.build(2, np.float32, [slice(0, 1), slice(1, 2)], ["w", "exclude"], [(1,), (1,)])
    opt.apply(params, np.zeros(2, np.float32))
    np.testing.assert_allclose(params, [2.0 * 0.996, 2.0], rtol=1e-6)


def test_adafactor_needs_the_parameters_shapes() -> None:
    with pytest.raises(ConfigError, match=r"Adafactor\.build\(\) got no shapes"):
        Adafactor().build(4, np.float32, [slice(0, 4)])
    with pytest.raises(ConfigError, match=r"got shape \(3,\) for span 0:4 of 4 elements"):
        Adafactor().build(4, np.float32, [slice(0, 4)], shapes=[(3,)])


def test_kerass_apply_takes_gradients_then_variables() -> None:
    variable = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    opt = optimizers.SGD(learning_rate=0.5)
    opt.apply([np.array([1.0, 6.0, 7.0, 2.0])], [variable])
    np.testing.assert_allclose(variable, [0.5, -1.0, -0.5, 3.0])
    opt.apply([np.ones(4)])  # the variables of the previous call
    np.testing.assert_allclose(variable, [0.0, -1.5, -1.0, 2.5])
    with pytest.raises(ConfigError, match=r"got gradients but no variables"):
        optimizers.SGD().apply([np.ones(4)])


def test_optimizer_from_config_rebuilds_it_with_its_schedule_as_keras() -> None:
    # Keras's optimizer tests: Opt.from_config(opt.get_config()) has the same config
    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    for opt in (Adam(learning_rate=schedule, beta_1=0.8), Lion(learning_rate=0.01)):
        twin = type(opt).from_config(opt.get_config())
        assert type(twin) is type(opt) and twin.get_config() == opt.get_config()
    assert Adam.from_config({"learning_rate": 0.1, "use_ema": False}).learning_rate == 0.1
    with pytest.raises(ConfigError, match=r"Adam.from_config\(\): the config sets use_ema"):
        Adam.from_config({"use_ema": True})
    with pytest.raises(ConfigError, match=r"Adam.from_config\(\).*'beta1'.*'beta_1'"):
        Adam.from_config({"beta1": 0.9})
