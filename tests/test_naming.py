from __future__ import annotations

import pytest

from loopkit._naming import snake_case
from loopkit.layers import Conv2D, Dense
from loopkit.losses import KLDivergence, MeanSquaredError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("EarlyStopping", "early_stopping"),
        ("KLDivergence", "kl_divergence"),
        ("ReduceLROnPlateau", "reduce_lr_on_plateau"),
        ("CSVLogger", "csv_logger"),
        ("L1L2", "l1_l2"),
        ("Conv2D", "conv2_d"),
        ("Dense", "dense"),
    ],
)
def test_snake_case_splits_words_at_capitals_and_after_digits(name, expected) -> None:
    assert snake_case(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Conv2D", "conv2d"),
        ("MaxPooling2D", "max_pooling2d"),
        ("Conv2DTranspose", "conv2d_transpose"),
        ("L1L2", "l1l2"),
        ("KLDivergence", "kl_divergence"),
    ],
)
def test_snake_case_keeps_a_capital_after_a_digit_in_the_word_for_layer_names(
    name, expected
) -> None:
    assert snake_case(name, split_after_digit=False) == expected


def test_layers_and_losses_take_their_default_names_from_snake_case() -> None:
    assert Conv2D(4, 3).default_name == "conv2d"
    assert Dense(3).default_name == "dense"
    assert KLDivergence().name == "kl_divergence"
    assert MeanSquaredError().name == "mean_squared_error"
