"""Losses by output layer (`TrainConfig.output`), serialisable so `.keras` checkpoints that hold
them load with safe_mode=True.

- ``softmax``: softmax outputs, categorical cross-entropy (log-likelihood).
- ``sigmoid``: one sigmoid unit per class, binary cross-entropy summed over the units: the
  cross-entropy cost of Nielsen's network2.py, which chapters 3 and 5 of his book train with.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["OUTPUTS", "METRICS", "SummedBinaryCrossentropy", "make_loss", "make_metrics"]


@keras.saving.register_keras_serializable(package="tfresnet")
class SummedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy of one-hot labels and sigmoid outputs, summed over the classes.

    Keras' `BinaryCrossentropy` averages over the classes instead, which would make each
    gradient ``1 / num_classes`` of network2's, so eta and L2 would no longer be the book's.

    Args:
        label_smoothing: pulls the 0/1 targets towards 0.5 by this fraction.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "summed_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        if self.label_smoothing:
            y_true = y_true * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        # Probabilities are clipped to [1e-7, 1 - 1e-7] first, as Keras' own cross-entropies do.
        return ops.sum(ops.binary_crossentropy(y_true, y_pred), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


# output layer (also the name of the classifier's Keras activation) -> its loss class
OUTPUTS = {
    "softmax": keras.losses.CategoricalCrossentropy,
    "sigmoid": SummedBinaryCrossentropy,
}


def make_loss(output: str, label_smoothing: float = 0.0) -> keras.losses.Loss:
    """The loss that goes with an `OUTPUTS` output layer."""
    return OUTPUTS[output](label_smoothing=label_smoothing)


# The metrics every run compiles, by name: the names a `monitor` may watch (and ``val_`` ones).
METRICS = {"accuracy": keras.metrics.CategoricalAccuracy}


def make_metrics() -> list[keras.metrics.Metric]:
    """New instances of `METRICS`, for one `compile`."""
    return [kind(name=name) for name, kind in METRICS.items()]
