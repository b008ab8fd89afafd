"""Tests of quantized TFLite exports (`tfresnet.export.quantize`): what a phone deployment relies on.

One small convnet, trained for a moment on mnist-sample, is saved as a run and exported once in
each quantization. The files are read with LiteRT's interpreter: their tensor types, their
sizes against the float32 file, their uint8 interface, and their agreement with the Keras model
on the run's 1,000 held-out test digits (the report's check, recomputed here).
"""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np
import pytest

import tfresnet
from tfresnet import cli
from tfresnet import export as ex
from tfresnet.export import formats, quantize
from tfresnet.runs import RunDir
from tfresnet.training import TrainConfig

MODES = ("float32", "float16", "dynamic", "int8", "int8-uint8io")
REPRESENTATIVE = 50
CHECKED = 300  # of the run's 1,000 test digits


def _digits():
    with np.load(os.path.join(os.path.dirname(tfresnet.__file__), "data", "mnist_sample.npz")) as d:
        return {key: d[key] for key in d.files}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """keras.io's MNIST convnet trained one pass over 2,000 sample digits, saved as a run."""
    keras.utils.set_random_seed(0)
    digits = _digits()
    model = tfresnet.create_model("convnet", input_shape=(28, 28, 1), num_classes=10, preprocessing="auto")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", jit_compile=False)
    model.fit(digits["x_train"][:2000, ..., None].astype("float32"), digits["y_train"][:2000], batch_size=50,
              epochs=1, verbose=0)
    run = RunDir(tmp_path_factory.mktemp("runs") / "mnist")
    os.makedirs(run.path)
    run.save_model(model)
    run.write_class_names([str(i) for i in range(10)])
    run.write_config(TrainConfig(model="convnet", data="mnist-sample", validation_split=0.1, seed=0))
    return run, model


@pytest.fixture(scope="module")
def exports(trained_run):
    """mode -> (path, report) for each of `MODES`, exported through `export_run`."""
    run, _ = trained_run
    out = {"float32": (ex.export_run(run.path, "tflite", verbose=False), None)}
    for mode in MODES[1:]:
        name, _, io = mode.partition("-")
        options = quantize.QuantizeOptions(name, representative_images=REPRESENTATIVE, uint8_io=bool(io),
                                           check_images=CHECKED)
        path = ex.export_run(run.path, "tflite", quantize=options, verbose=False)
        with open(os.path.splitext(path)[0] + ".json") as f:
            out[mode] = (path, json.load(f))
    return out


def _test_digits(n=200):
    digits = _digits()
    return digits["x_test"][:n, ..., None], digits["y_test"][:n]


def test_int8_export_computes_in_int8_and_keeps_the_top_class(trained_run, exports):
    _, model = trained_run
    path, report = exports["int8"]
    assert path.endswith(os.path.join("export", "model_int8.tflite"))
    # Float only at the edges: the uint8 input's cast, and the dequantized probabilities.
    types = quantize.tensor_types(path)
    assert types["int8"] >= 10 and types["float32"] == 2
    assert set(types) == {"uint8", "float32", "int8", "int32", "int64"}
    assert os.path.getsize(path) < 0.4 * os.path.getsize(exports["float32"][0])
    runner = formats.tflite_interpreter(path).get_signature_runner(ex.SERVING_DEFAULT)
    assert runner.get_input_details()["images"]["dtype"] == np.uint8
    # The report's check: the run's own held-out split, not the representative training images.
    check = report["check"]
    assert (check["split"], check["n"]) == ("test", CHECKED)
    assert (report["representative_split"], report["representative_images"]) == ("train", REPRESENTATIVE)
    assert check["top1_agreement"] >= 0.95 and check["keras_accuracy"] > 0.8
    assert abs(check["accuracy_drop"]) < 0.03
    images, labels = _test_digits()
    again = ex.verify.agreement(path, model, images, labels)
    assert again["top1_agreement"] >= 0.95 and again["max_abs_diff"] < 0.5


def test_float16_file_is_half_and_dynamic_a_quarter(exports):
    size = {mode: os.path.getsize(exports[mode][0]) for mode in MODES}
    assert 0.4 < size["float16"] / size["float32"] < 0.6
    assert size["dynamic"] / size["float32"] < 0.4
    assert "float16" in quantize.tensor_types(exports["float16"][0])
    assert {"int8", "float32"} <= set(quantize.tensor_types(exports["dynamic"][0]))  # int8 weights, float maths
    for mode in ("float16", "dynamic"):
        report = exports[mode][1]
        assert report["representative_images"] == 0 and report["check"]["top1_agreement"] >= 0.98, mode


def test_uint8_io_reads_back_as_probabilities(trained_run, exports):
    _, model = trained_run
    path, report = exports["int8-uint8io"]
    assert report["io"] == "uint8 in, uint8 out"
    # Integer-only: not one float tensor; the input's quantization is the identity (raw pixels).
    assert not {"float32", "float16"} & set(quantize.tensor_types(path))
    assert report["signature"]["images"] == {"dtype": "uint8", "scale": 1.0, "zero_point": 0}
    runner = formats.tflite_interpreter(path).get_signature_runner(ex.SERVING_DEFAULT)
    details = runner.get_output_details()["probabilities"]
    scale, zero_point = details["quantization"]
    assert details["dtype"] == np.uint8 and scale > 0
    images, _ = _test_digits(32)
    raw = runner(images=images)["probabilities"]
    assert raw.dtype == np.uint8
    # run_tflite dequantizes: probabilities again, within a few of the output's steps of Keras'.
    got = formats.run_tflite(path, images)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(got["probabilities"], (raw.astype(np.float32) - zero_point) * scale)
    np.testing.assert_allclose(got["probabilities"].sum(-1), 1.0, atol=0.05)
    assert np.mean(got["probabilities"].argmax(-1) == expected.argmax(-1)) >= 0.9
    np.testing.assert_array_equal(got["class_id"], got["probabilities"].argmax(-1))


def test_a_missed_budget_fails_in_one_line_and_writes_nothing(trained_run, exports, tmp_path, monkeypatch, capsys):
    run, model = trained_run
    # The run's model with its classes shifted by one, against a file of the unshifted one: the
    # file keeps almost none of the Keras model's top classes.
    shifted = RunDir(tmp_path / "shifted")
    shutil.copytree(run.path, shifted.path, ignore=shutil.ignore_patterns("export"))
    head = model.layers[-1]
    kernel, bias = head.get_weights()
    head.set_weights([np.roll(kernel, 1, axis=-1), np.roll(bias, 1)])
    try:
        shifted.save_model(model)
    finally:
        head.set_weights([kernel, bias])
    with open(exports["float32"][0], "rb") as f:
        unshifted = f.read()
    monkeypatch.setattr(quantize, "convert_tflite", lambda *args, **kwargs: unshifted)
    out = tmp_path / "out" / "model.tflite"
    code = cli.main(["export", shifted.path, "--format", "tflite", "--quantize", "dynamic", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0
    assert "failed its check, nothing written" in err and "(min 0.95)" in err
    assert not out.parent.exists()


@pytest.mark.parametrize("argv, message", [
    (["--quantize", "int4"], "invalid choice: 'int4'"),
    (["--quantize", "int8", "--representative-images", "0"], "--representative-images must be an integer >= 1"),
    (["--quantize", "int8", "--min-agreement", "1.01"], "--min-agreement is a share of images, in [0, 1]"),
    (["--quantize", "float16", "--uint8-io"], "--uint8-io needs full-integer quantization"),
    (["--representative-images", "10"], "applies to quantized exports only"),
])
def test_bad_options_are_refused_before_any_work(trained_run, argv, message, tmp_path, capsys):
    run, _ = trained_run
    out = tmp_path / "model.tflite"
    assert cli.main(["export", run.path, "--format", "tflite", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.splitlines()[-1].startswith(("error:", "tfresnet export: error:"))
    assert not out.exists()


def test_quantize_needs_the_tflite_format(trained_run):
    run, _ = trained_run
    with pytest.raises(ValueError, match="--quantize applies to --format tflite only"):
        ex.export_run(run.path, "saved_model", quantize="int8")
