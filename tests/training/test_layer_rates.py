"""TrainConfig.layer_decay and lr_mult: a rate per block, on every optimizer, kept in saved files."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from tfresnet.runs import load_keras
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.layer_rates import block_of, block_patterns, layer_rates
from tfresnet.training.optimizers import LAYER_RATE_OPTIMIZERS, OPTIMIZERS, make_optimizer
from tfresnet.training.session import compile_model

OPTIMIZER_NAMES = sorted(OPTIMIZERS)


@pytest.mark.parametrize("family, names, blocks", [
    ("resnet_v1", ["conv1_conv", "conv1_bn", "conv5_block3_1_conv", "conv5_block3_3_bn", "conv5_block3_0_conv",
                   "predictions"], ["conv1", "conv1", "conv5_block3", "conv5_block3", "conv5_block3", "predictions"]),
    ("resnet_v2", ["conv4_block6_preact_bn", "post_bn"], ["conv4_block6", "post"]),
    ("mobilenet_v2", ["Conv1", "bn_Conv1", "expanded_conv_depthwise", "block_16_expand", "block_16_project_BN",
                      "Conv_1", "Conv_1_bn"], ["Conv1", "Conv1", "expanded_conv", "block_16", "block_16", "Conv_1",
                                               "Conv_1"]),
    ("mobilenet_v1", ["conv1", "conv1_bn", "conv_dw_13", "conv_dw_13_bn", "conv_pw_13", "conv_pw_1_bn", "conv_preds"],
     ["conv1", "conv1", "conv_13", "conv_13", "conv_13", "conv_1", "conv_preds"]),
    ("mobilenet_v3", ["conv", "conv_bn", "expanded_conv_depthwise", "expanded_conv_10_expand", "conv_1_bn"],
     ["conv", "conv", "expanded_conv", "expanded_conv_10", "conv_1"]),
    ("vgg", ["block5_conv1", "block5_conv3_bn", "fc1"], ["block5", "block5", "fc1"]),
])
def test_a_layer_belongs_to_the_block_its_family_names(family, names, blocks):
    patterns = block_patterns(family)
    assert [block_of(name, patterns) for name in names] == blocks


def _model() -> keras.Model:
    keras.utils.set_random_seed(2)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="block1_dense")(inputs)
    x = keras.layers.Dense(4, name="block2_a")(x)
    x = keras.layers.Dense(4, name="block2_b")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="predictions")(x), name="tiny")


# Blocks (convnet names) from the head down: predictions (depth 0), block2 (1), block1 (2).
DECAY = TrainConfig(lr=0.01, layer_decay=0.5, lr_mult={"block2_b": 3.0}, weight_decay=0.01)
EXPECTED = {"predictions": 1.0, "block2_b": 0.5 * 3.0, "block2_a": 0.5, "block1_dense": 0.25}
GRADS = [np.random.default_rng(i).normal(size=w.shape).astype("float32") for i, w in enumerate(_model().weights)]


def _updates(config: TrainConfig, *, rates: bool, steps: int = 1) -> dict:
    """Each layer's kernel change after `steps` optimizer steps on fixed gradients."""
    model = _model()
    multipliers = layer_rates(model, config, "convnet").multipliers if rates else None
    optimizer = make_optimizer(config, config.lr, rate_multipliers=multipliers)
    before = {layer.name: layer.kernel.numpy() for layer in model.layers[1:]}
    for _ in range(steps):
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in GRADS], model.trainable_variables)
    return {layer.name: layer.kernel.numpy() - before[layer.name] for layer in model.layers[1:]}


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_each_blocks_update_is_its_rate_times_the_single_rate_update(name):
    config = dataclasses.replace(DECAY, optimizer=name)
    plain, scaled = _updates(config, rates=False), _updates(config, rates=True)
    for layer, factor in EXPECTED.items():
        # The first step of each optimizer (weight decay included) is linear in the rate; the
        # tolerance is a float32 weight's rounding (a change is a difference of two weights).
        np.testing.assert_allclose(scaled[layer], factor * plain[layer], rtol=1e-5, atol=2e-7)


def test_adams_first_step_moves_each_weight_by_its_own_rate():
    # Adam's first step is lr * g / |g|: scaling the gradient (not the rate) would change nothing.
    config = TrainConfig(optimizer="adam", lr=0.01, layer_decay=0.5, lr_mult={"block2_b": 3.0})
    for layer, change in _updates(config, rates=True).items():
        assert np.mean(np.abs(change)) == pytest.approx(config.lr * EXPECTED[layer], rel=1e-3)


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_lr_mult_zero_freezes_a_block_weight_decay_included(name):
    config = TrainConfig(optimizer=name, lr=0.01, lr_mult={"block1": 0.0}, weight_decay=0.1, momentum=0.9)
    changes = _updates(config, rates=True, steps=3)
    assert not np.any(changes["block1_dense"])
    assert all(np.all(changes[layer] != 0) for layer in ("block2_a", "block2_b", "predictions"))


def _compiled(config: TrainConfig) -> keras.Model:
    model = _model()
    compile_model(model, config, steps_per_epoch=2, epochs=1, peak=config.lr)
    model.run_eagerly = True  # the same updates, without tracing a train step per model
    return model


BATCH = (np.linspace(-1, 1, 32, dtype="float32").reshape(8, 4), np.eye(3, dtype="float32")[np.arange(8) % 3])


def test_the_optimizer_and_its_rates_survive_a_keras_file_and_a_backup(tmp_path):
    config = TrainConfig(model="convnet", optimizer="adamw", lr=0.01, layer_decay=0.5, weight_decay=0.01,
                         schedule="cosine", verbose=0, jit_compile=False)
    model = _compiled(config)
    model.train_on_batch(*BATCH)
    model.save(tmp_path / "model.keras")
    model.save_weights(tmp_path / "backup.weights.h5")
    loaded = load_keras(str(tmp_path / "model.keras"), compile=True)
    assert type(loaded.optimizer) is LAYER_RATE_OPTIMIZERS["adamw"]
    assert loaded.optimizer.rate_multipliers == model.optimizer.rate_multipliers != {}
    resumed = _compiled(config)  # a new process resuming: a fresh model, the backup loaded
    resumed.optimizer.build(resumed.trainable_variables)
    resumed.load_weights(tmp_path / "backup.weights.h5")
    for other in (loaded, resumed):
        other.train_on_batch(*BATCH)
    model.train_on_batch(*BATCH)
    for other in (loaded, resumed):
        for a, b in zip(model.get_weights(), other.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_the_trainer_says_the_rates_per_block(capsys):
    _compiled(TrainConfig(model="convnet", layer_decay=0.5, lr_mult={"block2_b": 3.0}))
    line = capsys.readouterr().out
    assert "3 training blocks from the head: predictions 1, block2 0.5-1.5, block1 0.25" in line


def test_an_lr_mult_prefix_matching_no_layer_names_it_and_real_layers():
    with pytest.raises(ConfigError, match=r"lr_mult: no layer of 'tiny' starts with 'block_1'.*block1_dense"):
        _compiled(TrainConfig(model="convnet", lr_mult={"block_1": 0.1}))
