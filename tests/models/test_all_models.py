"""Registry-driven checks that every registered model must pass (keras applications_test.py style).

Each model is built once at a small input with L2 on, then checked for: output shape, one L2 loss
term per kernel, a non-zero gradient for every trainable weight, and a `.keras` round trip with
safe_mode=True that reproduces the outputs.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras
import tfresnet

NUM_CLASSES = 5


def small_input_shape(name: str) -> tuple:
    spec = tfresnet.get_model_spec(name)
    size = max(spec.min_input_size, 32)
    return (size, size, 3)


def count_kernels(model) -> int:
    return sum(
        1
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense))
    )


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("name", tfresnet.list_models())
def test_model_contract(name, rng, tmp_path):
    shape = small_input_shape(name)
    extra = {"head": "avg"} if tfresnet.get_model_spec(name).family == "vgg" else {}
    model = tfresnet.create_model(
        name, input_shape=shape, num_classes=NUM_CLASSES, classifier_activation=None,
        l2=1e-4, **extra,
    )
    assert model.name == name
    x = rng.uniform(-1, 1, size=(2, *shape)).astype("float32")
    assert model(x, training=False).shape == (2, NUM_CLASSES)

    # Regularisation is built in: exactly one L2 term per conv/dense kernel.
    assert len(model.losses) == count_kernels(model) > 0

    # Inference mode: in training mode a conv bias followed by batch norm (kept for
    # keras.applications parity) has a gradient that is zero by construction.
    weights = rng.normal(size=(2, NUM_CLASSES)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=False) * weights) + tf.add_n(model.losses)
    grads = tape.gradient(loss, model.trainable_weights)
    dead = [w.path for w, g in zip(model.trainable_weights, grads)
            if g is None or not np.any(np.asarray(g))]
    assert not dead, f"weights with no gradient: {dead[:5]}"

    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        np.asarray(restored(x, training=False)), np.asarray(model(x, training=False))
    )


@pytest.mark.parametrize("name", tfresnet.list_models())
def test_include_top_false_pooling(name):
    shape = small_input_shape(name)
    features = tfresnet.create_model(name, input_shape=shape, include_top=False)
    assert len(features.output_shape) == 4
    pooled = tfresnet.create_model(name, input_shape=shape, include_top=False, pooling="max")
    assert pooled.output_shape == (None, features.output_shape[-1])
