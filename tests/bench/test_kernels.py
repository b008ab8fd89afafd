"""The matrix-kernel ceiling: every convolution counted once per occurrence, each pass timed alone."""

import json
import types

import keras
import numpy as np
import pytest

from tfresnet import create_model
from tfresnet.bench import kernels, trace
from tfresnet.cli import main
from tfresnet.models.common import iter_layers
from tfresnet.models.profile import count_macs


@pytest.fixture(scope="module")
def resnet20():
    return create_model("resnet20", input_shape=(32, 32, 3), num_classes=10)


def test_ceiling_counts_every_matrix_layer_once(resnet20):
    ceiling = kernels.kernel_ceiling(resnet20, 4, seconds=0.001, repeats=1)
    matrix_layers = [layer for layer in iter_layers(resnet20) if kernels._op(layer) is not None]
    assert sum(row["count"] for row in ceiling["layers"]) == len(matrix_layers) == 20
    assert len(ceiling["layers"]) < len(matrix_layers)  # same-shape convolutions timed once
    assert ceiling["macs"] == count_macs(resnet20)
    step = sum(row["count"] * (row[f"{p}_seconds"] or 0.0) for row in ceiling["layers"] for p in kernels.PASSES)
    assert ceiling["step_seconds"] == pytest.approx(step)
    assert ceiling["ceiling_examples_per_s"] == pytest.approx(4 / step)
    # Only the input reaches the stem: training computes no gradient with respect to it.
    by_name = {row["layer"]: row for row in ceiling["layers"]}
    assert by_name["conv1_conv"]["input_grad_seconds"] is None
    assert all(row["input_grad_seconds"] > 0 for name, row in by_name.items() if name != "conv1_conv")
    text = kernels.format_ceiling(ceiling, top=3)
    assert "ceiling" in text and text.count("\n| conv") == 3


@pytest.mark.parametrize("wrt, expected", [(None, lambda x, k, dy: x @ k), (0, lambda x, k, dy: dy @ k.T),
                                           (1, lambda x, k, dy: x.T @ dy)], ids=["forward", "input", "weight"])
def test_each_pass_computes_its_own_product(wrt, expected):
    rng = np.random.default_rng(0)
    x, k, dy = (rng.standard_normal(shape).astype("float32") for shape in ((5, 3), (3, 4), (5, 4)))
    fn = kernels._compiled(keras.ops.matmul, wrt)
    got = keras.ops.convert_to_numpy(fn(x, k) if wrt is None else fn(x, k, dy))
    np.testing.assert_allclose(got, expected(x, k, dy), rtol=1e-5)


@pytest.mark.parametrize("wrt, op_type", [(None, "Conv2D"), (0, "Conv2DBackpropInput"),
                                          (1, "Conv2DBackpropFilter")])
def test_a_gradient_pass_runs_its_kernel_alone(wrt, op_type, tmp_path):
    # The forward product a tape records is pruned when only the gradient is returned; were it
    # not, the ceiling would count every forward convolution three times.
    x = np.ones((2, 8, 8, 4), "float32")
    k = np.ones((3, 3, 4, 4), "float32")
    fn = kernels._compiled(lambda a, b: keras.ops.conv(a, b, padding="same"), wrt)
    args = (x, k) if wrt is None else (x, k, x)
    fn(*args)
    profile = trace.profile_steps(lambda: fn(*args), str(tmp_path), model=types.SimpleNamespace(layers=[]), steps=1)
    convolutions = [t for t in profile["op_seconds"] if trace.MATRIX_OPS.search(t)]
    assert [t.rpartition("Native")[2] for t in convolutions] == [op_type]


@pytest.mark.slow
def test_throughput_suite_reports_the_ceiling(tmp_path, capsys):
    assert main(["bench", "--suite", "throughput", "--smoke", "--ceiling", "--out-dir", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "throughput.json").read_text())["rows"]
    assert row["ceiling"]["macs"] == row["macs"]
    assert row["ceiling"]["batch_size"] == row["batch_size"] and row["ceiling"]["dtype"] == "float32"
    assert row["fraction_of_ceiling"] == pytest.approx(
        row["tfresnet_examples_per_s"] / row["ceiling"]["ceiling_examples_per_s"])
    assert row["ceiling_fraction_of_peak"] == pytest.approx(
        row["tfresnet_fraction_of_peak"] / row["fraction_of_ceiling"])
    out = capsys.readouterr().out
    assert "### Matrix-kernel ceiling" in out and "### resnet20's slowest kernels" in out
