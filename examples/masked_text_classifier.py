"""Classify token sequences of mixed lengths with Embedding(mask_zero=True) and a BiLSTM.

A toy sentiment task on generated "sentences": each is 4 to 30 tokens of filler
words with sentiment words mixed in, and its label says whether positive words
outnumber negative ones. Sentences are zero-padded to 30 tokens; index 0 is
padding, so ``Embedding(mask_zero=True)`` makes a mask that the Bidirectional
LSTM honours: both directions skip the padding, and a sentence gets the same
prediction however it is padded. The script prints the test accuracy and the
largest change in prediction between pre- and post-padding the test sentences.

Run: python examples/masked_text_classifier.py [--epochs 6]
"""

from __future__ import annotations

import argparse

import numpy as np

import loopkit as lk
from loopkit.layers import LSTM, Bidirectional, Dense, Embedding

VOCAB, MAXLEN = 40, 30
POSITIVE, NEGATIVE = np.arange(1, 6), np.arange(6, 11)  # word ids; 11.. are filler


def make_sentences(
    n: int, rng: np.random.Generator, longest: int = MAXLEN
) -> tuple[list[np.ndarray], np.ndarray]:
    """Return ``n`` token arrays of 4..``longest`` tokens and their labels (1: positive)."""
    sentences, labels = [], np.empty(n, np.int64)
    for i in range(n):  # data generation, not the model: one sentence at a time
        length = int(rng.integers(4, longest + 1))
        words = rng.integers(11, VOCAB, length)
        n_pos, n_neg = rng.choice([(1, 0), (0, 1), (2, 1), (1, 2), (3, 1), (1, 3)])
        places = rng.choice(length, n_pos + n_neg, replace=False)
        words[places[:n_pos]] = rng.choice(POSITIVE, n_pos)
        words[places[n_pos:]] = rng.choice(NEGATIVE, n_neg)
        sentences.append(words)
        labels[i] = int(n_pos > n_neg)
    return sentences, labels


def pad(sentences: list[np.ndarray], before: bool = False) -> np.ndarray:
    """Zero-pad each sentence to MAXLEN tokens, after it (default) or before it."""
    out = np.zeros((len(sentences), MAXLEN), np.int64)
    for row, words in zip(out, sentences, strict=True):
        if before:
            row[MAXLEN - len(words) :] = words
        else:
            row[: len(words)] = words
    return out


def main(epochs: int = 6) -> tuple[float, float]:
    """Train the classifier; return the test accuracy and the padding sensitivity."""
    lk.set_random_seed(0)
    rng = np.random.default_rng(0)
    train, y_train = make_sentences(2000, rng)
    test, y_test = make_sentences(500, rng)
    model = lk.Sequential(
        [
            Embedding(VOCAB, 16, mask_zero=True, input_shape=(MAXLEN,)),
            Bidirectional(LSTM(16)),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.summary()
    model.compile(
        optimizer=lk.optimizers.Adam(learning_rate=1e-2),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(pad(train), y_train, epochs=epochs, batch_size=32, validation_split=0.1)
    _, accuracy = model.evaluate(pad(test), y_test, verbose=0)
    post = model.predict(pad(test), verbose=0)
    pre = model.predict(pad(test, before=True), verbose=0)
    change = float(np.abs(post - pre).max())
    print(f"test accuracy: {accuracy:.3f}")
    print(f"largest change from moving the padding to the front: {change:.2e}")
    return float(accuracy), change


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    main(parser.parse_args().epochs)
