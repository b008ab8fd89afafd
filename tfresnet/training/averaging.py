"""Weight averaging (`TrainConfig.ema`): what is validated, checkpointed and kept is the average.

The average itself is Keras': an optimizer built with ``use_ema=True`` keeps an exponential
moving average of the trainable weights beside them and, at the end of `fit`, writes it into the
model (`finalize_variable_values`). Keras leaves the rest to the user; here:

- validation inside `fit`, and so every ``val_`` monitor, scores the averaged weights;
- at each epoch's end the best checkpoint, early stopping's best weights and the other monitors
  see the averaged weights, while the backup (last in the callback list) saves the raw ones with
  the optimizer, whose variables hold the average: a resumed run continues both as they were.

Swapping goes through `keras.callbacks.SwapEMAWeights`' test hooks, its public face. Its predict
hooks are not used: in Keras 3.15 `on_predict_end` does not swap back.
"""

from __future__ import annotations

import contextlib

import keras

__all__ = ["optimizer_args", "uses_average", "with_averaged_weights", "averaged_weights"]


def optimizer_args(config) -> dict:
    """The optimizer keywords for the config's `ema` (none without one)."""
    return {} if config.ema is None else {"use_ema": True, "ema_momentum": config.ema}


def uses_average(model) -> bool:
    """Whether `model`'s optimizer keeps an average of the weights."""
    return bool(getattr(getattr(model, "optimizer", None), "use_ema", False))


class _Swap:
    """One `SwapEMAWeights` shared by the callbacks that move the average in and out."""

    def __init__(self):
        self.swap = keras.callbacks.SwapEMAWeights()

    def to_average(self, model) -> None:
        self.swap.set_model(model)
        self.swap.on_test_begin()  # a no-op when the average is already in the model

    def to_raw(self, model) -> None:
        self.swap.set_model(model)
        self.swap.on_test_end()


class _AverageIn(keras.callbacks.Callback):
    """Puts the average in the model for validation, and at the end of each epoch."""

    def __init__(self, swap: _Swap):
        super().__init__()
        self._swap = swap

    def on_test_begin(self, logs=None):
        self._swap.to_average(self.model)

    def on_test_end(self, logs=None):
        self._swap.to_raw(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self._swap.to_average(self.model)


class _RawIn(keras.callbacks.Callback):
    """Puts the raw weights back before the backup, so training continues from them."""

    def __init__(self, swap: _Swap):
        super().__init__()
        self._swap = swap

    def on_epoch_end(self, epoch, logs=None):
        self._swap.to_raw(self.model)


def with_averaged_weights(callbacks: list, *, first_monitor, backup) -> list:
    """`callbacks` with the average swapped in from `first_monitor` up to `backup`.

    Args:
        callbacks: a `make_callbacks` list.
        first_monitor: the first callback that must see the average at an epoch's end (the
            best checkpoint).
        backup: the callback that must see the raw weights (the backup, after the monitors).

    Raises:
        ValueError: when `backup` does not come after `first_monitor` in `callbacks`.
    """
    start, end = callbacks.index(first_monitor), callbacks.index(backup)
    if end < start:
        raise ValueError(f"The backup must come after the monitors. Received callbacks={callbacks!r}")
    swap = _Swap()
    return [*callbacks[:start], _AverageIn(swap), *callbacks[start:end], _RawIn(swap), *callbacks[end:]]


@contextlib.contextmanager
def averaged_weights(model):
    """The block runs with the average in `model` (for a probe's `predict` during `fit`); the
    raw weights are back after it. A model without an average is left as it is."""
    if not uses_average(model):
        yield model
        return
    swap = _Swap()
    swap.to_average(model)
    try:
        yield model
    finally:
        swap.to_raw(model)
