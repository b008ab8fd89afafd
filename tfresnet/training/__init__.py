"""Training: the config, the trainer, schedules, callbacks and fine-tuning steps.

The names below are imported on first use, so that `tfresnet.training.config` (no Keras) and
`tfresnet.training.schedules` (Keras only) import without the trainer: `import tfresnet` registers
the schedule with Keras by importing that one module when Keras loads (`tfresnet._startup`).
"""

from tfresnet._lazy import lazy_attributes

__all__ = ["ConfigError", "RunResult", "TrainConfig", "apply_overrides", "train"]

# Public name -> the submodule that defines it (PEP 562 lazy attributes).
_LAZY = {
    "ConfigError": "config",
    "TrainConfig": "config",
    "apply_overrides": "config",
    "RunResult": "session",
    "train": "trainer",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
