"""Turning a model's data (arrays, lists or dicts of them, generators) into datasets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from attrs import define, field

from loopkit._data.checks import check_dataset, check_structured
from loopkit._data.datasets import (
    ArrayDataset,
    as_array,
    make_dataset,
)
from loopkit._data.inputs import is_table
from loopkit._data.structures import (
    StructuredDataset,
    make_structured_dataset,
    structured_batch,
)
from loopkit._training.objective import Objective
from loopkit.errors import ConfigError, ShapeError
from loopkit.typing import Array

__all__ = ["ModelData"]


@define(eq=False, slots=False)
class ModelData(Objective):
    """Inputs and outputs of a model, and datasets built from data shaped like them."""

    _input_keys: list[str] | None = field(init=False, default=None, repr=False)
    _output_keys: list[str] | None = field(init=False, default=None, repr=False)

    @property
    def inputs(self) -> list[Any]:
        """The model's input tensors, in order."""
        return [] if self.graph is None else list(self.graph.inputs)

    @property
    def outputs(self) -> list[Any]:
        """The model's output tensors, in order."""
        return [] if self.graph is None else list(self.graph.outputs)

    @property
    def input(self) -> Any:
        """The input tensor(s) as Keras's ``model.input``: one tensor, a list or a dict.

        ``encoder_model = Model(model.input[0], ...)`` reuses a trained graph's
        input, as Keras's seq2seq example does.

        Raises:
            AttributeError: the model has no graph yet (a Sequential not built).
        """
        return self._structure("input", self.inputs, self._input_keys)

    @property
    def output(self) -> Any:
        """The output tensor(s) as Keras's ``model.output``: one tensor, a list or a dict.

        Raises:
            AttributeError: the model has no graph yet (a Sequential not built).
        """
        return self._structure("output", self.outputs, self._output_keys)

    def _structure(self, what: str, tensors: list[Any], keys: list[str] | None) -> Any:
        if not tensors:
            raise AttributeError(
                f"Model {getattr(self, 'name', None)!r} has no {what} yet: it is not "
                "built. Start it with loopkit.Input(shape), give the first layer "
                "input_shape=, or call model.build((None, *sample_shape)) first."
            )
        if keys is not None:
            return dict(zip(keys, tensors, strict=True))
        return tensors[0] if len(tensors) == 1 else tensors

    @property
    def _structured(self) -> bool:
        """Whether data comes as lists or dicts: several inputs or outputs, or dicts."""
        return (
            len(self.inputs) > 1
            or len(self.outputs) > 1
            or self._input_keys is not None
            or self._output_keys is not None
        )

    @property
    def _integer_targets(self) -> bool:
        return self.loss is not None and self.loss.name.startswith("sparse")

    @property
    def _integer_outputs(self) -> list[bool]:
        return [h.loss is not None and h.loss.name.startswith("sparse") for h in self.heads]

    def _structured_unpack(self, call: str) -> Any:
        return lambda item: structured_batch(
            item,
            self.input_names,
            self.output_names,
            self.dtype,
            call,
            dict_only=self._input_keys is not None,
        )

    def _dataset(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        *,
        batch_size: int | None,
        shuffle: bool,
        steps: int | None,
        class_weight: Any,
        call: str,
    ) -> Any:
        if self._structured and (
            isinstance(x, (np.ndarray, list, tuple, Mapping)) or is_table(x)
        ):
            if class_weight is not None:
                raise ConfigError(
                    f"{call} got class_weight for a model with several outputs; as in "
                    "Keras, pass sample_weight as a dict keyed by output name instead."
                )
            structured = self._arrays_dataset(
                x, y, sample_weight, batch_size, shuffle, steps, call
            )
            self.check_inputs(structured.xs, call)  # names the arrays' whole shapes
            first = next(iter(structured.split(1, 1, 1)[0].batches(0)))
            self.check_batch(first[0], first[1], call)
            check_structured(structured, self, call)
            return structured
        dataset = make_dataset(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=self.shuffle_seed,
            dtype=self.dtype,
            steps=steps,
            integer_targets=self._integer_targets,
            class_weight=class_weight,
            call=call,
            unpack=self._structured_unpack(call) if self._structured else None,
        )
        x_array = getattr(dataset, "x", None)
        if x_array is not None:
            self.ensure_built(x_array[:1])
            self.check_inputs(x_array, call)
            y_array = getattr(dataset, "y", None)
            if y_array is not None:
                self.check_targets(x_array, y_array, call)
        if not self._structured:
            check_dataset(
                dataset, self, call
            )  # values: NaN/inf, labels; batches as they come
        return dataset

    def _arrays_dataset(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        batch_size: int | None,
        shuffle: bool,
        steps: int | None,
        call: str,
    ) -> StructuredDataset:
        """Lists or dicts of arrays, shaped like this model's inputs and outputs."""
        return make_structured_dataset(
            x,
            y,
            sample_weight,
            input_names=self.input_names,
            output_names=self.output_names,
            dict_only=self._input_keys is not None,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=self.shuffle_seed,
            dtype=self.dtype,
            steps=steps,
            call=call,
            integer_outputs=self._integer_outputs,
        )

    def _inputs_dataset(
        self, x: Any, batch_size: int | None, steps: int | None, call: str
    ) -> Any:
        several = len(self.inputs) > 1 or self._input_keys is not None
        if several and (isinstance(x, (np.ndarray, list, tuple, Mapping)) or is_table(x)):
            data = self._arrays_dataset(x, None, None, batch_size, False, steps, call)
            self.check_inputs(data.xs, call)
            return data
        return make_dataset(
            x,
            None,
            None,
            batch_size=batch_size,
            shuffle=False,
            seed=self.shuffle_seed,
            dtype=self.dtype,
            steps=steps,
            integer_targets=False,
            class_weight=None,
            call=call,
            unpack=self._structured_unpack(call) if self._structured else None,
        )

    def assemble_predictions(self, chunks: list[Any]) -> Any:
        """Concatenate per-batch outputs into the structure of ``outputs``.

        Raises:
            ShapeError: batches of different sequence lengths gave outputs of
                different lengths, which no one array holds.
        """
        several = not isinstance(chunks[0], np.ndarray)
        parts = list(zip(*chunks, strict=True)) if several else [chunks]
        shapes = [{a.shape[1:] for a in output} for output in parts]
        if any(len(s) > 1 for s in shapes):
            seen = next(sorted(s, key=str) for s in shapes if len(s) > 1)
            raise ShapeError(
                f"predict() got batches whose outputs have samples of shapes {seen}: "
                "the batches had different sequence lengths and the output keeps the "
                "length, so no one array holds them. Predict each length on its own "
                "(model.predict_on_batch(x) per batch), or pad the batches to one "
                "length (loopkit.utils.pad_sequences)."
            )
        whole: list[Array] = [np.concatenate(output, axis=0) for output in parts]
        return self._structure_outputs(whole)

    def _structure_outputs(self, arrays: list[Array]) -> Any:
        if self._output_keys is not None:
            return dict(zip(self._output_keys, arrays, strict=True))
        return arrays[0] if len(arrays) == 1 else arrays

    def _batch(
        self, x: Any, y: Any, sample_weight: Any, class_weight: Any, call: str
    ) -> tuple[Array, Array, Array | None]:
        if y is None:
            raise ConfigError(
                f"{call} got y=None; pass the targets of the batch: {call[:-2]}(x, y)."
            )
        if self._structured:
            return self._structured_batch(x, y, sample_weight, class_weight, call)
        if type(x) is not np.ndarray or x.dtype != self.dtype:
            x = as_array(x, self.dtype, "x", call)
        if not self.built or x.shape[1:] != self.input_shape:
            self.ensure_built(x)
            self.check_inputs(x, call)
        if y is None:
            raise ConfigError(
                f"{call} got y=None; pass the targets of the batch: {call[:-2]}(x, y)."
            )
        fast = (
            type(y) is np.ndarray
            and (y.dtype == self.dtype or self._integer_targets)
            and len(y) == len(x)
            and sample_weight is None
            and class_weight is None
        )
        if fast:  # a custom loop's common case: no conversion, no checks to repeat
            return x, y, None
        dataset = make_dataset(
            x,
            y,
            sample_weight,
            batch_size=len(x),
            shuffle=False,
            seed=0,
            dtype=self.dtype,
            steps=None,
            integer_targets=self._integer_targets,
            class_weight=class_weight,
            call=call,
        )
        assert isinstance(dataset, ArrayDataset) and dataset.y is not None
        return dataset.x, dataset.y, dataset.sample_weight

    def _structured_batch(
        self, x: Any, y: Any, sample_weight: Any, class_weight: Any, call: str
    ) -> tuple[Any, Any, Any]:
        data = self._dataset(
            x,
            y,
            sample_weight,
            batch_size=None,
            shuffle=False,
            steps=None,
            class_weight=class_weight,
            call=call,
        )
        data.batch_size = len(data)
        batch: tuple[Any, Any, Any] = next(iter(data.batches(0)))
        return batch
