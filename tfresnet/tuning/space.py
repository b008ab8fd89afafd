"""The search space as data: a recipe's `tune` section turned into KerasTuner hyperparameters.

A `TrainConfig.tune` entry maps a config key to a list of choices (`hp.Choice`) or to a range
``{"min", "max", "step", "sampling"}`` (`hp.Int` for integer keys and integer bounds, `hp.Float`
otherwise); ``model_args.NAME`` keys tune a family argument. `TrainConfig.validate` has already
checked the entries; this module only declares them and maps a trial's values back onto a copy
of the config, so a trial is an ordinary training config that the trainer's pieces run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfresnet.training.config import ConfigError, TrainConfig, is_integer_key

__all__ = ["active_space", "declare", "trial_values", "config_for", "check_space_for_tuner"]

# Values KerasTuner adds itself (Hyperband's epoch budget and warm start); not config keys.
TUNER_PREFIX = "tuner/"


def active_space(config: TrainConfig) -> dict[str, Any]:
    """The entries of `config.tune` that are searched (``None`` entries are switched off)."""
    return {key: spec for key, spec in config.tune.items() if spec is not None}


def _current(config: TrainConfig, key: str) -> Any:
    base, _, sub = key.partition(".")
    return config.model_args.get(sub) if sub else getattr(config, base)


def declare(hp, config: TrainConfig) -> dict[str, Any]:
    """Declares every searched key on `hp`; returns ``{key: value}`` for the current trial.

    The config's own value is the default where the space contains it, so a grid search's first
    trial is the recipe as written.
    """
    values = {}
    for key, spec in active_space(config).items():
        current = _current(config, key)
        if isinstance(spec, list):
            values[key] = hp.Choice(key, spec, default=current if current in spec else None)
            continue
        low, high, step = spec["min"], spec["max"], spec.get("step")
        sampling = spec.get("sampling", "linear")
        inside = isinstance(current, (int, float)) and not isinstance(current, bool) and low <= current <= high
        integer = all(isinstance(v, int) for v in (low, high, step or 1)) and (
            is_integer_key(key) or key.startswith("model_args."))
        if integer:
            values[key] = hp.Int(key, low, high, step=step, sampling=sampling,
                                 default=int(current) if inside and step is None else None)
        else:
            values[key] = hp.Float(key, float(low), float(high), step=step, sampling=sampling,
                                   default=float(current) if inside and step is None else None)
    return values


def trial_values(hp) -> dict[str, Any]:
    """A trial's config values, without KerasTuner's own ``tuner/...`` entries."""
    return {k: v for k, v in hp.values.items() if not k.startswith(TUNER_PREFIX)}


def config_for(config: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """A copy of `config` with a trial's values applied and no `tune` section: a plain training
    config, as the best trial's ``config.json`` is written."""
    changes: dict[str, Any] = {"tune": {}}
    model_args = dict(config.model_args)
    for key, value in values.items():
        base, _, sub = key.partition(".")
        if sub:
            model_args[sub] = value
        else:
            changes[base] = value
    if model_args != config.model_args:
        changes["model_args"] = model_args
    return dataclasses.replace(config, **changes)


def check_space_for_tuner(config: TrainConfig, tuner: str) -> None:
    """Checks what a search space needs from a particular tuner.

    Raises:
        ConfigError: a grid search over a range without a step (the grid would be infinite),
            Hyperband with `epochs` in the space (Hyperband sets each trial's epochs itself), or
            an empty space.
    """
    space = active_space(config)
    if not space:
        raise ConfigError(
            "The recipe has no search space: give tune={KEY: [choices] or {min, max}, ...}, "
            'e.g. --set \'tune={"lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"}}\'.'
        )
    if tuner == "grid":
        for key, spec in space.items():
            if isinstance(spec, dict) and spec.get("step") is None:
                raise ConfigError(
                    f"tune.{key}: a grid search needs a step for every range (or a list of "
                    f"choices). Received {spec!r}"
                )
    if tuner == "hyperband" and "epochs" in space:
        raise ConfigError(
            "tune.epochs: Hyperband decides each trial's epochs itself (up to the config's "
            "epochs); take epochs out of the search space or choose another tuner."
        )
