"""loopkit's built-in plugins, one module each, using only loopkit's public API.

Names resolve lazily (``loopkit.plugins.TensorBoard`` imports tensorboardX only when
first used), so importing this package costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DataParallel",
    "EMA",
    "BackupAndRestore",
    "CSVLogger",
    "EarlyStopping",
    "EpochLines",
    "GradientAccumulation",
    "GradientClipping",
    "History",
    "LambdaPlugin",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]

_MODULES = {
    "BackupAndRestore": "checkpointing",
    "CSVLogger": "csv_logger",
    "DataParallel": "data_parallel",
    "EMA": "ema",
    "EarlyStopping": "early_stopping",
    "EpochLines": "progress",
    "GradientAccumulation": "grad_accumulation",
    "GradientClipping": "grad_clipping",
    "LambdaPlugin": "lambda_plugin",
    "LearningRateScheduler": "lr_schedules",
    "ModelCheckpoint": "checkpointing",
    "ProgressBar": "progress",
    "ReduceLROnPlateau": "lr_schedules",
    "TensorBoard": "tensorboard",
    "TerminateOnNaN": "terminate_on_nan",
}


def __getattr__(name: str) -> Any:
    if name == "History":
        from loopkit import History

        return History
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'loopkit.plugins' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"loopkit.plugins.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
