"""InputLayer: what stands for a model's input in ``model.layers`` and ``summary``."""

from __future__ import annotations

from typing import Any

from attrs import define, field

from loopkit.errors import ConfigError
from loopkit.layers.base import Layer, as_sample_shape
from loopkit.typing import FloatArray, Shape

__all__ = ["InputLayer"]


def _as_shape(value: Any) -> Shape:
    return as_sample_shape(value)


@define(eq=False, slots=False)
class InputLayer(Layer):
    """The entry of a functional model: no weights, passes its input through.

    ``loopkit.Input(shape)`` makes one; it is listed first in a functional model's
    ``layers``, as in Keras.

    Args:
        shape: Shape of one sample (no batch axis); None for an axis of any length.
        batch_size: Accepted for Keras compatibility; batches may have any size.
        batch_shape: Keras's alternative to ``shape``: ``(batch_size, *shape)``.

    Raises:
        ConfigError: ``shape`` and ``batch_shape`` disagree.
    """

    shape: Shape = field(default=(), converter=_as_shape)
    batch_size: int | None = field(default=None, kw_only=True)
    batch_shape: tuple[int | None, ...] | None = field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.batch_shape is not None:
            sample = _as_shape(tuple(self.batch_shape)[1:])
            if self.shape and self.shape != sample:
                raise ConfigError(
                    f"InputLayer(shape={self.shape}, batch_shape="
                    f"{tuple(self.batch_shape)}): the two disagree; pass only one."
                )
            self.shape = sample
        super().__attrs_post_init__()
        self.built = True
        self.built_input_shape = self.shape

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x``."""
        return x

    def backward(self, dy: FloatArray) -> FloatArray:
        """Return ``dy``."""
        return dy

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments."""
        return {"shape": list(self.shape), "name": self.name}
