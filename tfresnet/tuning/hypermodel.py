"""`ConfigHyperModel`: the KerasTuner HyperModel of a recipe: its config plus a search space.

It defines no model. `build(hp)` maps the trial's values onto a copy of the recipe's
`TrainConfig` (`tfresnet.tuning.space.config_for`) and calls the trainer's own `build_model`
and `compile_model`; `fit(hp, model, **kwargs)` loads the data the trial asks for (its batch
size and augmentation) and calls `model.fit(..., **kwargs)`, so the callbacks KerasTuner passes
in (best-epoch checkpoint, TensorBoard + HParams) reach Keras -- the pattern of keras-io's
``guides/keras_tuner/getting_started.py``.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import keras
import keras_tuner as kt

from tfresnet.training import finetune
from tfresnet.training.callbacks import StopOnNaN
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.determinism import EpochSync
from tfresnet.training.trainer import (
    build_model,
    compile_model,
    load_data,
    one_hot_labels,
    smoke_config,
    steps_per_epoch_of,
)
from tfresnet.tuning.space import config_for, declare

__all__ = ["ConfigHyperModel", "TrialData", "SMOKE_EVAL_BATCHES"]

SMOKE_EVAL_BATCHES = 3  # validation/test batches a smoke trial evaluates, as in the trainer's smoke runs

# The config keys that decide what `load_data` returns (plus the per-epoch cap): trials that agree
# on them share one loaded dataset.
_DATA_KEYS = ("data", "data_dir", "data_args", "image_size", "resize_mode", "augment", "validation_split",
              "cache", "batch_size", "seed", "smoke", "steps_per_epoch", "deterministic")


@dataclasses.dataclass
class TrialData:
    """A loaded dataset bundle and its splits as a trial feeds them to Keras (one-hot labels,
    training capped at `steps_per_epoch` batches, evaluation capped in smoke runs)."""

    bundle: Any
    train: Any
    validation: Any
    test: Any
    steps_per_epoch: int


def _take(dataset, batches: int | None):
    return dataset if dataset is None or batches is None else dataset.take(batches)


class ConfigHyperModel(kt.HyperModel):
    """A search over a `TrainConfig`: models from the registry, data from `tfresnet.data`.

    Args:
        config: the recipe's config; its `tune` section is the search space (validated).
        data_loader: ``loader(config) -> DatasetBundle``; the trainer's `load_data` by default.
            Tests pass their own to inject data.
        max_cached: loaded datasets kept in memory at once, least recently used dropped first
            (a search over 3 batch sizes x 2 augmentations loads 6 pipelines).
    """

    def __init__(self, config: TrainConfig, *, data_loader: Callable | None = None, max_cached: int = 4):
        super().__init__(name=f"tfresnet-{config.model}")
        self.config = config
        self.data_loader = data_loader or load_data
        self.max_cached = max_cached
        self._cache: collections.OrderedDict[str, TrialData] = collections.OrderedDict()
        # Facts about the model the last `build` made, for the results table.
        self.last_built: dict[str, Any] = {}

    def declare_hyperparameters(self, hp) -> None:
        """Declares the whole space up front, so the tuner need not build a model to find it."""
        declare(hp, self.config)

    def trial_config(self, hp) -> TrainConfig:
        """The training config of the trial whose values `hp` holds (smoke-shrunk if asked).

        Raises:
            ConfigError: for a combination of values that cannot train (the trial fails with it).
        """
        return smoke_config(config_for(self.config, declare(hp, self.config))).validate()

    def data(self, config: TrainConfig) -> TrialData:
        """The trial's data, loaded once per distinct data setting in this process.

        Raises:
            ConfigError: if the dataset has no validation split to score trials on.
        """
        key = json.dumps({k: getattr(config, k) for k in _DATA_KEYS}, sort_keys=True, default=str)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        bundle = self.data_loader(config)
        if bundle.validation is None:
            raise ConfigError(
                f"Tuning scores trials on a validation split and {config.data!r} has none here; "
                f"set validation_split > 0. ({bundle.absent.get('validation', '')})"
            )
        limit = SMOKE_EVAL_BATCHES if config.smoke else None
        entry = TrialData(
            bundle=bundle,
            train=_take(one_hot_labels(bundle.train, bundle.num_classes), config.steps_per_epoch),
            validation=_take(one_hot_labels(bundle.validation, bundle.num_classes), limit),
            test=None if bundle.test is None else _take(one_hot_labels(bundle.test, bundle.num_classes), limit),
            steps_per_epoch=steps_per_epoch_of(bundle, config),
        )
        self._cache[key] = entry
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return entry

    def build(self, hp) -> keras.Model:
        """Builds and compiles the trial's registry model (regularisation and input scaling inside)."""
        config = self.trial_config(hp)
        data = self.data(config)
        # Global state that the trainer sets per run; a trial's model is built under its own.
        keras.mixed_precision.set_global_policy(config.mixed_precision or "float32")
        model = build_model(config, data.bundle.input_shape, data.bundle.num_classes)
        if config.freeze_backbone:
            head = finetune.head_layer_names(
                model, config.model, **{**config.model_args, "input_shape": tuple(data.bundle.input_shape)})
            finetune.freeze_backbone(model, head)
        compile_model(model, config, data.steps_per_epoch, epochs=config.epochs, peak=config.lr)
        self.last_built = {"parameters": int(model.count_params())}
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Trains one trial; `kwargs` (the tuner's callbacks, Hyperband's epochs) go to `model.fit`.

        Args:
            hp: the trial's hyperparameters.
            model: the model `build(hp)` returned.
            *args: data for `model.fit`; by default the trial's own training split.
            **kwargs: passed on to `model.fit` (``callbacks``, ``epochs``, ``initial_epoch``, ...).

        Returns:
            The `History`, from which KerasTuner takes the best epoch's objective.

        Raises:
            NaNLossError: when the loss becomes NaN (the trial is recorded as failed).
        """
        config = self.trial_config(hp)
        data = self.data(config)
        epochs = kwargs.pop("epochs", config.epochs)
        span = epochs - kwargs.get("initial_epoch", 0)
        if span != config.epochs:
            # Hyperband sets each round's epochs: the learning-rate schedule spans what is run.
            compile_model(model, config, data.steps_per_epoch, epochs=span, peak=config.lr)
        # EpochSync: epoch k of every trial reads epoch k's order, however many passes earlier
        # trials made over this cached dataset.
        callbacks = [StopOnNaN(), EpochSync(data.bundle), *self._config_callbacks(config),
                     *kwargs.pop("callbacks", [])]
        if not args:
            args = (data.train,)
            kwargs.setdefault("validation_data", data.validation)
        kwargs.setdefault("verbose", config.verbose)
        kwargs.setdefault("shuffle", False)  # the tf.data pipeline shuffles
        return model.fit(*args, epochs=epochs, callbacks=callbacks, **kwargs)

    @staticmethod
    def _config_callbacks(config: TrainConfig) -> list:
        # The trainer's early stopping and plateau options; no best-weights restore, since the
        # tuner's own checkpoint keeps the best epoch.
        mode = "min" if "loss" in config.monitor else "max"
        callbacks = []
        if config.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=config.monitor, mode=mode, patience=config.early_stopping))
        if config.reduce_lr_on_plateau:
            callbacks.append(keras.callbacks.ReduceLROnPlateau(
                monitor=config.monitor, mode=mode, patience=config.reduce_lr_on_plateau, factor=0.2))
        return callbacks
