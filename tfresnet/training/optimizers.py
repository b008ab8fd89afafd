"""The optimizers a config names, with gradient accumulation and a learning rate per variable.

- `OPTIMIZERS`: ``sgd``, ``adam``, ``adamw`` and ``rmsprop`` as the config sets them, each keeping
  an average of the weights where the config's `ema` asks (`averaging.optimizer_args`).
- ``accumulate=K`` is Keras' own ``gradient_accumulation_steps``: K batches' gradients are averaged
  into one update, the update of a K-times larger batch. Keras counts ``optimizer.iterations`` in
  updates but evaluates a schedule at every batch, so `learning_rate` builds the schedule in
  updates and `UpdateSchedule` reads it once per update; Keras' average moves at every batch, so
  its momentum is taken to the 1/K-th power (the same decay per update).
- ``layer_decay`` and ``lr_mult`` (`tfresnet.training.layer_rates`) give each variable its own
  rate. Scaling the gradients would not do it: Adam and RMSprop divide by the gradient's own
  scale, so their steps would not change. The `LAYER_RATE_OPTIMIZERS` are Keras' classes with
  ``update_step(gradient, variable, learning_rate)`` called at the variable's own rate, decoupled
  weight decay included (a weight with rate 0 does not move at all). They save in ``.keras`` files
  with their multipliers, and resume from backups like Keras' own (the same variables).
"""

from __future__ import annotations

import keras
from keras import ops

from tfresnet.training.config import ConfigError
from tfresnet.training.schedules import make_schedule

__all__ = ["OPTIMIZERS", "LAYER_RATE_OPTIMIZERS", "make_optimizer", "learning_rate", "UpdateSchedule",
           "LayerRateSGD", "LayerRateAdam", "LayerRateAdamW", "LayerRateRMSprop"]


@keras.saving.register_keras_serializable(package="tfresnet")
class UpdateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule written in updates, read by an optimizer that accumulates `every` batches.

    Keras 3 evaluates an accumulating optimizer's schedule at every batch
    (``optimizer._iterations``); the update that ends batch ``i`` gets ``schedule(i // every)``,
    the rate the K-times larger batch's update ``i // every`` gets.

    Args:
        schedule: a `LearningRateSchedule` over the run's updates.
        every: batches per update (``TrainConfig.accumulate``).
    """

    def __init__(self, schedule, every: int):
        self.schedule = schedule
        self.every = int(every)

    def __call__(self, step):
        return self.schedule(ops.floor_divide(step, self.every))

    def get_config(self):
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule), "every": self.every}

    @classmethod
    def from_config(cls, config):
        return cls(keras.optimizers.schedules.deserialize(config["schedule"]), config["every"])


def learning_rate(config, steps_per_epoch: int, *, epochs: int, peak: float):
    """The config's rate: `peak` (for ReduceLROnPlateau, which lowers a float) or its schedule.

    The schedule spans the whole run in updates: ``steps_per_epoch / accumulate`` an epoch.

    Raises:
        ConfigError: when the phase has fewer batches than one update takes.
    """
    every = config.accumulate
    if every > epochs * steps_per_epoch:
        raise ConfigError(f"accumulate={every} batches make one update, and this phase has only "
                          f"{epochs * steps_per_epoch} ({epochs} epochs of {steps_per_epoch}): it would never update.")
    if config.reduce_lr_on_plateau:
        return peak
    schedule = make_schedule(config, steps_per_epoch / every, epochs=epochs, peak=peak)
    return schedule if every == 1 else UpdateSchedule(schedule, every)


class _PerVariableRate:
    """Mixin: `update_step` at the variable's own rate (`rate_multipliers`, by variable path).

    The decoupled weight decay Keras applies to every variable at the global rate before the
    update steps is moved into each variable's own update step, at its own rate: Keras' decay is
    switched off (``weight_decay`` None on the instance; `get_config` still saves the value).
    """

    def __init__(self, *args, rate_multipliers: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rate_multipliers = {str(k): float(v) for k, v in (rate_multipliers or {}).items()}
        self.decoupled_weight_decay, self.weight_decay = self.weight_decay, None

    def rate_multiplier(self, variable) -> float:
        """The multiplier of a variable's rate (1 where `rate_multipliers` has no entry)."""
        from tfresnet import keras_compat

        return self.rate_multipliers.get(keras_compat.optimizer_variable(self, variable).path, 1.0)

    def update_step(self, gradient, variable, learning_rate):
        """Keras' update at ``learning_rate x rate_multiplier(variable)``, its weight decay first."""
        from tfresnet import keras_compat

        multiplier = self.rate_multiplier(variable)
        rate = ops.cast(learning_rate, variable.dtype)
        if multiplier != 1.0:
            rate = ops.multiply(rate, multiplier)
        decay = self.decoupled_weight_decay
        if decay is not None and keras_compat.uses_weight_decay(self, variable):
            # Keras' own formula (BaseOptimizer._apply_weight_decay), at this variable's rate.
            self.assign(variable, variable - variable * ops.cast(decay, variable.dtype) * rate)
        super().update_step(gradient, variable, rate)

    def get_config(self):
        config = super().get_config()
        config.update(weight_decay=self.decoupled_weight_decay, rate_multipliers=dict(self.rate_multipliers))
        return config


@keras.saving.register_keras_serializable(package="tfresnet")
class LayerRateSGD(_PerVariableRate, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with a rate per variable (``rate_multipliers={path: factor}``)."""


@keras.saving.register_keras_serializable(package="tfresnet")
class LayerRateAdam(_PerVariableRate, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with a rate per variable (``rate_multipliers={path: factor}``)."""


@keras.saving.register_keras_serializable(package="tfresnet")
class LayerRateAdamW(_PerVariableRate, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with a rate per variable (``rate_multipliers={path: factor}``)."""


@keras.saving.register_keras_serializable(package="tfresnet")
class LayerRateRMSprop(_PerVariableRate, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with a rate per variable (``rate_multipliers={path: factor}``)."""


# name -> (Keras' class, its keywords from the config)
_KERAS_OPTIMIZERS = {
    "sgd": (keras.optimizers.SGD, lambda c: {"momentum": c.momentum, "nesterov": True,
                                             "weight_decay": c.weight_decay or None}),
    "adam": (keras.optimizers.Adam, lambda c: {"beta_1": c.adam_beta_1, "beta_2": c.adam_beta_2,
                                               "weight_decay": c.weight_decay or None}),
    "adamw": (keras.optimizers.AdamW, lambda c: {"beta_1": c.adam_beta_1, "beta_2": c.adam_beta_2,
                                                 "weight_decay": c.weight_decay}),
    "rmsprop": (keras.optimizers.RMSprop, lambda c: {"momentum": c.momentum,
                                                     "weight_decay": c.weight_decay or None}),
}
# name -> the class with a rate per variable
LAYER_RATE_OPTIMIZERS = {"sgd": LayerRateSGD, "adam": LayerRateAdam, "adamw": LayerRateAdamW,
                         "rmsprop": LayerRateRMSprop}


def _accumulation_args(config) -> dict:
    every = config.accumulate
    if every == 1:
        return {}
    args = {"gradient_accumulation_steps": every}
    if config.ema is not None:
        # Keras 3.15 moves the average at every batch, not every update: the K moves of one
        # update period then decay it by ema, as one move per update would.
        args["ema_momentum"] = config.ema ** (1.0 / every)
    return args


def make_optimizer(config, lr, *, rate_multipliers: dict | None = None, name: str | None = None):
    """The config's optimizer at rate `lr` (a float or a schedule).

    Args:
        config: a `TrainConfig` (optimizer, momentum, betas, weight decay, ema, accumulate).
        lr: the rate, or a schedule (`learning_rate`).
        rate_multipliers: variable path -> factor of its rate (`layer_rates.LayerRates`); with
            any, the optimizer is the `LAYER_RATE_OPTIMIZERS` class.
        name: the optimizer's name, if not the config's `optimizer`.
    """
    # Here, not at the top: this module registers Keras classes when Keras loads, and so imports
    # nothing that reaches outside the training package at import time (`tfresnet._startup`).
    from tfresnet.training import averaging

    name = config.optimizer if name is None else name
    base, args = _KERAS_OPTIMIZERS[name]
    kwargs = {**args(config), **averaging.optimizer_args(config), **_accumulation_args(config)}
    if rate_multipliers:
        return LAYER_RATE_OPTIMIZERS[name](lr, rate_multipliers=rate_multipliers, **kwargs)
    return base(lr, **kwargs)


def _factory(name: str):
    return lambda config, lr, rate_multipliers=None: make_optimizer(config, lr, rate_multipliers=rate_multipliers,
                                                                    name=name)


# An optimizer per name, called as ``OPTIMIZERS[name](config, lr)`` (or with ``rate_multipliers=``).
OPTIMIZERS = {name: _factory(name) for name in _KERAS_OPTIMIZERS}
