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
from collections.abc import Callable
from typing import Any

import keras
import keras_tuner as kt

from tfresnet.training.callbacks import StopOnNaN, plateau_callbacks
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.determinism import EpochSync
from tfresnet.training.session import Session, load_data, precision_policy, smoke_config
from tfresnet.tuning.space import config_for, declare

__all__ = ["ConfigHyperModel"]


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
        self._cache: collections.OrderedDict[str, Session] = collections.OrderedDict()
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

    def data(self, config: TrainConfig) -> Session:
        """The trial's training session, one per distinct data setting in this process.

        Raises:
            ConfigError: if the dataset has no validation split to score trials on.
        """
        key = config.data_key()
        if key in self._cache:
            self._cache.move_to_end(key)
            return dataclasses.replace(self._cache[key], config=config)
        session = Session.open(config, data_loader=self.data_loader)
        if session.validation is None:
            raise ConfigError(
                f"Tuning scores trials on a validation split and {config.data!r} has none here; "
                f"set validation_split > 0. ({session.data.absent.get('validation', '')})"
            )
        self._cache[key] = session
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return session

    def build(self, hp) -> keras.Model:
        """Builds and compiles the trial's registry model (regularisation and input scaling inside)."""
        session = self.data(self.trial_config(hp))
        # A trial's model is built and compiled under its own precision policy, restored after.
        with precision_policy(session.config):
            model = session.build()
            session.compile(model)
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
        session = self.data(self.trial_config(hp))
        config = session.config
        epochs = kwargs.pop("epochs", config.epochs)
        span = epochs - kwargs.get("initial_epoch", 0)
        if span != config.epochs:
            # Hyperband sets each round's epochs: the learning-rate schedule spans what is run.
            session.compile(model, epochs=span)
        # EpochSync: epoch k of every trial reads epoch k's order, however many passes earlier
        # trials made over this cached dataset. No best-weights restore in early stopping: the
        # tuner's own checkpoint keeps the best epoch.
        callbacks = [StopOnNaN(), EpochSync(session.data),
                     *plateau_callbacks(config, config.monitor, restore_best_weights=False),
                     *kwargs.pop("callbacks", [])]
        if not args:
            args = (session.train,)
            kwargs.setdefault("validation_data", session.validation)
        kwargs.setdefault("verbose", config.verbose)
        kwargs.setdefault("shuffle", False)  # the tf.data pipeline shuffles
        return model.fit(*args, epochs=epochs, callbacks=callbacks, **kwargs)
