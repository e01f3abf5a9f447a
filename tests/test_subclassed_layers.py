"""Layers written Keras's way: a ``call()`` composing built-in layers, traced once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import loopkit as lk
from loopkit import layers
from loopkit.testing import check_model_gradients


class TransformerBlock(layers.Layer):
    """keras.io's "Text classification with Transformer" block, verbatim."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, rate: float = 0.1):
        super().__init__()
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = lk.Sequential(
            [layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)]
        )
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs: Any, training: bool = False) -> Any:
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)


MAXLEN, VOCAB, EMBED = 12, 40, 16


def smooth(block: TransformerBlock) -> TransformerBlock:
    """The block with gelu for relu: central differences fail at random at a kink."""
    block.ffn = lk.Sequential([layers.Dense(8, activation="gelu"), layers.Dense(EMBED)])
    return block


def text_classifier(
    rate: float = 0.1, dtype: str = "float32", relu: bool = True
) -> tuple[lk.Model, Any]:
    """keras.io's model: Embedding, the block, pooling, Dropout, Dense (smaller sizes).

    ``relu=False`` puts gelu in its place, for finite differences.
    """
    inputs = layers.Input(shape=(MAXLEN,))
    x = layers.Embedding(VOCAB, EMBED)(inputs)
    block = TransformerBlock(EMBED, 2, 8, rate=rate)
    if not relu:
        smooth(block)
    x = block(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(rate)(x)
    x = layers.Dense(8, activation="relu" if relu else "gelu")(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return lk.Model(inputs=inputs, outputs=outputs, dtype=dtype), block


def tokens(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(1, VOCAB, (n, MAXLEN))
    return x, (x[:, 0] >= VOCAB // 2).astype(np.int64)


def test_keras_io_text_classifier_with_a_transformer_block_trains(rng) -> None:
    model, block = text_classifier()
    x, y = tokens(rng, 64)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] - 0.05
    assert block in model.layers
    assert all(np.isfinite(w).all() for w in block.get_weights())


def test_the_block_has_keras_parameter_count_and_tracking_order() -> None:
    _, block = text_classifier()
    # Keras 3 counts 2,944 for TransformerBlock(16, 2, 8) on 16 features: attention
    # 3 * (16*2*16 + 2*16) + (2*16*16 + 16), ffn (16*8 + 8) + (8*16 + 16), norms 4*16.
    assert block.count_params() == 3 * (512 + 32) + (512 + 16) + (136 + 144) + 64
    names = [p.name for p in block.weights]
    assert names[:8] == [p.name for p in block.att.weights]  # att first, as assigned
    assert names[8:12] == ["kernel", "bias", "kernel", "bias"]  # then ffn
    assert names[12:] == ["gamma", "beta", "gamma", "beta"]  # layernorm1, layernorm2
    from loopkit.saving.weights import weight_keys

    model, block = text_classifier()
    keys = weight_keys(model)
    assert "transformer_block/ffn/0/kernel" in keys[1:] or any(
        k.endswith("/ffn/0/kernel") for k in keys
    )
    assert len(set(keys)) == len(keys)


def test_gradients_through_a_subclassed_block_match_finite_differences(rng) -> None:
    model, _ = text_classifier(rate=0.0, dtype="float64", relu=False)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = tokens(rng, 5)
    check_model_gradients(model, x, y, rtol=1e-5, atol=1e-8)


def hand_wired(block: TransformerBlock) -> lk.Model:
    """The same inner layers, called by hand in a functional model."""
    inputs = layers.Input(shape=(MAXLEN, EMBED))
    attn = block.dropout1(block.att(inputs, inputs))
    out1 = block.layernorm1(layers.Add()([inputs, attn]))
    ffn = block.dropout2(block.ffn(out1))
    return lk.Model(inputs, block.layernorm2(layers.Add()([out1, ffn])))


def test_block_predictions_equal_its_layers_wired_by_hand(rng) -> None:
    inputs = layers.Input(shape=(MAXLEN, EMBED))
    block = TransformerBlock(EMBED, 2, 8)
    model = lk.Model(inputs, block(inputs))
    reference = hand_wired(block)  # the very same layers: the same weights
    x = rng.standard_normal((6, MAXLEN, EMBED)).astype(np.float32)
    expected = reference.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(block(x), expected, rtol=1e-6, atol=1e-6)  # eagerly


def test_a_block_called_eagerly_on_arrays_first_builds_itself(rng) -> None:
    block = TransformerBlock(EMBED, 2, 8)
    x = rng.standard_normal((3, MAXLEN, EMBED)).astype(np.float32)
    out = block(x)
    assert out.shape == (3, MAXLEN, EMBED)
    assert block.built and len(block.weights) == 16
    np.testing.assert_allclose(block(x, training=False), out)
    assert not np.allclose(block(x, training=True), out)  # dropout follows training=
    # After the eager call the block joins a graph with the weights it has.
    inputs = layers.Input(shape=(MAXLEN, EMBED))
    model = lk.Model(inputs, block(inputs))
    np.testing.assert_allclose(model.predict(x, verbose=0), out, rtol=1e-6, atol=1e-6)


def test_set_weights_and_get_weights_round_trip_through_the_inner_layers(rng) -> None:
    block = TransformerBlock(EMBED, 2, 8)
    x = rng.standard_normal((2, MAXLEN, EMBED)).astype(np.float32)
    before = block(x)
    new = [rng.standard_normal(w.shape).astype(np.float32) for w in block.get_weights()]
    block.set_weights(new)
    for got, want in zip(block.get_weights(), new, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(block.att.get_weights()[0], new[0])
    assert not np.allclose(block(x), before)


def test_a_block_called_twice_shares_its_weights(rng) -> None:
    inputs = layers.Input(shape=(MAXLEN, EMBED))
    block = TransformerBlock(EMBED, 2, 8, rate=0.0)
    model = lk.Model(inputs, block(block(inputs)))
    assert model.count_params() == block.count_params()
    assert model.layers.count(block) == 1
    x = rng.standard_normal((4, MAXLEN, EMBED)).astype(np.float32)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), block(block(x)), rtol=1e-5, atol=1e-5
    )


def test_gradients_of_a_block_called_twice_match_finite_differences(rng) -> None:
    inputs = layers.Input(shape=(MAXLEN, EMBED))
    block = smooth(TransformerBlock(EMBED, 2, 8, rate=0.0))
    h = block(block(inputs))
    outputs = layers.Dense(1)(layers.GlobalAveragePooling1D()(h))
    model = lk.Model(inputs, outputs, dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((3, MAXLEN, EMBED))
    check_model_gradients(model, x, rng.standard_normal((3, 1)))


def test_summary_lists_the_block_as_one_layer() -> None:
    model, block = text_classifier()
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    table = "\n".join(lines)
    assert "transformer_block" in table and "(TransformerBlock)" in table
    assert f"{block.count_params():,}" in table
    assert "multi_head_attention" not in table  # its inner layers are not listed


def test_training_flag_reaches_dropout_inside_the_block(rng) -> None:
    inputs = layers.Input(shape=(MAXLEN, EMBED))
    block = TransformerBlock(EMBED, 2, 8, rate=0.5)
    model = lk.Model(inputs, block(inputs))
    x = rng.standard_normal((4, MAXLEN, EMBED)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    trained_a = model.forward(x, training=True).copy()
    trained_b = model.forward(x, training=True).copy()
    assert not np.allclose(trained_a, trained_b)  # fit's mode draws dropout masks
    inference = model.forward(x, training=False)
    expected = hand_wired(block).predict(x, verbose=0)
    np.testing.assert_allclose(inference, expected, atol=1e-6)


def test_a_frozen_block_keeps_its_weights_in_fit(rng) -> None:
    model, block = text_classifier()
    block.trainable = False
    assert block.trainable_weights == [] and len(block.non_trainable_weights) == 16
    assert not block.att.trainable  # Keras's setter freezes the held layers too
    before = block.get_weights()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(*tokens(rng, 16), epochs=1, batch_size=8, verbose=0)
    for got, want in zip(block.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


class Residual(layers.Layer):
    """Keras's ``**kwargs`` pattern, with get_config overridden as Keras users do."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.dense = layers.Dense(units, activation="tanh")

    def call(self, x: Any) -> Any:
        return x + self.dense(x)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"units": self.units})
        return config


def test_name_and_trainable_pass_through_kwargs_to_the_base_layer() -> None:
    layer = Residual(4, name="res", trainable=False)
    assert layer.name == "res" and layer.trainable is False
    inputs = layers.Input(shape=(4,))
    model = lk.Model(inputs, layer(inputs))
    assert model.get_layer("res") is layer
    assert model.trainable_weights == []


def test_a_model_with_a_subclassed_layer_saves_and_loads(tmp_path, rng) -> None:
    inputs = layers.Input(shape=(4,))
    model = lk.Model(inputs, layers.Dense(1)(Residual(4, name="res")(inputs)))
    model.compile(optimizer="adam", loss="mse")
    x = rng.standard_normal((8, 4)).astype(np.float32)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = lk.saving.load_model(path, custom_objects={"Residual": Residual})
    assert isinstance(loaded.get_layer("res"), Residual)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_registered_subclassed_layer_loads_without_custom_objects(tmp_path, rng) -> None:
    @lk.saving.register_keras_serializable(package="tests")
    class Gate(layers.Layer):
        def __init__(self, units: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = units
            self.value = layers.Dense(units)
            self.gate = layers.Dense(units, activation="sigmoid")

        def call(self, x: Any) -> Any:
            return self.value(x) * self.gate(x)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "units": self.units}

    inputs = layers.Input(shape=(3,))
    model = lk.Model(inputs, Gate(2, name="gate")(inputs))
    path = str(tmp_path / "gate.keras")
    model.save(path)
    loaded = lk.saving.load_model(path)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# --- what cannot work, refused where the layer is called ------------------------------


class OwnWeights(layers.Layer):
    def build(self, input_shape: Any) -> None:
        self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="ones")

    def call(self, x: Any) -> Any:
        return x @ self.w


def test_a_keras_layer_with_its_own_weights_is_refused_at_the_call() -> None:
    with pytest.raises(
        NotImplementedError,
        match=r"^OwnWeights\('own_weights'\): OwnWeights creates weights of its own "
        r"\(\['variable'\]\).*no automatic differentiation.*forward\(x, training\) and "
        r"backward\(dy\)",
    ):
        OwnWeights()(layers.Input(shape=(3,)))


def test_add_weight_in_init_of_a_keras_layer_is_refused() -> None:
    class InitWeights(layers.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.w = self.add_weight(shape=(3,), name="scale")

        def call(self, x: Any) -> Any:
            return x * self.w

    with pytest.raises(NotImplementedError, match=r"weights of its own \(\['scale'\]\)"):
        InitWeights()


def test_numpy_inside_call_is_refused_with_the_layer_named() -> None:
    class Softplus(layers.Layer):
        def call(self, x: Any) -> Any:
            return np.log1p(np.exp(x))

    with pytest.raises(
        TypeError,
        match=r"^Softplus\('softplus'\)\(\.\.\.\): loopkit records Softplus\.call\(\) by "
        r"running it once on symbolic tensors of shapes \[\(None, 3\)\].*"
        r"NumPy functions.*give the layer forward\(\) and backward\(\)",
    ):
        Softplus()(layers.Input(shape=(3,)))


def test_a_second_call_with_other_constants_is_refused(rng) -> None:
    class Scaled(layers.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x: Any, scale: float = 1.0) -> Any:
            return self.dense(x) * scale

    layer = Scaled()
    inputs = layers.Input(shape=(3,))
    layer(inputs, scale=2.0)
    with pytest.raises(
        TypeError,
        match=r"traced for calls shaped like call\(<tensor>, "
        r"scale=2\.0\) and is now called as call\(<tensor>, scale=3\.0\)",
    ):
        layer(inputs, scale=3.0)


def test_a_keras_layer_never_called_says_so_on_backward() -> None:
    block = TransformerBlock(EMBED, 2, 8)
    with pytest.raises(
        NotImplementedError,
        match=r"has not been called yet, so it has no "
        r"backward\(dy\)",
    ):
        block.backward(np.zeros((1, MAXLEN, EMBED), np.float32))


def test_a_plain_layer_called_twice_in_a_chain_gets_both_calls_gradients(rng) -> None:
    # A chain graph (each node feeding only the next) skipped adding the gradients of
    # a shared layer's second call; the block test above found it.
    inputs = layers.Input(shape=(5,))
    dense = layers.Dense(5, activation="tanh")
    model = lk.Model(inputs, layers.Dense(1)(dense(dense(inputs))), dtype="float64")
    assert model.graph is not None and model.graph.is_chain
    model.compile(optimizer="sgd", loss="mse")
    check_model_gradients(model, rng.standard_normal((4, 5)), rng.standard_normal((4, 1)))


def test_a_block_without_get_config_saves_its_init_arguments_as_keras_3(
    tmp_path, rng
) -> None:
    # keras.io's TransformerBlock defines no get_config and takes no name=: Keras 3
    # records the __init__ arguments, and so does loopkit.
    model, block = text_classifier()
    assert block.get_config() == {
        "name": block.name,
        "trainable": True,
        "input_shape": None,
        "embed_dim": EMBED,
        "num_heads": 2,
        "ff_dim": 8,
        "rate": 0.1,
    }
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = lk.saving.load_model(
        path, custom_objects={"TransformerBlock": TransformerBlock}
    )
    again = loaded.get_layer(block.name)
    assert isinstance(again, TransformerBlock) and again is not block
    x, _ = tokens(rng, 4)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_block_with_arguments_that_are_not_data_must_override_get_config(
    tmp_path,
) -> None:
    class Wrap(layers.Layer):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def call(self, x: Any) -> Any:
            return self.inner(x)

    inputs = layers.Input(shape=(3,))
    model = lk.Model(inputs, Wrap(layers.Dense(2))(inputs))
    with pytest.raises(
        NotImplementedError,
        match=r"^Wrap\.get_config\(\): layer 'wrap' was made with arguments \['inner'\] "
        r"that are not all plain data.*Override get_config\(\) in Wrap",
    ):
        model.save(str(tmp_path / "wrap.keras"))
    assert not (tmp_path / "wrap.keras").exists()


class Projection(layers.Layer):
    """Passes the mask on, as a Keras layer with ``supports_masking`` does."""

    supports_masking = True

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = layers.Dense(units)

    def call(self, x: Any) -> Any:
        return self.dense(x)


def test_a_block_with_supports_masking_passes_the_mask_on(rng) -> None:
    inputs = layers.Input(shape=(5,))
    x = layers.Embedding(10, 3, mask_zero=True)(inputs)
    block = Projection(2)
    model = lk.Model(inputs, layers.GlobalAveragePooling1D()(block(x)))
    ids = np.array([[3, 4, 0, 0, 0], [1, 2, 5, 6, 7]])
    got = model.predict(ids, verbose=0)
    # The pooling averages only the unmasked steps: the mask crossed the block.
    steps = block(model.layers[1](ids))
    np.testing.assert_allclose(got[0], steps[0, :2].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got[1], steps[1].mean(axis=0), rtol=1e-6)


class Encoder(layers.Layer):
    """Blocks held in a list and called in a loop, as Keras encoders are written."""

    def __init__(self, depth: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blocks = [
            smooth(TransformerBlock(EMBED, 2, 8, rate=0.0)) for _ in range(depth)
        ]

    def call(self, x: Any, training: Any = None) -> Any:
        for block in self.blocks:
            x = block(x, training=training)
        return x


def test_blocks_nested_in_a_block_have_paths_and_exact_gradients(rng) -> None:
    from loopkit.saving.weights import weight_keys

    inputs = layers.Input(shape=(MAXLEN, EMBED))
    encoder = Encoder(2, name="encoder")
    outputs = layers.Dense(1)(layers.GlobalAveragePooling1D()(encoder(inputs)))
    model = lk.Model(inputs, outputs, dtype="float64")
    keys = weight_keys(model)
    assert keys[0] == "encoder/blocks/0/att/query_kernel"
    assert "encoder/blocks/1/ffn/1/bias" in keys and len(set(keys)) == len(keys)
    assert encoder.count_params() == 2 * encoder.blocks[0].count_params()
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((3, MAXLEN, EMBED))
    check_model_gradients(model, x, rng.standard_normal((3, 1)))


class CrossAttention(layers.Layer):
    """A block called on two tensors, passed positionally."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.att = layers.MultiHeadAttention(num_heads=1, key_dim=4)

    def call(self, query: Any, value: Any) -> Any:
        return self.att(query, value) + query


def test_a_block_on_two_inputs_has_exact_gradients_and_clones(rng) -> None:
    query, value = layers.Input(shape=(3, 4)), layers.Input(shape=(5, 4))
    block = CrossAttention(name="cross")
    pooled = layers.GlobalAveragePooling1D()(block(query, value))
    model = lk.Model([query, value], layers.Dense(1)(pooled), dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    xs = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))]
    check_model_gradients(model, xs, rng.standard_normal((2, 1)))
    copy = lk.models.clone_model(model)  # rebuilt from the config: call(query, value)
    assert isinstance(copy.get_layer("cross"), CrossAttention)
    assert copy.count_params() == model.count_params()


def test_a_block_in_a_sequential_model_trains(rng) -> None:
    model = lk.Sequential(
        [
            layers.Input(shape=(MAXLEN,)),
            layers.Embedding(VOCAB, EMBED),
            TransformerBlock(EMBED, 2, 8),
            layers.GlobalAveragePooling1D(),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    losses = model.fit(*tokens(rng, 48), epochs=6, batch_size=16, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    assert [type(layer).__name__ for layer in model.layers][1] == "TransformerBlock"


class NoisyWhenTraining(layers.Layer):
    """Branches on ``training`` in Python, as Keras allows in call()."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = layers.Dense(3)
        self.noise = layers.GaussianNoise(1.0)

    def call(self, x: Any, training: Any = None) -> Any:
        h = self.dense(x)
        if training:
            h = self.noise(h)
        return h


def test_a_python_branch_on_training_follows_fit_and_predict(rng) -> None:
    inputs = layers.Input(shape=(4,))
    block = NoisyWhenTraining()
    model = lk.Model(inputs, block(inputs))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    expected = x @ block.dense.kernel.value + block.dense.bias.value
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)
    noisy = model.forward(x, training=True)
    assert not np.allclose(noisy, expected)  # the training branch ran
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((5, 3)), epochs=1, verbose=0)  # backward through that branch
    np.testing.assert_allclose(block(x), block(x, training=False))


def test_a_layer_both_held_by_a_block_and_called_outside_it_is_refused() -> None:
    class Reuse(layers.Layer):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def call(self, x: Any) -> Any:
            return self.inner(x)

    dense = layers.Dense(4, name="shared_dense")
    inputs = layers.Input(shape=(4,))
    outputs = Reuse(dense)(dense(inputs))
    with pytest.raises(
        lk.ConfigError,
        match=r"layers 'shared_dense' and 'reuse' both hold the weight 'kernel'.*Call it "
        r"in one place only",
    ):
        lk.Model(inputs, outputs)
