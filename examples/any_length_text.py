"""Classify sentences of any length: Input(shape=(None,)) and batches bucketed by length.

The same toy sentiment task as ``masked_text_classifier.py``, whose sentence maker it
imports (a sentence is positive when its positive words outnumber its negative
ones), with sentences of 4 to 80 tokens. Instead of padding everything to the
longest sentence, a ``PyDataset`` groups sentences of similar length and pads each
batch only to its own longest sentence, so a batch of short sentences runs only a
few recurrent steps. The model leaves the time axis open (``Input(shape=(None,))``),
as Keras's text examples do, and ``Embedding(mask_zero=True)`` masks what padding
remains. The script prints the test accuracy, and how much one sentence's
prediction changes between its own length and padded to 80 tokens.

Run: python examples/any_length_text.py [--epochs 4]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from masked_text_classifier import VOCAB, make_sentences

import loopkit as lk
from loopkit.layers import LSTM, Bidirectional, Dense, Embedding
from loopkit.utils import PyDataset, pad_sequences

LONGEST = 80


class LengthBuckets(PyDataset):
    """Batches of sentences of similar length, each padded to its own longest one."""

    def __init__(
        self,
        sentences: list[np.ndarray],
        labels: np.ndarray,
        batch_size: int,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        order = np.argsort([len(s) for s in sentences], kind="stable")
        self.sentences = [sentences[i] for i in order]
        self.labels = labels[order]
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.sentences) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        tokens = pad_sequences(self.sentences[part], padding="post")
        return tokens, self.labels[part].astype(np.float32)


def main(epochs: int = 4) -> tuple[float, float]:
    """Train the classifier; return the test accuracy and the padding sensitivity."""
    lk.set_random_seed(0)
    rng = np.random.default_rng(0)
    train, y_train = make_sentences(2000, rng, LONGEST)
    test, y_test = make_sentences(400, rng, LONGEST)

    inputs = lk.Input(shape=(None,), dtype="int64")  # any number of tokens
    hidden = Embedding(VOCAB, 16, mask_zero=True)(inputs)
    hidden = Bidirectional(LSTM(16))(hidden)
    outputs = Dense(1, activation="sigmoid")(hidden)
    model = lk.Model(inputs, outputs)
    model.summary()
    model.compile(
        optimizer=lk.optimizers.Adam(learning_rate=1e-2),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(LengthBuckets(train, y_train, 32), epochs=epochs)
    _, accuracy = model.evaluate(LengthBuckets(test, y_test, 32), verbose=0)
    sentence = test[0][None, :]  # one sentence at its own length
    padded = pad_sequences(test[:1], maxlen=LONGEST, padding="post")
    own_length = model.predict(sentence, verbose=0)
    change = float(np.abs(own_length - model.predict(padded, verbose=0)).max())
    print(f"test accuracy: {accuracy:.3f}")
    print(f"prediction change from padding one sentence to {LONGEST} tokens: {change:.2e}")
    return float(accuracy), change


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    main(parser.parse_args().epochs)
