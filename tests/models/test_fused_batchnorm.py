"""`FusedBatchNormalization` computes what `keras.layers.BatchNormalization` computes, through one op.

Each comparison runs the two layers on the same weights and inputs and also checks which path
ran, from the traced graph's op types: a layer that quietly fell back to Keras' path would pass an
equality test, and one that fused where it must not would fail it only on some inputs.
"""

import importlib.util
import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfresnet
from tfresnet.models.common import iter_layers
from tfresnet.models.layers import FusedBatchNormalization

SHAPE = (8, 6, 5, 4)
BENCHMARK = pathlib.Path(__file__).parents[2] / "benchmarks" / "batchnorm.py"


def pair(**kwargs):
    """A Keras and a fused layer with the same random weights and moving statistics."""
    rng = np.random.default_rng(0)
    plain, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    shape = kwargs.pop("input_shape", SHAPE)
    plain.build(shape)
    fused.build(shape)
    weights = [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in plain.get_weights()]
    plain.set_weights(weights)
    fused.set_weights(weights)
    return plain, fused


def run(layer, x, training):
    """Output, gradients (input, then trainable weights) and moving statistics after one call."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        # Unequal weights per element: a plain sum's gradient through batch norm is zero.
        weights = tf.reshape(tf.range(tf.size(y), dtype="float32"), tf.shape(y)) / tf.cast(tf.size(y), "float32")
        loss = tf.reduce_sum(tf.cast(y, "float32") * weights)
    grads = tape.gradient(loss, [x, *layer.trainable_variables])
    moving = [layer.moving_mean.numpy(), layer.moving_variance.numpy()]
    return y.numpy().astype("float32"), [g.numpy() for g in grads], moving


def op_types(layer, x, training) -> set[str]:
    graph = tf.function(lambda t: layer(t, training=training)).get_concrete_function(
        tf.TensorSpec(x.shape, x.dtype)).graph
    return {op.type for op in graph.get_operations()}


def inputs(shape=SHAPE, seed=1):
    return np.random.default_rng(seed).normal(3.0, 2.0, shape).astype("float32")


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.0, "epsilon": 1.001e-5}, {"scale": False},
                                    {"center": False, "momentum": 0.5}])
def test_training_matches_keras_through_the_fused_op(kwargs):
    plain, fused = pair(**kwargs)
    x = inputs()
    assert "FusedBatchNormV3" in op_types(fused, x, True)
    assert "FusedBatchNormV3" not in op_types(plain, x, True)
    (y_plain, g_plain, m_plain), (y_fused, g_fused, m_fused) = run(plain, x, True), run(fused, x, True)
    np.testing.assert_allclose(y_fused, y_plain, atol=2e-5)
    assert len(g_fused) == len(g_plain)
    for a, b in zip(g_fused, g_plain):
        # Summation order: Keras' own gamma gradient is 4e-5 off its float64 value here, the fused one 1e-5.
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    # The moving variance is the biased one, as Keras keeps it (the op returns n / (n - 1) times it).
    for a, b in zip(m_fused, m_plain):
        np.testing.assert_allclose(a, b, rtol=1e-5)


@pytest.mark.parametrize("case", ["inference", "frozen", "rank 2", "small epsilon", "channels first"])
def test_keras_path_where_the_fused_op_would_differ(case):
    kwargs, shape, training = {}, SHAPE, True
    if case == "inference":
        training = False
    if case == "rank 2":
        shape = (8, 4)
    if case == "small epsilon":
        kwargs = {"epsilon": 1e-6}  # the fused op would silently use 1.001e-5
    if case == "channels first":
        kwargs = {"axis": 1}
    plain, fused = pair(**kwargs, input_shape=shape)
    if case == "frozen":
        plain.trainable = fused.trainable = False
    x = inputs(shape)
    assert "FusedBatchNormV3" not in op_types(fused, x, training)
    (y_plain, _, m_plain), (y_fused, _, m_fused) = run(plain, x, training), run(fused, x, training)
    np.testing.assert_array_equal(y_fused, y_plain)
    for a, b in zip(m_fused, m_plain):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_policy_feeds_the_op_16_bit_and_matches_keras(policy):
    keras.config.set_dtype_policy(policy)
    try:
        plain, fused = pair()
    finally:
        keras.config.set_dtype_policy("float32")
    dtype = policy.removeprefix("mixed_")
    x = tf.cast(inputs(), dtype)
    # No cast of the activation to float32 and back: the op itself takes the 16-bit input.
    graph = tf.function(lambda t: fused(t, training=True)).get_concrete_function(
        tf.TensorSpec(x.shape, x.dtype)).graph
    fused_ops = [op for op in graph.get_operations() if op.type == "FusedBatchNormV3"]
    assert [op.get_attr("T") for op in fused_ops] == [tf.as_dtype(dtype)]
    assert [op.get_attr("U") for op in fused_ops] == [tf.float32]
    (y_plain, g_plain, m_plain), (y_fused, g_fused, m_fused) = run(plain, x, True), run(fused, x, True)
    assert fused.moving_variance.dtype == "float32"
    # Both compute in float32 and round once to the 16-bit output: equal but for summation order,
    # which moves an output by at most one step of the 16-bit format, and rarely (1 of 960 here).
    step = float(np.finfo(np.float16).eps) if dtype == "float16" else 2.0**-7
    np.testing.assert_allclose(y_fused, y_plain, rtol=step, atol=0)
    assert np.mean(y_fused == y_plain) > 0.99
    for a, b in zip(g_fused, g_plain):
        np.testing.assert_allclose(np.asarray(a, "float32"), np.asarray(b, "float32"), rtol=1e-2, atol=1e-3)
    for a, b in zip(m_fused, m_plain):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_a_model_trains_the_same_and_round_trips_with_safe_mode(tmp_path):
    def model(norm):
        keras.utils.set_random_seed(0)
        inp = keras.Input((6, 6, 3))
        x = keras.layers.Conv2D(4, 3, padding="same")(inp)
        x = keras.layers.ReLU()(norm(momentum=0.5)(x))
        out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
        net = keras.Model(inp, out)
        net.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return net

    x, y = inputs((32, 6, 6, 3)), np.arange(32) % 3
    plain, fused = model(keras.layers.BatchNormalization), model(FusedBatchNormalization)
    fused.set_weights(plain.get_weights())
    for net in (plain, fused):
        net.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)
    fused.save(tmp_path / "fused.keras")
    loaded = keras.saving.load_model(tmp_path / "fused.keras", safe_mode=True)
    assert isinstance(loaded.layers[2], FusedBatchNormalization)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), fused.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("name, kwargs", [("resnet50", {}), ("resnet20", {}), ("mobilenetv2", {}),
                                          ("mobilenetv1", {}), ("convnet", {"batch_norm": True}),
                                          ("vgg11_bn", {"head": "avg"})])
def test_the_builders_use_it(name, kwargs):
    model = tfresnet.create_model(name, input_shape=(32, 32, 3), num_classes=3, **kwargs)
    norms = [layer for layer in iter_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is FusedBatchNormalization for layer in norms)


def test_the_benchmark_compares_like_with_like(tmp_path):
    """`benchmarks/batchnorm.py`'s Keras twin differs only in its batch-norm class, and --smoke saves both rates."""
    spec = importlib.util.spec_from_file_location("batchnorm_benchmark", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = tfresnet.create_model("resnet20", input_shape=(28, 28, 1), num_classes=10)
    twin = bench.with_keras_batch_norm(model)
    kinds = [type(layer) for layer in iter_layers(twin) if isinstance(layer, keras.layers.BatchNormalization)]
    assert kinds and set(kinds) == {keras.layers.BatchNormalization}
    assert [w.path for w in twin.weights] == [w.path for w in model.weights]
    x = inputs((4, 28, 28, 1))
    np.testing.assert_allclose(twin(x, training=False), model(x, training=False), atol=1e-6)

    out = tmp_path / "batchnorm.json"
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    row, = json.loads(out.read_text())["rows"]
    assert row["model"] == "convnet" and row["keras"]["median"] > 0 and row["fused"]["median"] > 0
    assert row["ratio"] == pytest.approx(row["fused"]["median"] / row["keras"]["median"])
