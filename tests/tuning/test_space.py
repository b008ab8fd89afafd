"""The search space as data: declared as KerasTuner hyperparameters, mapped back onto the config."""

from __future__ import annotations

import keras_tuner as kt
import pytest

from tfresnet.training.config import ConfigError, TrainConfig, apply_overrides
from tfresnet.tuning.hypermodel import ConfigHyperModel
from tfresnet.tuning.space import config_for, declare

SPACE = {
    "model": ["convnet", "resnet20"],
    "lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
    "dropout": {"min": 0.0, "max": 0.5, "step": 0.25},
    "batch_size": {"min": 32, "max": 128, "step": 32},
    "augment": ["none", "mnist-shift"],
    "model_args.width": [1, 2],
    "l2": None,  # switched off
}


def test_lists_are_choices_and_ranges_are_typed_by_the_field():
    config = TrainConfig(model="resnet20", lr=1e-3, tune=SPACE).validate()
    hp = kt.HyperParameters()
    values = declare(hp, config)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"model": "Choice", "lr": "Float", "dropout": "Float", "batch_size": "Int",
                     "augment": "Choice", "model_args.width": "Choice"}
    # The recipe's own values are the defaults, so a grid search starts from the recipe.
    assert values["model"] == "resnet20" and values["lr"] == pytest.approx(1e-3)
    assert hp.space[1].sampling == "log" and hp.space[3].step == 32


def test_trial_values_make_a_plain_training_config():
    config = TrainConfig(model_args={"alpha": 1.0}, tune=SPACE)
    trial = config_for(config, {"model": "convnet", "lr": 0.005, "model_args.width": 2, "batch_size": 64})
    assert (trial.model, trial.lr, trial.batch_size) == ("convnet", 0.005, 64)
    assert trial.model_args == {"alpha": 1.0, "width": 2} and trial.tune == {}
    assert config.model_args == {"alpha": 1.0}  # the recipe's config is not touched


def test_a_trials_impossible_combination_is_a_config_error():
    # Each value is valid on its own; together they are not (plain nets have no residual branch).
    config = TrainConfig(model="convnet", tune={"model": ["resnet20", "plain20"], "drop_path": [0.0, 0.1]})
    hypermodel = ConfigHyperModel(config.validate())
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values.update({"model": "plain20", "drop_path": 0.1})
    with pytest.raises(ConfigError, match="drop_path needs residual branches"):
        hypermodel.trial_config(hp)


def test_set_edits_the_space_entry_by_entry():
    config = apply_overrides(TrainConfig(tune=SPACE), [
        'tune.lr={"min": 0.001, "max": 0.1, "sampling": "log"}', "tune.model=null", 'tune.dropout=[0.0, 0.3]'])
    assert config.tune["lr"]["max"] == 0.1 and config.tune["model"] is None
    assert config.tune["dropout"] == [0.0, 0.3]
    assert config.validate() is config
