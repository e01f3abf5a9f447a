"""Seeding: one call makes initializers, dropout masks and shuffles reproducible."""

from __future__ import annotations

import random as _pyrandom

import numpy as np

__all__ = ["new_generator", "set_random_seed"]

_root: np.random.SeedSequence = np.random.SeedSequence()


def set_random_seed(seed: int) -> None:
    """Seed every random choice loopkit makes from now on (``keras.utils.set_random_seed``).

    Each model (and each layer built on its own) draws an independent
    ``numpy.random.Generator`` from a seed sequence rooted at ``seed``, so the same
    script run twice gives bitwise-identical weights, dropout masks and shuffles.
    Python's ``random`` and NumPy's legacy global state are seeded too, as Keras does.

    Args:
        seed: A non-negative integer.

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: ``seed`` is negative.
    """
    global _root
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"set_random_seed() got seed={seed!r} of type {type(seed).__name__}; "
            "expected a non-negative int such as 42."
        )
    if seed < 0:
        raise ValueError(
            f"set_random_seed() got seed={seed}; expected a non-negative int such as 42."
        )
    _root = np.random.SeedSequence(int(seed))
    _pyrandom.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 - Keras seeds the legacy state too


def new_generator() -> np.random.Generator:
    """Return a fresh generator, the next child of the seed set by ``set_random_seed``."""
    (child,) = _root.spawn(1)
    return np.random.Generator(np.random.PCG64(child))
