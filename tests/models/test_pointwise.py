"""`TunedConv2D` trains as `keras.layers.Conv2D` does, with its 1x1 weight gradient from the chosen kernel.

Each case compares the layer's outputs and gradients with Conv2D's on the same weights, and reads
the traced gradient's op types: a layer that silently kept TensorFlow's kernel would pass an
equality test too.
"""

import importlib.util
import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfresnet.models import pointwise
from tfresnet.models.layers import TunedConv2D
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.session import compile_model

SHAPE = (4, 9, 9, 6)
BENCHMARK = pathlib.Path(__file__).parents[2] / "benchmarks" / "pointwise_grad.py"


def pair(kernel_size=1, strides=1, **kwargs):
    """A Conv2D and a TunedConv2D with the same random weights."""
    plain = keras.layers.Conv2D(5, kernel_size, strides=strides, padding="same", **kwargs)
    tuned = TunedConv2D(5, kernel_size, strides=strides, padding="same", **kwargs)
    plain.build(SHAPE)
    tuned.build(SHAPE)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in plain.get_weights()]
    plain.set_weights(weights)
    tuned.set_weights(weights)
    return plain, tuned


def outputs_and_grads(layer, x):
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.cast(y, "float32") ** 2)  # dy = 2y: unequal per element
        return y, tape.gradient(loss, [x, *layer.trainable_variables])

    y, grads = step(x)
    graph = step.get_concrete_function(x).graph
    return y.numpy(), [g.numpy() for g in grads], {op.type for op in graph.get_operations()}


def inputs(dtype="float32"):
    return tf.cast(np.random.default_rng(1).normal(size=SHAPE).astype("float32"), dtype)


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("use_bias", [True, False])
def test_matmul_weight_gradient_equals_tensorflows(strides, use_bias):
    plain, tuned = pair(strides=strides, use_bias=use_bias)
    tuned.weight_grad = "matmul"
    x = inputs()
    y_plain, g_plain, ops_plain = outputs_and_grads(plain, x)
    y_tuned, g_tuned, ops_tuned = outputs_and_grads(tuned, x)
    np.testing.assert_array_equal(y_tuned, y_plain)  # the forward op is TensorFlow's own
    assert len(g_tuned) == len(g_plain) == (3 if use_bias else 2)
    for a, b in zip(g_tuned, g_plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert "Conv2DBackpropFilter" in ops_plain
    assert "Conv2DBackpropFilter" not in ops_tuned and "MatMul" in ops_tuned


@pytest.mark.parametrize("case", ["conv", "3x3", "dilated"])
def test_tensorflows_kernel_where_asked_or_where_the_product_is_not_one_matmul(case):
    kwargs = {"kernel_size": 3} if case == "3x3" else {"dilation_rate": 2} if case == "dilated" else {}
    plain, tuned = pair(**kwargs)
    tuned.weight_grad = "conv" if case == "conv" else "matmul"
    y_plain, g_plain, _ = outputs_and_grads(plain, inputs())
    y_tuned, g_tuned, ops = outputs_and_grads(tuned, inputs())
    assert "Conv2DBackpropFilter" in ops
    np.testing.assert_array_equal(y_tuned, y_plain)
    for a, b in zip(g_tuned, g_plain):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("timed", ["conv", "matmul"])
def test_auto_times_each_shape_once_and_trains_with_the_faster(monkeypatch, timed):
    calls = []
    monkeypatch.setattr(pointwise, "_choices", {})
    monkeypatch.setattr(pointwise, "_MIN_TUNED_MACS", 0)
    monkeypatch.setattr(pointwise, "_time_both", lambda *args: calls.append(args) or timed)
    _, tuned = pair()
    for _ in range(2):  # a second trace of the same shape reuses the choice
        *_, ops = outputs_and_grads(tuned, inputs())
    assert len(calls) == 1
    assert ("Conv2DBackpropFilter" in ops) == (timed == "conv")
    assert list(pointwise.choices().values()) == [timed]
    assert list(pointwise.choices()) == [(SHAPE, (1, 1, 6, 5), 1, "float32")]


def test_auto_really_times_both_kernels_and_keeps_tensorflows_for_tiny_products(monkeypatch):
    monkeypatch.setattr(pointwise, "_choices", {})
    assert pointwise.choose(SHAPE, (1, 1, 6, 5), 1, tf.float32) == "conv"  # 2,430 multiply-adds: not timed
    big = (None, 28, 28, 128)  # an unknown batch is timed at 32: 411 million multiply-adds
    assert pointwise.choose(big, (1, 1, 128, 256), 1, tf.float32) in ("conv", "matmul")
    assert (tuple(SHAPE), (1, 1, 6, 5), 1, "float32") in pointwise.choices()
    assert ((32, 28, 28, 128), (1, 1, 128, 256), 1, "float32") in pointwise.choices()


def test_deterministic_ops_keep_tensorflows_kernel_untimed(monkeypatch):
    monkeypatch.setattr(pointwise, "_choices", {})
    monkeypatch.setattr(pointwise, "_MIN_TUNED_MACS", 0)
    monkeypatch.setattr("tfresnet.tf_compat.op_determinism_enabled", lambda: True)
    monkeypatch.setattr(pointwise, "_time_both", lambda *args: pytest.fail("timed under op determinism"))
    _, tuned = pair()
    *_, ops = outputs_and_grads(tuned, inputs())
    assert "Conv2DBackpropFilter" in ops


def test_a_frozen_layer_times_nothing_and_runs_keras_own_code(monkeypatch):
    monkeypatch.setattr(pointwise, "_MIN_TUNED_MACS", 0)
    monkeypatch.setattr(pointwise, "_time_both", lambda *args: pytest.fail("timed a frozen layer"))
    plain, tuned = pair()
    tuned.trainable = False
    y_plain, (dx_plain, *_), _ = outputs_and_grads(plain, inputs())
    y_tuned, grads, ops = outputs_and_grads(tuned, inputs())
    assert len(grads) == 1 and "MatMul" not in ops  # the input's gradient only, TensorFlow's own
    np.testing.assert_array_equal(y_tuned, y_plain)
    np.testing.assert_array_equal(grads[0], dx_plain)


def test_op_determinism_is_read_from_tensorflow():
    code = ("import tensorflow as tf; from tfresnet import tf_compat; a = tf_compat.op_determinism_enabled(); "
            "tf.config.experimental.enable_op_determinism(); print(a, tf_compat.op_determinism_enabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.split() == ["False", "True"]


def test_bfloat16_matmul_gradient_matches_conv2d():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        plain, tuned = pair()
    finally:
        keras.config.set_dtype_policy("float32")
    tuned.weight_grad = "matmul"
    x = inputs("bfloat16")
    y_plain, g_plain, _ = outputs_and_grads(plain, x)
    y_tuned, g_tuned, ops = outputs_and_grads(tuned, x)
    assert "Conv2DBackpropFilter" not in ops
    np.testing.assert_array_equal(y_tuned.astype("float32"), y_plain.astype("float32"))
    for tuned_grad, plain_grad in zip(g_tuned, g_plain):
        assert tuned_grad.dtype == plain_grad.dtype
        a, b = np.asarray(tuned_grad, "float32"), np.asarray(plain_grad, "float32")
        # Each is a sum of 324 bfloat16 products, rounded in a different order: within 2% of the
        # gradient's scale (a wrong gradient, e.g. the input's transpose, is off by its whole scale).
        assert np.max(np.abs(a - b)) <= 0.02 * np.max(np.abs(b))


def test_compile_model_sets_each_layers_kernel_from_the_config():
    inputs_ = keras.Input((8, 8, 3))
    inner = keras.Sequential([TunedConv2D(4, 1)], name="inner")
    model = keras.Model(inputs_, keras.layers.GlobalAveragePooling2D()(inner(TunedConv2D(4, 1)(inputs_))))
    config = TrainConfig(model="convnet", pointwise_weight_grad="matmul", verbose=0).validate()
    compile_model(model, config, steps_per_epoch=1, epochs=1, peak=0.01)
    tuned = [layer for layer in [*model.layers, *inner.layers] if isinstance(layer, TunedConv2D)]
    assert [layer.weight_grad for layer in tuned] == ["matmul", "matmul"]


def test_a_bad_choice_names_the_value():
    with pytest.raises(ConfigError, match="pointwise_weight_grad.*'fast'"):
        TrainConfig(pointwise_weight_grad="fast").validate()


def test_saved_and_loaded_with_safe_mode(tmp_path):
    _, tuned = pair()
    tuned.weight_grad = "matmul"
    model = keras.Sequential([keras.Input(SHAPE[1:]), tuned])
    path = tmp_path / "tuned.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.layers[0]
    assert isinstance(layer, TunedConv2D)
    assert layer.weight_grad == "auto"  # how a process trains, not part of the model
    np.testing.assert_array_equal(loaded(inputs()).numpy(), model(inputs()).numpy())


def test_the_benchmark_times_both_kernels_and_both_steps(tmp_path):
    """`benchmarks/pointwise_grad.py --smoke` saves each 1x1 shape's two kernel speeds and both train steps."""
    spec = importlib.util.spec_from_file_location("pointwise_benchmark", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "pointwise_grad.json"
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["row"]
    assert row["model"] == "mobilenetv2" and row["dtype"] == "float32"
    # MobileNetV2's 1x1 convolutions: 17 projections, 16 expansions and Conv_1, all stride 1.
    assert sum(k["count"] for k in row["kernels"]) == 34 and len(row["kernels"]) > 10
    assert all(k["conv_gflops"] > 0 and k["matmul_gflops"] > 0 and k["auto"] in ("conv", "matmul")
               for k in row["kernels"])
    assert row["conv"]["median"] > 0 and row["auto"]["median"] > 0
    assert row["ratio"] == pytest.approx(row["auto"]["median"] / row["conv"]["median"])
