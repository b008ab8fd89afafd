"""Precise batch norm (`TrainConfig.precise_bn`): the moving statistics become the average of the
N batches' statistics, with the weights fixed, after training and before each validation.

A whole run's (its kept weights and the other EMA set both hold their own precise statistics)
is checked in `test_ema_kill.py`, on the runs it trains anyway."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfresnet.training import precise_bn
from tfresnet.training.config import ConfigError, TrainConfig

EPS = 1e-3  # Keras' BatchNormalization epsilon
RNG = np.random.default_rng(0)
# Three batches from different distributions (so the average differs from any one of them),
# and a fourth that `steps=3` must not read.
BATCHES = [(RNG.normal(loc, scale, (8, 4)).astype("float32"),) for loc, scale in
           ((0.0, 1.0), (2.0, 0.5), (-1.0, 3.0), (50.0, 10.0))]


def _model():
    """Dense -> BN -> ReLU -> Dense -> BN, with moving statistics far from any batch's."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(),
                              keras.layers.ReLU(), keras.layers.Dense(2), keras.layers.BatchNormalization()])
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.assign(np.array([1.5, 0.5, 2.0][:layer.gamma.shape[0]], "float32"))
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 100.0, "float32"))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 1e-3, "float32"))
    return model


def _by_hand(model, x):
    """The model's forward pass in numpy, each BN normalising with the batch's statistics.

    Returns the inputs of the two BN layers."""
    dense1, bn1, _, dense2, _ = model.layers
    h1 = x.astype("float64") @ dense1.kernel.numpy() + dense1.bias.numpy()
    normalised = (h1 - h1.mean(0)) / np.sqrt(h1.var(0) + EPS) * bn1.gamma.numpy() + bn1.beta.numpy()
    h2 = np.maximum(normalised, 0) @ dense2.kernel.numpy() + dense2.bias.numpy()
    return h1, h2


def _inference_by_hand(model, x, stats):
    dense1, bn1, _, dense2, bn2 = model.layers
    (m1, v1), (m2, v2) = stats
    h1 = x.astype("float64") @ dense1.kernel.numpy() + dense1.bias.numpy()
    a = np.maximum((h1 - m1) / np.sqrt(v1 + EPS) * bn1.gamma.numpy() + bn1.beta.numpy(), 0)
    h2 = a @ dense2.kernel.numpy() + dense2.bias.numpy()
    return (h2 - m2) / np.sqrt(v2 + EPS) * bn2.gamma.numpy() + bn2.beta.numpy()


def test_statistics_become_the_average_over_n_batches_and_nothing_else_changes():
    model = _model()
    trainable = [w.numpy().copy() for w in model.trainable_weights]
    probe = BATCHES[3][0][:4]
    before = model.predict(probe, verbose=0)

    result = precise_bn.estimate(model, iter(BATCHES), steps=3)

    assert (result.layers, result.batches) == (2, 3)
    inputs = [_by_hand(model, x) for (x,) in BATCHES[:3]]
    expected = []
    for k, layer in enumerate(precise_bn.batch_norm_layers(model)):
        mean = np.mean([h[k].mean(0) for h in inputs], axis=0)  # the average of the batch means
        variance = np.mean([h[k].var(0) for h in inputs], axis=0)  # and of the (biased) batch variances
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-5, atol=1e-5)
        assert layer.momentum == 0.99  # restored
        expected.append((mean, variance))
    for old, new in zip(trainable, model.trainable_weights):
        np.testing.assert_array_equal(old, new.numpy())  # only the moving statistics moved
    after = model.predict(probe, verbose=0)
    np.testing.assert_allclose(after, _inference_by_hand(model, probe, expected), rtol=1e-4, atol=1e-4)
    assert not np.allclose(before, after, atol=0.1)


def test_no_batch_norm_or_frozen_batch_norm_is_left_alone():
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    weights = plain.get_weights()
    result = precise_bn.estimate(plain, iter(BATCHES), steps=2)
    assert result.layers == 0 and "nothing was re-estimated" in precise_bn.note(result)
    for old, new in zip(weights, plain.get_weights()):
        np.testing.assert_array_equal(old, new)

    model = _model()
    frozen = model.layers[1]
    frozen.trainable = False  # normalises with its moving statistics in training too
    assert precise_bn.estimate(model, iter(BATCHES), steps=2).layers == 1
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.full(3, 100.0, "float32"))


def test_before_each_validation_the_validated_statistics_are_precise():
    """In `fit`, the callback re-estimates at validation: the validation loss is that of the
    precise statistics, and the model ends (one epoch) with them."""
    model = _model()
    model.compile("sgd", "mse")
    x, y = BATCHES[1][0], np.zeros((8, 2), "float32")
    batches = precise_bn.TrainingBatches(_Bundle, steps=2)
    history = model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y),
                        callbacks=[precise_bn.PreciseBN(batches)])
    stats = [layer.moving_mean.numpy().copy() for layer in (model.layers[1], model.layers[4])]
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-5)
    precise_bn.estimate(model, iter(BATCHES), steps=2)  # the same two batches again
    for old, layer in zip(stats, (model.layers[1], model.layers[4])):
        np.testing.assert_allclose(old, layer.moving_mean.numpy(), rtol=1e-5, atol=1e-5)


class _Bundle:
    """`DatasetBundle`'s two members `TrainingBatches` reads, over `BATCHES`."""

    class _Split:
        def take(self, n):
            return BATCHES[:n]

    train = _Split()

    def set_epoch(self, epoch):
        pass


@pytest.mark.parametrize("values, named", [
    ({"precise_bn_each_epoch": True}, "precise_bn=0"),
    ({"precise_bn": 4, "strategy": "mirrored"}, "strategy='mirrored'"),
    ({"ema_weights": "raw"}, "ema_weights='raw'"),
])
def test_bad_combinations_name_the_value(values, named):
    with pytest.raises(ConfigError, match=named):
        TrainConfig(**values).validate()
