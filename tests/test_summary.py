"""model.summary(): the Keras-style table of layers, output shapes and parameter counts."""

from __future__ import annotations

import re

import pytest

from loopkit import Sequential
from loopkit._training.summary import format_size
from loopkit.layers import BatchNormalization, Dense, Dropout, Flatten


def _lines(model: Sequential) -> list[str]:
    printed: list[str] = []
    model.summary(print_fn=printed.append)
    assert len(printed) == 1  # one call with the whole table
    return printed[0].splitlines()


def _row(lines: list[str], label: str) -> list[str]:
    (line,) = [line for line in lines if line.strip().startswith(label)]
    return re.split(r"\s{2,}", line.strip())


def test_summary_prints_each_layer_with_its_output_shape_and_parameter_count():
    model = Sequential(
        [Dense(32, activation="relu", input_dim=100), Dense(1, activation="sigmoid")],
        name="binary",
    )
    lines = _lines(model)
    assert lines[0] == 'Model: "binary"'
    assert _row(lines, "Layer (type)") == ["Layer (type)", "Output Shape", "Param #"]
    assert _row(lines, "dense (Dense)") == [
        "dense (Dense)",
        "(None, 32)",
        "3,232",
    ]  # 100*32+32
    assert _row(lines, "dense_1 (Dense)") == ["dense_1 (Dense)", "(None, 1)", "33"]
    assert "Total params: 3,265 (12.75 KB)" in lines  # 3265 float32 = 13060 bytes
    assert "Trainable params: 3,265 (12.75 KB)" in lines
    assert "Non-trainable params: 0 (0.00 B)" in lines


def test_summary_counts_frozen_layers_and_moving_statistics_as_non_trainable():
    model = Sequential(
        [Dense(8, input_dim=4), BatchNormalization(), Dropout(0.5), Flatten(), Dense(3)]
    )
    model.layers[0].trainable = False
    lines = _lines(model)
    assert _row(lines, "batch_normalization")[1:] == ["(None, 8)", "32"]
    assert _row(lines, "dropout (Dropout)")[1:] == ["(None, 8)", "0"]
    # dense 40 (frozen) + batch norm 4*8 (moving mean/variance: 16 non-trainable)
    # + dense_1 8*3+3 = 27
    assert "Total params: 99 (396.00 B)" in lines
    assert "Trainable params: 43 (172.00 B)" in lines  # gamma, beta and dense_1
    assert "Non-trainable params: 56 (224.00 B)" in lines
    assert model.count_params() == 99


def test_summary_wraps_a_layer_cell_wider_than_its_column_instead_of_merging_columns():
    model = Sequential([Dense(2, input_dim=2, name="a_layer_name_longer_than_its_column")])
    lines = _lines(model)
    (row,) = [i for i, line in enumerate(lines) if "(None, 2)" in line]
    assert lines[row].startswith(" a_layer_name_longer_than_its_co  (None, 2) ")
    assert lines[row + 1] == " lumn (Dense)"
    header = lines[2]
    assert lines[row].index("(None, 2)") == header.index("Output Shape")
    assert len(lines[row]) == len(header)  # the count ends where "Param #" ends


def test_summary_of_a_float64_model_counts_eight_bytes_per_parameter():
    model = Sequential([Dense(64, input_dim=15)], dtype="float64")  # 1024 parameters
    assert "Total params: 1,024 (8.00 KB)" in _lines(model)


def test_summary_of_an_unbuilt_model_shows_unknown_shapes_and_no_parameters():
    model = Sequential([Dense(4), Dense(2)])
    lines = _lines(model)
    assert _row(lines, "dense (Dense)") == ["dense (Dense)", "?", "0 (unbuilt)"]
    assert "Total params: 0 (0.00 B)" in lines
    model.build((None, 3))
    assert _row(_lines(model), "dense (Dense)") == ["dense (Dense)", "(None, 4)", "16"]


def test_summary_prints_to_stdout_by_default(capsys):
    Sequential([Dense(2, input_dim=2)]).summary()
    assert "Total params: 6 (24.00 B)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("scalars", "itemsize", "text"),
    [
        (0, 4, "0.00 B"),
        (255, 4, "1020.00 B"),
        (256, 4, "1.00 KB"),
        (3265, 4, "12.75 KB"),
        (262144, 4, "1.00 MB"),
        (2**30, 8, "8.00 GB"),
        (2**40, 4, "4096.00 GB"),
    ],
)
def test_format_size_uses_binary_units_up_to_gigabytes(scalars, itemsize, text):
    assert format_size(scalars, itemsize) == text
