"""The trainer's compiled model traces its train step once, not twice.

Keras (3.15, TensorFlow, no tf.distribute strategy) builds an unbuilt optimizer inside the first
trace of the train step; TensorFlow then traces the whole step again without variable creation.
`compile_model` builds the optimizer first. Each case below traced twice before it did.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from tfresnet.training.config import TrainConfig
from tfresnet.training.session import compile_model

rng = np.random.default_rng(0)
X = rng.normal(size=(32, 6)).astype("float32")
Y = np.eye(3, dtype="float32")[rng.integers(0, 3, size=32)]

# Optimizers with state (Adam's moments, SGD's momentum), Keras' own averaging and accumulation.
CONFIGS = {
    "adam": TrainConfig(optimizer="adam"),
    "sgd-momentum": TrainConfig(optimizer="sgd", momentum=0.9),
    "ema": TrainConfig(optimizer="adamw", ema=0.9),
    "accumulate": TrainConfig(optimizer="sgd", momentum=0.9, accumulate=2),
}


def _model() -> keras.Model:
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="tanh", name="dense1")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(hidden))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_train_step_is_traced_once(name):
    config = dataclasses.replace(CONFIGS[name], batch_size=8, jit_compile=False, verbose=0)
    model = _model()
    compile_model(model, config, steps_per_epoch=4, epochs=2, peak=config.lr)
    traces = []
    step = model.train_step

    def counted(*args):
        traces.append(1)  # runs only while TensorFlow traces the step
        return step(*args)

    model.train_step = counted
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert len(traces) == 1
    assert int(model.optimizer.iterations) == 8 // config.accumulate  # it trained, every step
    assert not all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.trainable_variables))
