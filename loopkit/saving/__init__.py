"""Saving and loading: model files, weights, checkpoints; atomic and background writes.

Every file is ``.npz`` with a JSON manifest, read without pickle and written
atomically, so a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

from loopkit.saving.atomic import atomic_write, check_destination, write_atomically
from loopkit.saving.background import BackgroundWriter
from loopkit.saving.checkpoints import load_checkpoint, save_checkpoint
from loopkit.saving.custom_objects import (
    custom_object_scope,
    get_custom_objects,
    register_keras_serializable,
)
from loopkit.saving.model_files import ModelSnapshot, load_model, save_model, snapshot_model

__all__ = [
    "BackgroundWriter",
    "ModelSnapshot",
    "atomic_write",
    "check_destination",
    "custom_object_scope",
    "get_custom_objects",
    "load_checkpoint",
    "load_model",
    "register_keras_serializable",
    "save_checkpoint",
    "save_model",
    "snapshot_model",
    "write_atomically",
]
