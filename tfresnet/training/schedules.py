"""Learning-rate schedules, serialisable so `.keras` checkpoints that hold the optimizer load with
safe_mode=True.

Kinds (`TrainConfig.schedule`): ``constant``, ``step`` (multiply by `gamma` at each boundary),
``cosine`` (Loshchilov & Hutter 2017, no restarts), ``onecycle`` (Smith & Topin 2018: rise
from peak/25 to the peak over the warm-up, default 30% of training, then cosine down to
peak/25e4) and ``triangular`` (airbench's shape: the same rise, then linear down to 0 at the
last step). Each may start with a linear warm-up from 0 (Goyal et al. 2017), which large
batches need. `make_schedule` uses Keras' schedules where they have the shape; `LearningRate` is only
what they lack.
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["LearningRate", "make_schedule"]

_ONECYCLE_DIV = 25.0          # peak / initial lr (Smith & Topin's default)
_ONECYCLE_FINAL_DIV = 1e4     # initial / final lr
_ONECYCLE_PCT_START = 0.3


@keras.saving.register_keras_serializable(package="tfresnet")
class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate at an optimizer step: the kinds Keras has no schedule for.

    Args:
        kind: ``"constant"``, ``"step"`` (with or without a warm-up), ``"onecycle"`` or
            ``"triangular"``; cosine is
            `keras.optimizers.schedules.CosineDecay`.
        peak: the learning rate after warm-up.
        total_steps: optimizer steps in the whole run.
        warmup_steps: linear warm-up length in steps.
        boundaries: for ``"step"``, the steps at which the rate is multiplied by `gamma`.
        gamma: the ``"step"`` factor.
    """

    def __init__(self, kind, peak, total_steps, warmup_steps=0, boundaries=(), gamma=0.1):
        if kind not in ("constant", "step", "onecycle", "triangular"):
            raise ValueError(f"Unknown schedule kind (cosine is keras.optimizers.schedules.CosineDecay). "
                             f"Received kind={kind!r}")
        self.kind = kind
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = int(warmup_steps)
        self.boundaries = [int(b) for b in boundaries]
        self.gamma = float(gamma)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak
        total = float(self.total_steps)
        if self.kind in ("onecycle", "triangular"):
            rise = float(self.warmup_steps or max(1, int(_ONECYCLE_PCT_START * total)))
            low = peak / _ONECYCLE_DIV
            up = low + (peak - low) * ops.minimum(step / rise, 1.0)
            t = ops.clip((step - rise) / max(total - rise, 1.0), 0.0, 1.0)
            if self.kind == "triangular":
                return ops.where(step < rise, up, peak * (1.0 - t))
            final = low / _ONECYCLE_FINAL_DIV
            down = final + (peak - final) * 0.5 * (1.0 + ops.cos(math.pi * t))
            return ops.where(step < rise, up, down)
        warm = float(self.warmup_steps)
        if self.kind == "constant":
            rate = ops.full_like(step, peak)
        else:  # step
            passed = sum(ops.cast(step >= b, "float32") for b in self.boundaries) if self.boundaries else 0.0
            rate = peak * ops.power(self.gamma, passed)
        if self.warmup_steps:
            rate = ops.where(step < warm, peak * step / warm, rate)
        return rate

    def get_config(self):
        return {
            "kind": self.kind, "peak": self.peak, "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps, "boundaries": self.boundaries, "gamma": self.gamma,
        }


def make_schedule(config, steps_per_epoch: int, *, epochs: int | None = None, peak: float | None = None):
    """The schedule a `TrainConfig` asks for, in optimizer steps.

    Keras' own where it has the shape: `CosineDecay` (with its linear warm-up) and
    `PiecewiseConstantDecay` (step, without a warm-up). `LearningRate` for what Keras lacks:
    one-cycle, a constant rate, and a warm-up before a step schedule.
    """
    epochs = config.epochs if epochs is None else epochs
    peak = config.lr if peak is None else peak
    total = max(epochs * steps_per_epoch, 1)
    warmup = round(config.warmup_epochs * steps_per_epoch)
    boundaries = sorted(int(e * steps_per_epoch) for e in config.step_epochs)
    schedules = keras.optimizers.schedules
    if config.schedule == "cosine" and warmup:
        return schedules.CosineDecay(0.0, decay_steps=max(total - warmup, 1), warmup_target=peak,
                                     warmup_steps=warmup)
    if config.schedule == "cosine":
        return schedules.CosineDecay(peak, decay_steps=total)
    if config.schedule == "step" and boundaries and not warmup:
        # Keras changes the rate after a boundary step, tfresnet (and the papers' "at epoch 30") at it.
        return schedules.PiecewiseConstantDecay([b - 1 for b in boundaries],
                                                [peak * config.step_gamma**i for i in range(len(boundaries) + 1)])
    return LearningRate(kind=config.schedule, peak=peak, total_steps=total, warmup_steps=warmup,
                        boundaries=boundaries, gamma=config.step_gamma)
