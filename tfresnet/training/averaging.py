"""Weight averaging (`TrainConfig.ema`): which weights are validated, checkpointed and kept.

The average itself is Keras': an optimizer built with ``use_ema=True`` keeps an exponential
moving average of the trainable weights beside them and, at the end of `fit`, writes it into the
model (`finalize_variable_values`). Keras leaves the rest to the user. Here `ema_weights` chooses
the weights validation, the best checkpoint, early stopping, the kept ``model.keras`` and so the
export hold:

- ``"averaged"`` (the default): validation inside `fit`, and so every ``val_`` monitor, scores
  the average; at each epoch's end the best checkpoint, early stopping's best weights and the
  other monitors see it;
- ``"raw"``: they see the weights the optimizer trains, and the average Keras writes in at the
  end of `fit` is replaced by them again.

Either way the backup (last in the callback list) saves the raw weights with the optimizer, whose
variables hold the average: a resumed run continues both as they were. Whenever the best
checkpoint is written, the other set of the same moment is written beside it
(`RunDir.EMA_WEIGHTS`), so either can be exported (``tfresnet export RUN --weights raw``).
Only trainable weights are averaged: the batch-norm statistics are the raw weights' (precise
batch norm, `tfresnet.training.precise_bn`, re-estimates them for each set after training).

Swapping goes through `keras.callbacks.SwapEMAWeights`' test hooks, its public face. Its predict
hooks are not used: in Keras 3.15 `on_predict_end` does not swap back.
"""

from __future__ import annotations

import contextlib
import os

import keras

from tfresnet.runs import RunDir
from tfresnet.training import backups

__all__ = ["WEIGHT_SETS", "optimizer_args", "uses_average", "other_weights", "with_weight_choice",
           "with_averaged_weights", "averaged_weights", "refined_other_set"]

WEIGHT_SETS = ("averaged", "raw")  # `TrainConfig.ema_weights`' choices


def optimizer_args(config) -> dict:
    """The optimizer keywords for the config's `ema` (none without one)."""
    return {} if config.ema is None else {"use_ema": True, "ema_momentum": config.ema}


def uses_average(model) -> bool:
    """Whether `model`'s optimizer keeps an average of the weights."""
    return bool(getattr(getattr(model, "optimizer", None), "use_ema", False))


def other_weights(config) -> str | None:
    """The set the kept model does not hold (``"raw"`` or ``"averaged"``), or None without `ema`."""
    if config.ema is None:
        return None
    return next(name for name in WEIGHT_SETS if name != config.ema_weights)


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

    @contextlib.contextmanager
    def holding(self, model, which: str):
        """The block runs with `which` set (``"averaged"`` or ``"raw"``) in `model`; the other after it."""
        put, back = (self.to_average, self.to_raw) if which == "averaged" else (self.to_raw, self.to_average)
        put(model)
        try:
            yield model
        finally:
            back(model)


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


class _RawKept(keras.callbacks.Callback):
    """With ``ema_weights="raw"``: the raw weights, not the average, are in the model after `fit`.

    Keras writes the average in after the last epoch, before `on_train_end`; this callback
    keeps the raw trainable weights of each epoch's end and puts them back then. First in the
    list, so that early stopping's `on_train_end`, after it, still restores its best epoch.
    """

    def __init__(self):
        super().__init__()
        self._raw = None

    def on_epoch_end(self, epoch, logs=None):
        self._raw = [keras.ops.convert_to_numpy(v) for v in self.model.trainable_variables]

    def on_train_end(self, logs=None):
        if self._raw is not None:
            for variable, value in zip(self.model.trainable_variables, self._raw):
                variable.assign(value)


def _weights_only(model):
    """A functional model over `model`'s layers: its weights file holds no optimizer state (for
    Adam, twice the weights again), only what ``model.keras`` loads."""
    return keras.Model(model.inputs, model.outputs, name=model.name)


def _signature(path: str):
    """Changes whenever `path` is replaced (a new inode, or a new write time)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


class _OtherSetBeside(keras.callbacks.Callback):
    """Each time the best checkpoint is written, writes the other set of that moment beside it.

    Put right after the checkpoint, where the model holds the chosen set; a kill between the two
    writes leaves the previous pair's other set, which the repeated epoch writes again.

    Args:
        swap: the `_Swap` the chosen set was put in with (a fresh one for ``"raw"``).
        checkpoint: the best checkpoint (an `AtomicModelCheckpoint`; ``target`` is its file).
        path: the other set's file.
        other: ``"raw"`` or ``"averaged"``.
        saved: the model to save, given the one `fit` trains.
    """

    def __init__(self, swap: _Swap, checkpoint, path: str, other: str, saved):
        super().__init__()
        self._swap, self._checkpoint, self.path, self.other = swap, checkpoint, path, other
        self._saved = saved
        self._before = None

    def on_epoch_begin(self, epoch, logs=None):
        self._before = _signature(self._checkpoint.target)

    def on_epoch_end(self, epoch, logs=None):
        now = _signature(self._checkpoint.target)
        if now is not None and now != self._before:
            with self._swap.holding(self.model, self.other):
                backups.save_weights_atomic(_weights_only(self._saved(self.model)), self.path)


def with_weight_choice(callbacks: list, config, run_dir: str, *, first_monitor, checkpoint, backup,
                       saved=lambda model: model) -> list:
    """`callbacks` with the config's `ema_weights` in the model where each callback needs it.

    The chosen set is validated and seen by the monitors from `first_monitor` on; the other set
    is written beside the best checkpoint (`RunDir.EMA_WEIGHTS`) each time that is; the backup
    sees the raw weights. Without `ema`, `callbacks` as they are.

    Args:
        callbacks: a `make_callbacks` list (with any callbacks of the caller's inserted).
        config: the run's `TrainConfig`.
        run_dir: the run directory.
        first_monitor: the first callback that must see the chosen set at an epoch's end, and
            in validation (the best checkpoint, or one inserted before it).
        checkpoint: the best checkpoint.
        backup: the backup, after the monitors.
        saved: the model whose weights the other set's file holds, given the one `fit` trains
            (the plain model, so that its file loads into ``model.keras``).

    Raises:
        ValueError: when `backup` does not come after `first_monitor` in `callbacks`.
    """
    other = other_weights(config)
    if other is None:
        return callbacks
    swap = _Swap()
    beside = _OtherSetBeside(swap, checkpoint, os.path.join(run_dir, RunDir.EMA_WEIGHTS[other]), other, saved)
    at = callbacks.index(checkpoint) + 1
    callbacks = [*callbacks[:at], beside, *callbacks[at:]]
    if config.ema_weights == "raw":
        return [_RawKept(), *callbacks]
    return with_averaged_weights(callbacks, first_monitor=first_monitor, backup=backup, swap=swap)


def with_averaged_weights(callbacks: list, *, first_monitor, backup, swap: _Swap | None = None) -> list:
    """`callbacks` with the average swapped in from `first_monitor` up to `backup`.

    Args:
        callbacks: a `make_callbacks` list.
        first_monitor: the first callback that must see the average at an epoch's end (the
            best checkpoint).
        backup: the callback that must see the raw weights (the backup, after the monitors).
        swap: the swap to share with other callbacks that move the average (default: a new one).

    Raises:
        ValueError: when `backup` does not come after `first_monitor` in `callbacks`.
    """
    start, end = callbacks.index(first_monitor), callbacks.index(backup)
    if end < start:
        raise ValueError(f"The backup must come after the monitors. Received callbacks={callbacks!r}")
    swap = swap or _Swap()
    return [*callbacks[:start], _AverageIn(swap), *callbacks[start:end], _RawIn(swap), *callbacks[end:]]


@contextlib.contextmanager
def averaged_weights(model):
    """The block runs with the average in `model` (for a probe's `predict` during `fit`); the
    raw weights are back after it. A model without an average is left as it is."""
    if not uses_average(model):
        yield model
        return
    with _Swap().holding(model, "averaged"):
        yield model


def refined_other_set(model, run_dir: str, config, refine) -> None:
    """Runs `refine(model)` (precise batch norm) on the other set's file too, and rewrites it.

    `model` holds the kept set (already refined) before and after.
    """
    other = other_weights(config)
    path = os.path.join(run_dir, RunDir.EMA_WEIGHTS[other]) if other else None
    if path is None or not os.path.exists(path):
        return
    kept, plain = model.get_weights(), _weights_only(model)  # the file holds no optimizer state
    try:
        plain.load_weights(path)
        refine(model)
        backups.save_weights_atomic(plain, path)
    finally:
        model.set_weights(kept)
