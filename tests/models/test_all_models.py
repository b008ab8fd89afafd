"""Registry-driven checks that every registered model must pass (keras applications_test.py style).

Every model is built once at a small input with L2 on and checked for: output shape, one L2
loss term per kernel, and a non-zero gradient for every trainable weight. The `.keras` round trip
with safe_mode=True and the `include_top=False` heads are checked on one model per family (the
shallowest), since deeper variants only repeat the same blocks and cost minutes to save.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfresnet
from tfresnet.models.common import iter_layers

NUM_CLASSES = 5


def small_input_shape(name: str) -> tuple:
    spec = tfresnet.get_model_spec(name)
    size = max(spec.min_input_size, 32)
    return (size, size, 3)


def build(name, **kwargs):
    extra = {"head": "avg"} if tfresnet.get_model_spec(name).family == "vgg" else {}
    return tfresnet.create_model(name, input_shape=small_input_shape(name), **extra, **kwargs)


def family_representatives() -> list[str]:
    first = {}
    for name in tfresnet.list_models():  # depth order: the first is the shallowest
        first.setdefault(tfresnet.get_model_spec(name).family, name)
    return sorted(first.values())


def count_kernels(model) -> int:
    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    return sum(1 for layer in iter_layers(model) if isinstance(layer, kinds))


def calibrate_batch_norm(model, x) -> None:
    """Sets every batch norm's moving statistics to those of batch `x` (momentum 0)."""
    for layer in iter_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(x, training=True)


@pytest.mark.parametrize("name", tfresnet.list_models())
def test_model_contract(name):
    model = build(name, num_classes=NUM_CLASSES, classifier_activation=None, l2=1e-4)
    assert model.name == name
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, *model.input_shape[1:])).astype("float32")
    assert model(x, training=False).shape == (2, NUM_CLASSES)

    # Regularisation is built in: exactly one L2 term per conv/dense kernel.
    assert len(model.losses) == count_kernels(model) > 0

    # Inference mode, where every weight must matter. In training mode some gradients are zero
    # by construction (a conv bias or BN beta whose shift the next batch norm subtracts); with
    # untouched statistics (mean 0, variance 1) a deep plain net's signal dies on the way down
    # (the degradation problem itself), so the statistics are first set from this batch.
    calibrate_batch_norm(model, x)
    # A classifier that starts at zero (Nielsen's network3 softmax layer) passes no gradient
    # down at step 0 by design; random weights there let the check test the wiring below it.
    head = model.get_layer("predictions") if "predictions" in [lay.name for lay in model.layers] else None
    if head is not None and not any(np.any(np.asarray(w)) for w in head.get_weights()):
        head.set_weights([rng.normal(size=w.shape).astype("float32") for w in head.get_weights()])
    weights = rng.normal(size=(2, NUM_CLASSES)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=False) * weights) + tf.add_n(model.losses)
    grads = tape.gradient(loss, model.trainable_weights)
    dead = [w.path for w, g in zip(model.trainable_weights, grads)
            if g is None or not np.any(np.asarray(g))]
    assert not dead, f"weights with no gradient: {dead[:5]}"


@pytest.mark.parametrize("name", family_representatives())
def test_keras_round_trip_with_safe_mode(name, tmp_path):
    residual = "drop_path" in _builder_args(name) and "plain" not in tfresnet.get_model_spec(name).family
    kwargs = {"drop_path": 0.1} if residual else {}
    model = build(name, num_classes=NUM_CLASSES, preprocessing="auto", l2=1e-4, **kwargs)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).integers(0, 256, size=(2, *model.input_shape[1:])).astype("uint8")
    np.testing.assert_array_equal(np.asarray(restored(x, training=False)),
                                  np.asarray(model(x, training=False)))
    assert len(restored.losses) == len(model.losses)


@pytest.mark.parametrize("name", family_representatives())
def test_include_top_false_pooling(name):
    features = build(name, include_top=False)
    assert len(features.output_shape) == 4
    pooled = build(name, include_top=False, pooling="max")
    assert pooled.output_shape == (None, features.output_shape[-1])


def _builder_args(name):
    import inspect

    spec = tfresnet.get_model_spec(name)
    return inspect.signature(spec.builder).parameters
