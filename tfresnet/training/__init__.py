"""Training: the config, the trainer, schedules, callbacks and fine-tuning steps."""

from tfresnet.training.config import ConfigError, TrainConfig, apply_overrides
from tfresnet.training.trainer import RunResult, train

__all__ = ["ConfigError", "RunResult", "TrainConfig", "apply_overrides", "train"]
