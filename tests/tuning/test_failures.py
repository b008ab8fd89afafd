"""Failed trials: recorded with their reason while the search goes on, up to the consecutive limit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfresnet.training.session import load_data
from tfresnet.tuning import tune


def test_impossible_combination_fails_its_trial_and_the_search_goes_on(tiny_config, tmp_path):
    # VGG-11 pools five times: a 28x28 digit is too small for it, while the ConvNet trains.
    space = {"model": ["convnet", "vgg11"], "lr": [1e-3, 2e-3]}
    result = tune(tiny_config(tune=space, lr=1e-3), tmp_path, tuner="grid", max_trials=4)
    frame = pd.read_csv(tmp_path / "results.csv", keep_default_na=False, na_values=[""])
    assert len(frame) == 4 and not frame.duplicated(["model", "lr"]).any()
    failed = frame[frame["status"] == "FAILED"]
    assert set(failed["model"]) == {"vgg11"} and len(failed) == 2
    assert failed["reason"].str.contains("ValueError: vgg11: input height and width must be at least 32").all()
    assert failed["val_accuracy"].isna().all()
    assert set(frame.loc[frame["status"] == "COMPLETED", "model"]) == {"convnet"}
    assert result.error is None and result.best["model"] == "convnet"


def test_nan_loss_fails_the_trial_with_its_reason(tiny_config, tmp_path):
    def loader(config):
        bundle = load_data(config)
        if config.augment == "none":
            return bundle
        # A diverged run, made certain: every training target is NaN. (NaN pixels are not: on
        # some CPUs TensorFlow's max-pool turns NaN into the lowest float and the loss stays finite.)
        poisoned = bundle.train.map(
            lambda x, y: (x, tf.one_hot(y, bundle.num_classes) * np.float32("nan")))
        return dataclasses.replace(bundle, train=poisoned)

    # The loader is asked once per data setting (batch size, augmentation, ...), so the poisoned
    # data hangs on one of those.
    space = {"augment": ["none", "mnist-shift"]}
    result = tune(tiny_config(tune=space), tmp_path, tuner="grid", max_trials=2, data_loader=loader)
    rows = result.results.set_index("augment")
    assert rows.loc["none", "status"] == "COMPLETED"
    assert rows.loc["mnist-shift", "status"] == "FAILED"
    assert rows.loc["mnist-shift", "reason"].startswith("tfresnet.training.callbacks.NaNLossError: Loss became nan")
    assert result.best["hyperparameters"]["augment"] == "none"


def test_consecutive_failures_stop_the_search_cleanly(tiny_config, tmp_path):
    space = {"model": ["vgg11", "vgg13", "vgg16", "vgg19"]}  # all too deep for 28x28 digits
    result = tune(tiny_config(tune=space), tmp_path, tuner="grid", max_trials=4,
                  max_consecutive_failed_trials=2)
    assert result.error.startswith("Number of consecutive failures exceeded the limit of 2")
    assert list(result.results["status"]) == ["FAILED", "FAILED"]  # stopped before its budget
    assert result.best is None and result.best_dir is None
    assert (tmp_path / "results.csv").exists()


@pytest.mark.parametrize("space, match", [
    ({"lr": {"min": 1e-2, "max": 1e-4}}, "tune.lr: min must be below max"),
    ({"model": ["convnet", "resnet5"]}, "tune.model: the value 'resnet5' is not valid: model: Unknown model name"),
    ({"batchsize": [16, 32]}, "tune: Unknown config key 'batchsize'. Did you mean batch_size"),
])
def test_bad_space_fails_before_the_first_trial(space, match, tiny_config, tmp_path):
    from tfresnet.training.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        tune(tiny_config(tune=space), tmp_path)
    assert not (tmp_path / "trials").exists()
