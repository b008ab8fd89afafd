"""Every `tfresnet.inspect` function on every kind of Keras model a user brings.

A registry model, a keras.applications model, and one small network written three ways
(Sequential, functional, subclassed) with the same weights: the three must give the same numbers,
which checks the Sequential and subclassed paths against the functional one. Grad-CAM and feature
maps read inner layers' outputs, which a subclassed model does not expose: they refuse it with one
ValueError saying why and what to pass.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tfresnet
from tfresnet import inspect

SHAPE = (16, 16, 3)
CLASSES = 3
KINDS = ("registry", "keras_applications", "sequential", "functional", "subclassed")


def _small_layers():
    return [keras.layers.Rescaling(1 / 255.0, name="scale"),
            keras.layers.Conv2D(6, 3, activation="relu", name="conv1"),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(CLASSES, activation="softmax", name="predictions")]


class SmallNet(keras.Model):
    """The small network as a subclassed model: layers called in `call`, no graph."""

    def __init__(self):
        super().__init__(name="small_subclassed")
        self.stack = _small_layers()

    def call(self, x, training=False):
        for layer in self.stack:
            x = layer(x)
        return x


def _calibrated(model: keras.Model) -> keras.Model:
    """`model` with its batch-norm statistics set from one batch of smooth raw-pixel images.

    Untrained, keras.applications' MobileNet expects inputs in [-1, 1]: raw pixels through unit
    batch-norm statistics saturate its ReLU6s and every gradient is zero. Statistics of pixel
    noise leave it so sensitive that a 2-pixel FGSM step overshoots; smooth images (4x4 noise
    blown up 8x, more like photos) leave it close enough to linear for 1 pixel.
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0  # the moving statistics become this batch's
    coarse = np.random.default_rng(1).uniform(0, 255, (16, 4, 4, 3)).astype("float32")
    model(np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2), training=True)
    for layer in norms:
        layer.momentum = 0.99
    return model


def _build(kind: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    if kind == "registry":
        return tfresnet.create_model("resnet20", input_shape=SHAPE, num_classes=CLASSES, preprocessing="auto")
    if kind == "keras_applications":
        # At 32x32 MobileNet's last two blocks are 1x1: the default feature map must stop before them.
        return _calibrated(keras.applications.MobileNet(alpha=0.25, input_shape=(32, 32, 3), weights=None,
                                                        classes=CLASSES))
    if kind == "sequential":
        return keras.Sequential([keras.Input(SHAPE), *_small_layers()], name="small_sequential")
    if kind == "functional":
        inputs = keras.Input(SHAPE)
        x = inputs
        for layer in _small_layers():
            x = layer(x)
        return keras.Model(inputs, x, name="small_functional")
    model = SmallNet()
    model(np.zeros((1, *SHAPE), "float32"))
    return model


@pytest.fixture(scope="module")
def models() -> dict:
    """One model of each kind; the three small ones share the functional one's weights."""
    built = {kind: _build(kind) for kind in KINDS}
    weights = built["functional"].get_weights()
    built["sequential"].set_weights(weights)
    built["subclassed"].set_weights(weights)
    return built


def _batch(model, n=4, seed=0):
    shape = (32, 32, 3) if model.name.startswith("mobilenet") else SHAPE
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, *shape)).astype("float32"), rng.integers(0, CLASSES, n)


def _cross_entropy(model, x, y):
    p = keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")
    return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_norms_reach_every_weight(models, kind):
    model = models[kind]
    x, y = _batch(model)
    frame = inspect.gradient_norms(model, x, y, training=False)
    assert len(frame) == len(model.trainable_weights)
    assert np.all(np.isfinite(frame["grad_norm"])) and np.all(frame["grad_norm"] > 0), frame


@pytest.mark.parametrize("kind", ["sequential", "subclassed"])
def test_gradient_flow_records_while_fitting(models, kind, tmp_path):
    model = _build(kind)
    x, y = _batch(model, n=8)
    model.compile("sgd", "sparse_categorical_crossentropy")
    flow = inspect.GradientFlow(x, y, every=1, run_dir=str(tmp_path), plot=False)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[flow])
    frame = (tmp_path / "gradient_flow.csv").read_text().splitlines()
    assert len(frame) == 1 + 3 * len(model.trainable_weights)  # header, steps 0, 1 and 2


@pytest.mark.parametrize("kind", KINDS)
def test_attacks_stay_in_budget_and_raise_the_loss(models, kind):
    model = models[kind]
    x, y = _batch(model)
    # One pixel: the untrained MobileNet is far from linear (see _calibrated).
    for x_adv in (inspect.fgsm(model, x, y, 1.0), inspect.pgd(model, x, y, 1.0, steps=3)):
        assert np.abs(x_adv - x).max() <= 1.0 + 1e-4 and x_adv.min() >= 0 and x_adv.max() <= 255
        assert _cross_entropy(model, x_adv, y) > _cross_entropy(model, x, y)
    frame = inspect.robustness(model, (x, y), eps=[0, 1], pgd_steps=2)
    clean = np.mean(keras.ops.convert_to_numpy(model(x)).argmax(axis=1) == y)
    assert frame["accuracy"].iloc[0] == pytest.approx(clean)


@pytest.mark.parametrize("kind", KINDS)
def test_ideal_image_and_saliency(models, kind):
    model = models[kind]
    x, _ = _batch(model, n=1)
    shape = {"input_shape": SHAPE} if kind == "subclassed" else {}  # it records none of its own
    _, early = inspect.ideal_image(model, 1, steps=1, jitter=0, lr=1.0, **shape)
    _, late = inspect.ideal_image(model, 1, steps=12, jitter=0, lr=1.0, **shape)
    assert late > early
    for values in (inspect.saliency(model, x[0], 1), inspect.smoothgrad(model, x[0], 1, samples=2)):
        assert values.shape == x.shape[1:3] and values.max() == pytest.approx(1.0)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "subclassed"])
def test_grad_cam_and_feature_maps_on_graph_models(models, kind):
    model = models[kind]
    x, _ = _batch(model, n=1)
    maps = inspect.feature_maps(model, x[0])
    assert all(m.shape[0] * m.shape[1] > 1 for m in maps.values()), {k: m.shape for k, m in maps.items()}
    last = list(maps)[-1]
    heatmap = inspect.grad_cam(model, x[0], 2)
    np.testing.assert_allclose(heatmap, inspect.grad_cam(model, x[0], 2, layer=last), atol=1e-6)
    if kind == "keras_applications":
        assert last == "conv_pw_11_relu"  # 2x2; conv_pw_12, conv_pw_13 and conv_preds are 1x1


def test_subclassed_model_refuses_inner_layers_naming_what_to_pass(models):
    model = models["subclassed"]
    x, _ = _batch(model, n=1)
    for call in (lambda: inspect.grad_cam(model, x[0], 0), lambda: inspect.feature_maps(model, x[0])):
        with pytest.raises(ValueError, match=r"'small_subclassed' is a subclassed keras.Model.*"
                                             r"Pass a functional or Sequential model"):
            call()


def test_the_same_network_three_ways_gives_the_same_numbers(models):
    """Sequential equals functional everywhere; subclassed where log-probabilities stand in exactly.

    A subclassed model hides its softmax, so its logits are taken as log p, which differ from the
    true logits by a constant per example: the same cross-entropy (gradient norms, attacks), but
    not the same gradient of one class's score (saliency, ideal images).
    """
    x, y = _batch(models["functional"])

    def numbers(model, every: bool):
        found = [inspect.gradient_norms(model, x, y, training=False)["grad_norm"].to_numpy(),
                 inspect.fgsm(model, x, y, 4.0)]
        if every:
            found += [inspect.saliency(model, x[0], 2), inspect.ideal_image(model, 0, steps=3, jitter=0)[0]]
        return found

    functional = numbers(models["functional"], every=True)
    for got, want in zip(numbers(models["sequential"], every=True), functional):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for got, want in zip(numbers(models["subclassed"], every=False), functional):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_loaded_sequential_model_gives_the_functional_numbers(models, tmp_path):
    # Loading builds a Sequential model's graph more than once; the diagnostics then copy it.
    models["sequential"].save(tmp_path / "seq.keras")
    loaded = keras.saving.load_model(tmp_path / "seq.keras")
    x, y = _batch(loaded)
    want = models["functional"]
    np.testing.assert_allclose(inspect.gradient_norms(loaded, x, y, training=False)["grad_norm"],
                               inspect.gradient_norms(want, x, y, training=False)["grad_norm"], rtol=1e-4)
    np.testing.assert_allclose(inspect.grad_cam(loaded, x[0], 1), inspect.grad_cam(want, x[0], 1), atol=1e-5)
