"""The output layers (`TrainConfig.output`): sigmoid units train with network2's cross-entropy."""

import json

import keras
import numpy as np
import pytest

from tfresnet.training import ConfigError, TrainConfig
from tfresnet.training.losses import SummedBinaryCrossentropy
from tfresnet.training.trainer import train


def test_summed_cross_entropy_is_network2s_cost():
    rng = np.random.default_rng(0)
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 8)]
    a = rng.uniform(0.01, 0.99, (8, 10)).astype("float32")
    # network2.CrossEntropyCost.fn, per example, then the mini-batch mean.
    book = np.mean(np.sum(-y * np.log(a) - (1 - y) * np.log(1 - a), axis=1))
    assert float(SummedBinaryCrossentropy()(y, a)) == pytest.approx(book, rel=1e-5)
    # Keras' own averages over the 10 units: a tenth of the cost, and of every gradient.
    assert float(keras.losses.BinaryCrossentropy()(y, a)) == pytest.approx(book / 10, rel=1e-5)
    smoothed = SummedBinaryCrossentropy(label_smoothing=0.2)
    assert float(smoothed(y, a)) == pytest.approx(float(SummedBinaryCrossentropy()(y * 0.8 + 0.1, a)), rel=1e-6)
    assert SummedBinaryCrossentropy.from_config(smoothed.get_config()).label_smoothing == 0.2


def test_classifier_activation_is_output_not_a_model_arg():
    with pytest.raises(ConfigError, match="classifier_activation is set by output="):
        TrainConfig(model_args={"classifier_activation": "sigmoid"}).validate()
    with pytest.raises(ConfigError, match="output"):
        TrainConfig(output="tanh").validate()


def test_sigmoid_outputs_learn_and_the_checkpoint_loads_safely(tmp_path):
    # Chapter 5's one-hidden-layer sigmoid net with sigmoid outputs, 2 epochs of the 6,000-digit
    # sample at network2's batch-10 eta 0.1 scaled to batch 100: measured 0.87-0.88 (seeds
    # 0, 1) against chance 0.1.
    config = TrainConfig(model="sigmoid_mlp_30x1", output="sigmoid", optimizer="sgd", momentum=0.0,
                         lr=1.0, batch_size=100, epochs=2, validation_split=0.1, export=False,
                         tensorboard=False, jit_compile=False, verbose=0)
    result = train(config, str(tmp_path / "run"))
    assert result.metrics["accuracy"] >= 0.8
    assert result.model.get_layer("predictions").activation.__name__ == "sigmoid"
    assert isinstance(result.model.loss, SummedBinaryCrossentropy)
    checkpoints = sorted((tmp_path / "run").rglob("*.keras"))
    assert checkpoints, "no .keras checkpoint"
    loaded = keras.saving.load_model(checkpoints[0], safe_mode=True)
    assert isinstance(loaded.loss, SummedBinaryCrossentropy)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["output"] == "sigmoid"
