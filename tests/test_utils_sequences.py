"""keras.utils.pad_sequences: every padding/truncating case against hand-written arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import loopkit as keras
from loopkit import ConfigError

RAGGED = [[1], [2, 3], [4, 5, 6]]


def _check(actual: np.ndarray, expected: list[list[int]], dtype: str = "int32") -> None:
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(actual, np.array(expected, dtype))


def test_pad_sequences_matches_the_keras_docs_examples() -> None:
    # The four examples of keras.utils.pad_sequences's docstring (Keras 3).
    _check(keras.utils.pad_sequences(RAGGED), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    _check(
        keras.utils.pad_sequences(RAGGED, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    )
    _check(
        keras.utils.pad_sequences(RAGGED, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    )
    _check(keras.utils.pad_sequences(RAGGED, maxlen=2), [[0, 1], [2, 3], [5, 6]])


@pytest.mark.parametrize(
    ("padding", "truncating", "expected"),
    [
        ("pre", "pre", [[0, 0, 1], [2, 3, 4], [6, 7, 8], [0, 0, 0]]),
        ("pre", "post", [[0, 0, 1], [2, 3, 4], [5, 6, 7], [0, 0, 0]]),
        ("post", "pre", [[1, 0, 0], [2, 3, 4], [6, 7, 8], [0, 0, 0]]),
        ("post", "post", [[1, 0, 0], [2, 3, 4], [5, 6, 7], [0, 0, 0]]),
    ],
)
def test_every_padding_and_truncating_combination_with_maxlen_shorter_than_some(
    padding: Any, truncating: Any, expected: list[list[int]]
) -> None:
    sequences = [[1], [2, 3, 4], [5, 6, 7, 8], []]  # shorter, equal, longer, empty
    out = keras.utils.pad_sequences(
        sequences, maxlen=3, padding=padding, truncating=truncating
    )
    _check(out, expected)


@pytest.mark.parametrize(
    ("padding", "expected"),
    [
        ("pre", [[9, 9, 9, 1, 2], [9, 9, 9, 9, 3]]),
        ("post", [[1, 2, 9, 9, 9], [3, 9, 9, 9, 9]]),
    ],
)
def test_maxlen_longer_than_every_sequence_pads_them_all(
    padding: Any, expected: list[list[int]]
) -> None:
    out = keras.utils.pad_sequences([[1, 2], [3]], maxlen=5, padding=padding, value=9)
    _check(out, expected)


def test_dtype_and_a_fractional_value_are_used_for_the_output() -> None:
    out = keras.utils.pad_sequences([[1.5], [2.25, 3.5]], dtype="float32", value=0.5)
    _check(out, [[0.5, 1.5], [2.25, 3.5]], "float32")  # type: ignore[list-item]
    # The default int32 truncates floats as Keras's np.asarray(..., dtype) does.
    _check(keras.utils.pad_sequences([[1.7], [2.2, 3.9]]), [[0, 1], [2, 3]])


def test_strings_pad_with_dtype_object_and_a_string_value() -> None:
    out = keras.utils.pad_sequences([["a"], ["b", "c"]], dtype=object, value="<pad>")
    assert out.dtype == object
    assert out.tolist() == [["<pad>", "a"], ["b", "c"]]


def test_empty_sequences_and_an_empty_list() -> None:
    _check(keras.utils.pad_sequences([[], []]), np.zeros((2, 0), int).tolist())
    assert keras.utils.pad_sequences([[], []]).shape == (2, 0)
    _check(keras.utils.pad_sequences([[], [1]], value=7), [[7], [1]])
    assert keras.utils.pad_sequences([], maxlen=4).shape == (0, 4)
    assert keras.utils.pad_sequences([]).shape == (0, 0)
    # maxlen=0 keeps nothing (Keras's s[-0:] would keep everything and then fail).
    assert keras.utils.pad_sequences([[1, 2]], maxlen=0).shape == (1, 0)


def test_arrays_of_arrays_are_accepted() -> None:
    sequences = [np.array([1, 2, 3]), np.array([4])]
    _check(keras.utils.pad_sequences(sequences, maxlen=2), [[2, 3], [0, 4]])
    _check(keras.utils.pad_sequences(np.array([[1, 2], [3, 4]])), [[1, 2], [3, 4]])


def test_sequences_of_vectors_pad_the_first_axis_and_keep_the_sample_shape() -> None:
    a = [[1, 2], [3, 4], [5, 6]]  # 3 steps of 2 features
    b = [[7, 8]]
    out = keras.utils.pad_sequences([a, b, []], maxlen=2, padding="post", value=-1)
    assert out.shape == (3, 2, 2) and out.dtype == np.int32
    expected = [[[3, 4], [5, 6]], [[7, 8], [-1, -1]], [[-1, -1], [-1, -1]]]
    np.testing.assert_array_equal(out, expected)
    out = keras.utils.pad_sequences([a, b], truncating="post", dtype="float32")
    np.testing.assert_array_equal(
        out, np.array([[[1, 2], [3, 4], [5, 6]], [[0, 0], [0, 0], [7, 8]]], np.float32)
    )


def test_bad_padding_or_truncating_is_refused_before_any_work() -> None:
    with pytest.raises(ValueError, match=r"padding='middle'; expected 'pre' or 'post'"):
        keras.utils.pad_sequences(RAGGED, padding="middle")  # type: ignore[arg-type]
    # Refused even when no sequence needs cutting (Keras checks only on the way).
    with pytest.raises(ConfigError, match=r"truncating='end'; expected 'pre' or 'post'"):
        keras.utils.pad_sequences([[]], truncating="end")  # type: ignore[arg-type]


def test_items_that_are_not_sequences_are_refused_with_their_position() -> None:
    with pytest.raises(ValueError, match=r"got 3 of type int at position 2; every item"):
        keras.utils.pad_sequences([[1], [2], 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"rather than \[1, 2, 3\]"):
        keras.utils.pad_sequences([1, 2, 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"'ab' of type str at position 0"):
        keras.utils.pad_sequences(["ab"])
    with pytest.raises(ValueError, match=r"got sequences of type int; expected a list"):
        keras.utils.pad_sequences(5)  # type: ignore[arg-type]


def test_bad_maxlen_string_value_and_mixed_sample_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"maxlen=-1; expected a non-negative int"):
        keras.utils.pad_sequences(RAGGED, maxlen=-1)
    with pytest.raises(ValueError, match=r"maxlen=2.5; expected a non-negative int"):
        keras.utils.pad_sequences(RAGGED, maxlen=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"value='x' with dtype=int32; pass dtype=object"):
        keras.utils.pad_sequences(RAGGED, value="x")
    with pytest.raises(
        ValueError, match=r"sample shape \(3,\) at position 1; the first non-empty .*\(2,\)"
    ):
        keras.utils.pad_sequences([[[1, 2]], [[1, 2, 3]]])
