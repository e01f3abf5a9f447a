"""Keras's ``keras.models`` namespace: the model classes, cloning and loading."""

from __future__ import annotations

from loopkit._training.cloning import clone_model, model_from_json
from loopkit._training.model import Model
from loopkit._training.sequential import Sequential
from loopkit.saving.model_files import load_model, save_model

__all__ = [
    "Model",
    "Sequential",
    "clone_model",
    "load_model",
    "model_from_json",
    "save_model",
]
