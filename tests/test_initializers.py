"""Tests for loopkit.initializers: shapes, distributions, fans, seeding, lookup."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from loopkit import initializers
from loopkit.errors import ConfigError, ShapeError
from loopkit.initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Initializer,
    LecunNormal,
    LecunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
    compute_fans,
)

NAMES = [
    "constant",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "ones",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "variance_scaling",
    "zeros",
]

# A large kernel: 240,000 draws, so the sample variance is within about 0.3% (one
# standard error) of the true one; the tests allow 2%.
FAN_IN, FAN_OUT = 400, 600
BIG = (FAN_IN, FAN_OUT)
N = FAN_IN * FAN_OUT


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_initializer_returns_the_requested_shape_and_dtype(
    name: str, dtype: type, rng: np.random.Generator
) -> None:
    out = initializers.get(name)((6, 5), dtype, rng)
    assert out.shape == (6, 5)
    assert out.dtype == dtype


def test_dtype_may_be_given_as_a_string(rng: np.random.Generator) -> None:
    assert GlorotUniform()((3, 2), "float64", rng).dtype == np.float64


def test_constant_zeros_and_ones_are_exact() -> None:
    np.testing.assert_array_equal(Zeros()((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(Ones()((4,), np.float64), np.ones(4))
    np.testing.assert_array_equal(Constant(0.25)((2, 2)), np.full((2, 2), 0.25))
    np.testing.assert_array_equal(Constant(value=3)((3,), np.int64), [3, 3, 3])


@pytest.mark.parametrize(
    ("init", "limit"),
    [
        (GlorotUniform(), math.sqrt(6 / (FAN_IN + FAN_OUT))),  # 0.0775
        (HeUniform(), math.sqrt(6 / FAN_IN)),  # 0.1225
        (LecunUniform(), math.sqrt(3 / FAN_IN)),  # 0.0866
        (VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform"), 0.1),
    ],
)
def test_uniform_variance_scaling_fills_minus_limit_to_limit(
    init: Initializer, limit: float, rng: np.random.Generator
) -> None:
    w = init(BIG, np.float64, rng)
    assert np.all(np.abs(w) <= limit)
    assert np.abs(w).max() > 0.999 * limit
    np.testing.assert_allclose(w.var(), limit**2 / 3, rtol=0.02)  # variance of U(-l, l)
    assert abs(w.mean()) < 5 * limit / math.sqrt(3 * N)


@pytest.mark.parametrize(
    ("init", "variance"),
    [
        (GlorotNormal(), 2 / (FAN_IN + FAN_OUT)),  # 0.002
        (HeNormal(), 2 / FAN_IN),  # 0.005
        (LecunNormal(), 1 / FAN_IN),  # 0.0025
        (VarianceScaling(scale=3.0, mode="fan_avg"), 3 / 500),  # 0.006
    ],
)
def test_truncated_normal_variance_scaling_keeps_the_target_variance(
    init: Initializer, variance: float, rng: np.random.Generator
) -> None:
    w = init(BIG, np.float64, rng)
    # Drawn with stddev sqrt(variance) / 0.8796 and cut at two of those stddevs.
    cut = 2 * math.sqrt(variance) / 0.87962566103423978
    assert np.all(np.abs(w) <= cut)
    assert np.abs(w).max() > 0.99 * cut
    np.testing.assert_allclose(w.var(), variance, rtol=0.02)
    assert abs(w.mean()) < 5 * math.sqrt(variance / N)


def test_untruncated_normal_variance_scaling_has_tails_beyond_two_stddevs(
    rng: np.random.Generator,
) -> None:
    w = VarianceScaling(scale=3.0, mode="fan_out", distribution="untruncated_normal")(
        BIG, np.float64, rng
    )
    stddev = math.sqrt(3 / FAN_OUT)
    np.testing.assert_allclose(w.std(), stddev, rtol=0.01)
    # P(|z| > 2) = 4.55% for a normal: about 10,900 of the 240,000 draws.
    assert 0.04 < np.mean(np.abs(w) > 2 * stddev) < 0.05


def test_random_normal_uniform_and_truncated_match_their_parameters(
    rng: np.random.Generator,
) -> None:
    normal = RandomNormal(mean=2.0, stddev=0.1)(BIG, np.float64, rng)
    np.testing.assert_allclose([normal.mean(), normal.std()], [2.0, 0.1], rtol=0.01)

    uniform = RandomUniform(minval=-1.0, maxval=3.0)(BIG, np.float64, rng)
    assert uniform.min() >= -1.0 and uniform.max() < 3.0
    np.testing.assert_allclose(uniform.mean(), 1.0, atol=0.01)
    np.testing.assert_allclose(uniform.var(), 16 / 12, rtol=0.02)

    truncated = TruncatedNormal(mean=1.0, stddev=0.5)(BIG, np.float64, rng)
    assert truncated.min() >= 0.0 and truncated.max() <= 2.0
    np.testing.assert_allclose(truncated.std(), 0.5 * 0.87962566103423978, rtol=0.01)


def test_keras_default_ranges_for_random_normal_and_uniform(
    rng: np.random.Generator,
) -> None:
    uniform = RandomUniform()(BIG, np.float64, rng)
    assert uniform.min() >= -0.05 and uniform.max() < 0.05
    np.testing.assert_allclose(RandomNormal()(BIG, np.float64, rng).std(), 0.05, rtol=0.01)


@pytest.mark.parametrize(
    ("shape", "fans"),
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((4, 9), (4, 9)),
        ((3, 16, 32), (48, 96)),
        ((3, 3, 16, 32), (144, 288)),
        ((2, 3, 4, 5, 6), (120, 144)),
    ],
)
def test_compute_fans_follows_keras_for_dense_and_conv_kernels(
    shape: tuple[int, ...], fans: tuple[int, int]
) -> None:
    assert compute_fans(shape) == fans


def test_he_uniform_on_a_conv_kernel_uses_the_receptive_field(
    rng: np.random.Generator,
) -> None:
    w = HeUniform()((3, 3, 64, 32), np.float64, rng)
    limit = math.sqrt(6 / (3 * 3 * 64))  # fan_in = kh * kw * in_channels = 576
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit


def test_a_seeded_initializer_gives_the_same_values_whatever_the_rng(
    rng: np.random.Generator,
) -> None:
    first = GlorotUniform(seed=7)((10, 10))
    second = GlorotUniform(seed=7)((10, 10), np.float32, rng)
    third = GlorotUniform(seed=8)((10, 10))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, third)


def test_an_unseeded_initializer_draws_from_the_rng_it_is_given() -> None:
    a = HeNormal()((5, 5), np.float32, np.random.default_rng(3))
    b = HeNormal()((5, 5), np.float32, np.random.default_rng(3))
    c = HeNormal()((5, 5))
    d = HeNormal()((5, 5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(c, d)


@pytest.mark.parametrize("shape", [(50, 30), (30, 50), (3, 3, 4, 8)])
def test_orthogonal_gives_orthonormal_columns_or_rows_times_gain(
    shape: tuple[int, ...], rng: np.random.Generator
) -> None:
    w = Orthogonal(gain=2.0)(shape, np.float64, rng)
    assert w.shape == shape
    assert w.flags.c_contiguous  # like every other initializer's (QR returns F order)
    m = w.reshape(-1, shape[-1])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(len(gram)), atol=1e-12)


def test_orthogonal_rejects_a_vector_shape() -> None:
    with pytest.raises(ShapeError, match=r"shape=\(5,\)\): needs a weight of at least 2"):
        Orthogonal()((5,))


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("glorot_uniform", GlorotUniform()),
        ("GlorotUniform", GlorotUniform()),
        ("he_normal", HeNormal()),
        ("uniform", RandomUniform()),
        ("normal", RandomNormal()),
        ("zero", Zeros()),
        ("one", Ones()),
        (LecunNormal, LecunNormal()),
        ({"class_name": "Constant", "config": {"value": 2.0}}, Constant(2.0)),
        (
            {
                "module": "keras.initializers",
                "class_name": "RandomNormal",
                "config": {"mean": 0.0, "stddev": 0.1, "seed": None},
                "registered_name": None,
            },
            RandomNormal(stddev=0.1),
        ),
    ],
)
def test_get_understands_names_classes_and_keras_configs(
    identifier: object, expected: Initializer
) -> None:
    assert initializers.get(identifier) == expected


def test_get_passes_none_instances_and_callables_through() -> None:
    def init(shape: tuple[int, ...], dtype: object, rng: object) -> np.ndarray:
        return np.zeros(shape)

    seeded = HeUniform(seed=1)
    assert initializers.get(None) is None
    assert initializers.get(seeded) is seeded
    assert initializers.get(init) is init


@pytest.mark.parametrize(
    "init",
    [
        *(initializers.get(name) for name in NAMES),
        GlorotUniform(seed=3),
        VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform", seed=1),
        RandomUniform(-1.0, 1.0),
        Constant(np.float32(0.5)),
        Orthogonal(gain=0.5),
    ],
    ids=repr,
)
def test_serialize_round_trips_through_json_and_get(init: Initializer) -> None:
    data = json.loads(json.dumps(initializers.serialize(init)))
    assert initializers.get(data) == init


def test_serialize_gives_the_bare_name_for_defaults_and_a_dict_otherwise() -> None:
    assert initializers.serialize(GlorotUniform()) == "glorot_uniform"
    assert initializers.serialize(None) is None
    assert initializers.serialize(HeNormal(seed=3)) == {
        "class_name": "HeNormal",
        "config": {"seed": 3},
    }
    assert GlorotUniform().get_config() == {"seed": None}


def test_get_rejects_an_unknown_name_listing_names_and_a_suggestion() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown initializer 'glorot_unifrom'; expected one of \[.*'zeros'\]\. "
        r"Pass one of those names.*Did you mean 'glorot_uniform'\?",
    ):
        initializers.get("glorot_unifrom")


def test_get_rejects_a_wrong_kind_with_type_error() -> None:
    with pytest.raises(TypeError, match=r"got 3 of type int; expected None, a name"):
        initializers.get(3)


def test_get_rejects_an_unknown_config_key_and_suggests_one() -> None:
    with pytest.raises(
        ConfigError,
        match=r"RandomNormal takes no argument 'stdev'; it takes \['mean', 'stddev', "
        r"'seed'\]\. Fix the config\. Did you mean 'stddev'\?",
    ):
        initializers.get({"class_name": "RandomNormal", "config": {"stdev": 0.1}})


def test_serialize_rejects_a_plain_function() -> None:
    with pytest.raises(
        TypeError, match=r"got <built-in function abs>.*subclass Initializer"
    ):
        initializers.serialize(abs)  # type: ignore[arg-type]


def test_constructors_validate_their_arguments() -> None:
    with pytest.raises(ConfigError, match=r"GlorotUniform got seed=-1; expected None or a"):
        GlorotUniform(seed=-1)
    with pytest.raises(TypeError, match=r"HeNormal got seed='a' of type str; expected"):
        HeNormal(seed="a")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"VarianceScaling got mode='fan_inn'.*Did you mean 'fan_in'\?"
    ):
        VarianceScaling(mode="fan_inn")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"VarianceScaling got scale=0.0; expected a number > 0"
    ):
        VarianceScaling(scale=0)
    with pytest.raises(
        ConfigError, match=r"RandomNormal got stddev=-1.0; expected a number >= 0"
    ):
        RandomNormal(stddev=-1)
    with pytest.raises(
        TypeError, match=r"Constant got value='a' of type str; expected a number"
    ):
        Constant("a")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError,
        match=r"RandomUniform\(minval=1.0, maxval=-1.0\): maxval must be >= minval",
    ):
        RandomUniform(1.0, -1.0)


def test_calls_validate_shape_and_dtype() -> None:
    with pytest.raises(
        TypeError, match=r"GlorotUniform\(\)\(shape=5\): expected a tuple of ints"
    ):
        GlorotUniform()(5)  # type: ignore[arg-type]
    with pytest.raises(
        ShapeError, match=r"Zeros\(\)\(shape=\(-1, 3\)\): dimensions must be >= 0"
    ):
        Zeros()((-1, 3))
    with pytest.raises(
        TypeError, match=r"HeNormal\(\) got dtype='int32'; random initializers"
    ):
        HeNormal()((2, 2), np.int32)


def test_a_subclass_without_call_says_what_to_override() -> None:
    with pytest.raises(NotImplementedError, match=r"Initializer must override __call__"):
        Initializer()((2,))
