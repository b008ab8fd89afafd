"""The one place tfresnet touches Keras internals, so a Keras upgrade breaks here and only here.

Resuming a run exactly needs state Keras keeps in undocumented attributes: the epoch
`BackupAndRestore` hands to `fit`, the best value and patience count of `ModelCheckpoint`,
`EarlyStopping` and `ReduceLROnPlateau`, and the states of the random generators of dropout
layers and augmentation layers (which `save_weights` leaves out). Each access below says why it
is needed; all were checked against Keras 3.15.1 (`keras.__version__`), and
`tests/training/test_resume.py` fails if one of them stops working.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

__all__ = [
    "CHECKED_KERAS_VERSION",
    "set_initial_epoch",
    "clear_initial_epoch",
    "callback_state",
    "restore_callback_state",
    "early_stopping_best_weights",
    "set_early_stopping_best_weights",
    "seed_generator_states",
    "random_state",
    "restore_random_state",
    "metric_direction",
    "multiworker_fit",
    "optimizer_variable",
    "uses_weight_decay",
]

CHECKED_KERAS_VERSION = "3.15.1"

# Callback attributes that hold a monitor's progress (Keras 3.15.1: set in `__init__` or
# `on_train_begin`, read in `on_epoch_end`; none is part of the documented API).
_CALLBACK_FIELDS = {
    keras.callbacks.ModelCheckpoint: ("best",),
    keras.callbacks.EarlyStopping: ("best", "wait", "best_epoch", "stopped_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("best", "wait", "cooldown_counter"),
}


def set_initial_epoch(model: keras.Model, epoch: int) -> None:
    """Makes the model's next `fit` start at `epoch`, whatever its ``initial_epoch`` argument.

    Keras 3.15.1's `fit` starts at ``model._initial_epoch or initial_epoch``; its own
    `BackupAndRestore` sets that attribute after loading a backup, and so does ours.
    """
    model._initial_epoch = int(epoch)


def clear_initial_epoch(model: keras.Model) -> None:
    """Forgets an epoch a previous `fit`'s backup set.

    Keras 3.15.1 never resets ``model._initial_epoch``: after a phase resumed from a backup, the
    next phase's `fit` would start at that backup's epoch instead of its own first epoch.
    """
    model._initial_epoch = None


def _fields(callback) -> tuple[str, ...]:
    for kind, fields in _CALLBACK_FIELDS.items():
        if isinstance(callback, kind):
            return fields
    return ()


def _plain(value):
    if value is None:
        return None
    return float(np.asarray(value)) if np.ndim(value) == 0 else value


def callback_state(callback) -> dict:
    """The progress of a monitoring callback (best value, patience count) as JSON-ready values.

    Empty for callbacks that keep none. Early stopping's best weights are separate
    (`early_stopping_best_weights`): they are arrays, not JSON.
    """
    state = {}
    for field in _fields(callback):
        value = getattr(callback, field, None)
        state[field] = _plain(value) if field == "best" else (None if value is None else int(value))
    return state


def restore_callback_state(callback, state: dict) -> None:
    """Sets what `callback_state` returned on a fresh callback (after its `on_train_begin`)."""
    for field in _fields(callback):
        if field in state:
            setattr(callback, field, state[field])


def early_stopping_best_weights(callback) -> list | None:
    """EarlyStopping's weights of its best epoch (Keras 3.15.1: ``best_weights``), or None."""
    if not isinstance(callback, keras.callbacks.EarlyStopping):
        return None
    return getattr(callback, "best_weights", None)


def set_early_stopping_best_weights(callback, weights: list) -> None:
    """Gives a resumed EarlyStopping the best weights it had, which it restores at the end."""
    callback.best_weights = list(weights)


def seed_generator_states(obj) -> list:
    """The state variables of the `keras.random.SeedGenerator`s a model or layer holds, in order.

    Keras 3.15.1 lists them in ``variables`` (not in ``weights``, so `save_weights` leaves them
    out) under the name ``seed_generator_state``; dropout masks and augmentation draws come from
    them.
    """
    return [v for v in obj.variables if v.path.rsplit("/", 1)[-1] == "seed_generator_state"]


def random_state(model: keras.Model) -> list:
    """The model's random-generator states, JSON-ready, for `restore_random_state`."""
    return [np.asarray(v.numpy()).tolist() for v in seed_generator_states(model)]


def restore_random_state(model: keras.Model, state: list | None) -> bool:
    """Sets the random-generator states `random_state` saved; False if they do not fit the model."""
    variables = seed_generator_states(model)
    if state is None or len(state) != len(variables):
        return False
    for variable, value in zip(variables, state):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    return True


def metric_direction(metric: keras.metrics.Metric) -> str | None:
    """``"up"`` or ``"down"``: the way a metric improves, which Keras' monitors read in
    ``mode="auto"`` (Keras 3.15.1: the private ``Metric._direction``), or None if unknown."""
    return getattr(metric, "_direction", None)


def optimizer_variable(optimizer, variable):
    """The model variable (a `keras.Variable`, with its ``path``) an optimizer's `update_step` got.

    Keras 3.15.1's TensorFlow optimizer calls ``update_step`` with the `tf.Variable` inside
    (``_backend_update_step`` unwraps ``.value``), which has no path; the optimizer's own index
    (``_get_variable_index``, as Adam's ``update_step`` uses it) leads back to the Keras variable.
    """
    return optimizer._trainable_variables[optimizer._get_variable_index(variable)]


def uses_weight_decay(optimizer, variable) -> bool:
    """Whether `optimizer` decays `variable` (Keras 3.15.1: ``_use_weight_decay``, which honours
    ``exclude_from_weight_decay``)."""
    return optimizer._use_weight_decay(variable)


@contextlib.contextmanager
def multiworker_fit(model: keras.Model, dataset):
    """The block in which a compiled model can `fit` under MultiWorkerMirroredStrategy.

    Builds the model's loss, metrics and optimizer from `dataset`'s element spec and makes `fit`
    skip its own build: Keras 3.15.1's TensorFlow `fit` under a strategy builds them from the
    first distributed batch, averaged with `strategy.reduce` (`Trainer._maybe_symbolic_build`),
    and MultiWorkerMirroredStrategy reduces single tensors only, not the (images, labels) pair,
    so with 2+ workers `fit` fails with "Attempt to convert a value (PerReplica:...". The
    spec's shapes and dtypes are all the build needs. Enter it after each `compile`, inside the
    strategy's scope, around the `fit` call.

    Inside the block only, Keras' `reduce_per_replica` averages a step's logs across workers
    with ``axis=None``: Keras 3.15.1 calls ``strategy.reduce("MEAN", value, axis=0)``, which
    fails on the scalar loss and metrics ("Invalid reduction dimension 0 for input with 0
    dimensions"). The original is put back when the block ends.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    model._symbolic_build(data_batch=dataset.element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original
