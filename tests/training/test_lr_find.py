"""`tfresnet lr-find`: the suggested rate trains, 100x it does not; weights are left as they were."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os

import keras
import numpy as np
import pytest

from tfresnet import cli
from tfresnet.training.cli import load_recipe
from tfresnet.training.config import apply_overrides
from tfresnet.training.determinism import seed_everything
from tfresnet.training.lr_find import lr_range_test
from tfresnet.training.session import build_model, compile_model, load_data, one_hot_labels

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETS = ["data=mnist-sample", "batch_size=128"]


@pytest.fixture(scope="module")
def config():
    _, get_config = load_recipe(os.path.join(REPO, "recipes", "mnist_fast.py"))
    return apply_overrides(get_config(), SETS)


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("lr_find"))
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = cli.main(["lr-find", os.path.join(REPO, "recipes", "mnist_fast.py"),
                       *[arg for s in SETS for arg in ("--set", s)], "--out", out_dir])
    assert rc == 0
    with open(os.path.join(out_dir, "lr_find.json")) as f:
        return {"out_dir": out_dir, "stdout": stdout.getvalue(), **json.load(f)}


def _train_losses(config, lr: float, steps: int = 60) -> list[float]:
    """Per-step training losses of a fresh model at a constant `lr`."""
    seed_everything(config.seed)
    plain = dataclasses.replace(config, reduce_lr_on_plateau=1)  # a float lr, no schedule
    data = load_data(plain)
    model = build_model(plain, data.input_shape, data.num_classes)
    compile_model(model, plain, steps, epochs=1, peak=lr)
    history = model.fit(one_hot_labels(data.train, data.num_classes).repeat(), epochs=steps, steps_per_epoch=1,
                        verbose=0, shuffle=False)
    return history.history["loss"]


def test_outputs_and_printed_suggestion(found):
    assert sorted(os.listdir(found["out_dir"])) == ["lr_find.json", "lr_find.png"]
    assert found["rule"] == "minimum/10" and found["suggested"] == found["suggestions"]["minimum/10"]
    assert "minimum/10" in found["stdout"] and "steepest" in found["stdout"]
    assert f"--set lr={found['suggested']:.2g}" in found["stdout"]
    lrs = np.asarray(found["lrs"])
    assert np.all(np.diff(np.log(lrs)) > 0) and lrs[0] == pytest.approx(1e-7)
    assert 1e-7 < found["suggested"] < 10


def test_suggested_rate_converges_where_100x_does_not(found, config):
    lr = found["suggested"]
    good, bad = _train_losses(config, lr), _train_losses(config, 100 * lr)
    end_good, end_bad = np.mean(good[-10:]), np.mean(bad[-10:])
    assert end_good < 0.5 * end_bad, (lr, end_good, end_bad)
    assert end_good < 0.6 * np.mean(good[:3]), (lr, good[:3], end_good)


def test_range_test_restores_weights_and_optimizer(config):
    data = load_data(config)
    model = build_model(config, data.input_shape, data.num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    before = [w.numpy().copy() for w in model.weights]
    result = lr_range_test(model, one_hot_labels(data.train, data.num_classes), steps=12, min_lr=1e-4, max_lr=1.0)
    assert len(result.losses) == 12
    for w, old in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), old)
    assert int(model.optimizer.iterations.numpy()) == 0
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)


def test_schedule_compiled_model_is_refused(config):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)),
                  loss="mse")
    with pytest.raises(ValueError, match="float learning rate"):
        lr_range_test(model, None)
