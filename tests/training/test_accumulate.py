"""TrainConfig.accumulate: K batches of B give the update of one batch of K x B."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.session import compile_model

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 6)).astype("float32")
Y = np.eye(3, dtype="float32")[rng.integers(0, 3, size=64)]
EPOCHS = 2


def _train(config: TrainConfig) -> keras.Model:
    """A model without batch norm, compiled by the trainer, fitted on the same examples in order."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="tanh", name="dense1")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(hidden))
    compile_model(model, config, steps_per_epoch=len(X) // config.batch_size, epochs=EPOCHS, peak=config.lr)
    model.fit(X, Y, batch_size=config.batch_size, epochs=EPOCHS, shuffle=False, verbose=0)
    return model


def _same(a, b) -> bool:
    return all(np.allclose(x, y, rtol=1e-5, atol=1e-6) for x, y in zip(a.get_weights(), b.get_weights()))


# SGD with momentum and decoupled weight decay under one-cycle (the schedule must advance once
# per update), and AdamW under a warmed-up cosine (its bias correction counts updates).
CONFIGS = {
    "sgd": TrainConfig(optimizer="sgd", lr=0.2, momentum=0.9, weight_decay=0.05, schedule="onecycle"),
    "adamw": TrainConfig(optimizer="adamw", lr=0.02, weight_decay=0.1, schedule="cosine", warmup_epochs=0.5),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_four_batches_of_8_give_the_weights_of_one_batch_of_32(name):
    base = dataclasses.replace(CONFIGS[name], epochs=EPOCHS, jit_compile=False, verbose=0)
    large = _train(dataclasses.replace(base, batch_size=32))
    accumulated = _train(dataclasses.replace(base, batch_size=8, accumulate=4))
    assert _same(accumulated, large)
    assert int(accumulated.optimizer.iterations) == EPOCHS * 2  # updates, not batches
    if name == "sgd":  # accumulation is what makes them equal: batches of 8 alone end elsewhere
        assert not _same(_train(dataclasses.replace(base, batch_size=8)), large)


def test_an_average_of_the_weights_decays_per_update():
    optimizer_of = lambda k: _compiled(TrainConfig(ema=0.9, accumulate=k)).optimizer  # noqa: E731
    assert optimizer_of(1).ema_momentum == pytest.approx(0.9)
    # Keras moves the average at every batch: 4 moves an update at 0.9^(1/4) decay it by 0.9.
    assert optimizer_of(4).ema_momentum ** 4 == pytest.approx(0.9)


def _compiled(config):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="predictions")(inputs))
    compile_model(model, config, steps_per_epoch=4, epochs=1, peak=config.lr)
    return model


@pytest.mark.parametrize("changes, match", [
    ({"accumulate": 0}, "accumulate must be >= 1"),
    ({"accumulate": 2, "strategy": "mirrored"}, "accumulate=2"),
])
def test_combinations_that_cannot_accumulate_fail_in_one_line(changes, match):
    with pytest.raises(ConfigError, match=match) as err:
        TrainConfig(**changes).validate()
    assert "\n" not in str(err.value)
