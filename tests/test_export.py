"""Tests of `tfresnet.export`: what a serving client relies on.

The SavedModel is checked in a fresh Python process that imports only TensorFlow (no tfresnet,
no Keras model code), the way TF Serving or another team would load it: its `serving_default`
must match the Keras model on the same uint8 batch, its `serving_bytes` must give the same answer
for PNG copies of the batch, and `saved_model_cli` must list both signatures. TFLite and ONNX
exports are run with their own runtimes and compared with Keras.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfresnet
from tfresnet import cli
from tfresnet import export as ex
from tfresnet.models.layers import Preprocess

RGB_NAMES = ["cat", "dog", "bird"]
GRAY_NAMES = ["zero", "one", "two", "three"]
N_IMAGES = 8

# Runs in a fresh interpreter: loads each SavedModel with tf.saved_model.load only.
FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    for case in json.load(open(sys.argv[1])):
        loaded = tf.saved_model.load(case["export_dir"])
        images = np.load(case["images"])
        raw = loaded.signatures["serving_default"](images=tf.constant(images))
        def encoded(kind):
            files = [open(p, "rb").read() for p in case[kind]]
            return loaded.signatures["serving_bytes"](image_bytes=tf.constant(files))
        png, jpeg = encoded("png"), encoded("jpeg")
        np.savez(
            case["result"],
            signatures=np.array(sorted(loaded.signatures)),
            probabilities=raw["probabilities"].numpy(),
            class_id=raw["class_id"].numpy(),
            class_name=raw["class_name"].numpy().astype(str),
            png_probabilities=png["probabilities"].numpy(),
            png_class_name=png["class_name"].numpy().astype(str),
            jpeg_class_id=jpeg["class_id"].numpy(),
        )
    """
)


def _smooth_images(n, height, width, channels, seed):
    """Smooth random images (sums of plane waves): JPEG keeps them close, unlike pixel noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    images = np.empty((n, height, width, channels), np.float64)
    for i in range(n):
        for c in range(channels):
            fy, fx, phase = rng.uniform(-6, 6), rng.uniform(-6, 6), rng.uniform(0, 2 * np.pi)
            images[i, :, :, c] = 128 + 110 * np.sin(fy * y + fx * x + phase) * rng.uniform(0.3, 1.0)
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


@keras.saving.register_keras_serializable(package="test_export")
class _TrainerOnlySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Stands for the trainer's learning-rate schedule, which only `tfresnet.training` registers."""

    def __call__(self, step):
        return 0.01

    def get_config(self):
        return {}


_TRAINER_ONLY = "test_export>_TrainerOnlySchedule"


def _make_run(run_dir, input_shape, class_names, images, resize_mode="resize"):
    """Fakes a trainer's run directory around a fresh, untrained model; returns the model.

    Like the trainer's, the saved model is compiled with an optimizer whose schedule is a custom
    object; `gray` unregisters it while exporting, as in a process that never imported training.
    """
    model = tfresnet.create_model(
        "resnet20", input_shape=input_shape, num_classes=len(class_names), preprocessing="auto"
    )
    # An untrained head gives every image nearly the same probabilities. Rescale and centre it on
    # the test images so their logits spread (std 2): the comparisons below are then sensitive,
    # and the top class varies from image to image.
    head = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    kernel, _ = head.get_weights()
    features = keras.ops.convert_to_numpy(keras.Model(model.input, head.input)(images, training=False))
    logits = features @ kernel
    scale = 2.0 / max(float(np.std(logits - logits.mean(0))), 1e-6)
    head.set_weights([kernel * scale, -logits.mean(0) * scale])
    model.compile(optimizer=keras.optimizers.SGD(_TrainerOnlySchedule()), loss="sparse_categorical_crossentropy")
    os.makedirs(run_dir, exist_ok=True)
    model.save(os.path.join(run_dir, "model.keras"))
    with open(os.path.join(run_dir, "class_names.json"), "w") as f:
        json.dump(class_names, f)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"model": "resnet20", "image_size": input_shape[0], "resize_mode": resize_mode}, f)
    return model


def _keras_probabilities(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def _encode(images, directory, fmt, **options):
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = os.path.join(directory, f"{i}.{fmt.lower()}")
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path, format=fmt, **options)
        paths.append(path)
    return paths


def _popen(argv):
    # One thread per pool: these processes run tiny batches beside the test process, and
    # TensorFlow's default pools (one thread per core each) would only fight it for the CPU.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(process, timeout=300):
    """(returncode, stdout, stderr) of a background process, read once."""
    if not hasattr(process, "outputs"):
        process.outputs = process.communicate(timeout=timeout)
    return (process.returncode, *process.outputs)


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    """A 32x32 RGB run exported with `export_saved_model`."""
    run_dir = str(tmp_path_factory.mktemp("rgb_run"))
    images = _smooth_images(N_IMAGES, 32, 32, 3, seed=1)
    model = _make_run(run_dir, (32, 32, 3), RGB_NAMES, images)
    export_dir = ex.export_saved_model(model, os.path.join(run_dir, "export", "saved_model"), RGB_NAMES)
    return {"run_dir": run_dir, "model": model, "export_dir": export_dir, "images": images, "names": RGB_NAMES}


@pytest.fixture(scope="module")
def gray(tmp_path_factory):
    """A 28x28 one-channel run exported through the CLI, as a user would."""
    run_dir = str(tmp_path_factory.mktemp("gray_run"))
    images = _smooth_images(N_IMAGES, 28, 28, 1, seed=2)
    model = _make_run(run_dir, (28, 28, 1), GRAY_NAMES, images)
    stdout, stderr = io.StringIO(), io.StringIO()
    registered = keras.saving.get_custom_objects().pop(_TRAINER_ONLY)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            rc = cli.main(["export", run_dir, "--format", "saved_model"])
    finally:
        keras.saving.get_custom_objects()[_TRAINER_ONLY] = registered
    return {
        "run_dir": run_dir,
        "model": model,
        "export_dir": os.path.join(run_dir, "export", "saved_model"),
        "images": images,
        "names": GRAY_NAMES,
        "cli_rc": rc,
        "cli_stdout": stdout.getvalue(),
        "cli_stderr": stderr.getvalue(),
    }


@pytest.fixture(scope="module")
def background(rgb, gray, tmp_path_factory):
    """Starts FRESH_PROCESS_SCRIPT on both exports and `saved_model_cli show --all` on one.

    Each TensorFlow start-up costs seconds on a small machine; starting both processes as soon
    as the exports exist lets them run beside the in-process tests.
    """
    if gray["cli_rc"] != 0:
        pytest.fail(f"the CLI export failed: {gray['cli_stderr'][-2000:]}")
    work = tmp_path_factory.mktemp("fresh")
    cases = []
    for key, case in (("rgb", rgb), ("gray", gray)):
        np.save(work / f"{key}_images.npy", case["images"])
        cases.append({
            "export_dir": case["export_dir"],
            "images": str(work / f"{key}_images.npy"),
            "png": _encode(case["images"], str(work / key / "png"), "PNG"),
            "jpeg": _encode(case["images"], str(work / key / "jpeg"), "JPEG", quality=95),
            "result": str(work / f"{key}_result.npz"),
        })
    (work / "cases.json").write_text(json.dumps(cases))
    (work / "check.py").write_text(FRESH_PROCESS_SCRIPT)
    processes = {"fresh": _popen([sys.executable, str(work / "check.py"), str(work / "cases.json")])}
    bin_dir = os.path.dirname(sys.executable)
    cli_path = shutil.which("saved_model_cli", path=bin_dir) or shutil.which("saved_model_cli")
    if cli_path:
        processes["saved_model_cli"] = _popen([cli_path, "show", "--all", "--dir", rgb["export_dir"]])
    yield {"processes": processes, "results": {"rgb": cases[0]["result"], "gray": cases[1]["result"]}}
    for process in processes.values():
        if process.poll() is None:  # a test failed before reading it
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def fresh_results(background):
    rc, _, stderr = _finish(background["processes"]["fresh"])
    assert rc == 0, stderr[-3000:]
    return {key: dict(np.load(path)) for key, path in background["results"].items()}


@pytest.fixture(scope="module")
def predictor(rgb):
    return ex.load_exported(rgb["export_dir"])


def _case(key, rgb, gray):
    return {"rgb": rgb, "gray": gray}[key]


# Order matters for speed only: the first tests set up both exports, which starts their
# fresh-process checks; the tests reading those checks come last, so the checks run meanwhile.

# --------------------------------------------------------------------------- CLI


def test_cli_exports_a_run(gray, background):
    assert gray["cli_rc"] == 0, gray["cli_stderr"][-2000:]
    assert os.path.isfile(os.path.join(gray["export_dir"], "saved_model.pb"))
    assert f"to {gray['export_dir']}" in gray["cli_stdout"]
    assert "max |p_saved_model - p_keras|" in gray["cli_stdout"]


@pytest.mark.parametrize("key", ["rgb", "gray"])
def test_class_names_are_an_asset(key, rgb, gray):
    case = _case(key, rgb, gray)
    with open(os.path.join(case["export_dir"], "assets", ex.CLASS_NAMES_ASSET), encoding="utf-8") as f:
        assert f.read().splitlines() == case["names"]


def test_cli_rejects_missing_run_dir(tmp_path, capsys):
    missing = str(tmp_path / "no_such_run")
    assert cli.main(["export", missing]) != 0
    assert f"{missing} does not exist" in capsys.readouterr().err

    partial = tmp_path / "partial_run"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    assert cli.main(["export", str(partial)]) != 0
    assert "missing model.keras, class_names.json" in capsys.readouterr().err


# --------------------------------------------------------------------------- input checks


def test_raw_signature_rejects_wrong_input(predictor):
    serve = predictor.signatures[ex.SERVING_DEFAULT]
    with pytest.raises(tf.errors.InvalidArgumentError, match="uint8"):
        serve(images=tf.zeros([1, 32, 32, 3], tf.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[1,32,32,1\].*\[\?,32,32,3\]"):
        serve(images=tf.zeros([1, 32, 32, 1], tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[2,16,16,3\].*\[\?,32,32,3\]"):
        serve(images=tf.zeros([2, 16, 16, 3], tf.uint8))


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 32, 32, 3), np.float32), r"uint8.*Received dtype=float32"),
        (np.zeros((32, 32, 3), np.uint8), r"\[N, 32, 32, 3\].*images\[None\].*Received shape=\(32, 32, 3\)"),
        (np.zeros((2, 32, 32, 1), np.uint8), r"3 channel.*Received shape=\(2, 32, 32, 1\)"),
        (np.zeros((2, 64, 64, 3), np.uint8), r"32x32.*Received shape=\(2, 64, 64, 3\)"),
    ],
    ids=["dtype", "rank", "channels", "size"],
)
def test_predictor_rejects_wrong_input(predictor, images, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(images)


def test_predictor_predicts_arrays_and_files(rgb, predictor, tmp_path):
    assert (predictor.image_size, predictor.channels, predictor.class_names) == ((32, 32), 3, RGB_NAMES)
    out = predictor.predict(rgb["images"])
    expected = _keras_probabilities(rgb["model"], rgb["images"])
    assert np.max(np.abs(out["probabilities"] - expected)) < 1e-5
    assert out["class_name"] == [RGB_NAMES[i] for i in expected.argmax(-1)]
    files = []
    for path in _encode(rgb["images"][:2], str(tmp_path), "PNG"):
        with open(path, "rb") as f:
            files.append(f.read())
    np.testing.assert_array_equal(predictor.predict_bytes(files)["class_id"], out["class_id"][:2])


def test_export_saved_model_validates_arguments(rgb, tmp_path):
    with pytest.raises(ValueError, match="3 outputs but 2 class names"):
        ex.export_saved_model(rgb["model"], str(tmp_path / "a"), ["x", "y"])
    with pytest.raises(ValueError, match="resize_mode=.stretch."):
        ex.export_saved_model(rgb["model"], str(tmp_path / "b"), RGB_NAMES, resize_mode="stretch")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a SavedModel"):
        ex.export_saved_model(rgb["model"], str(tmp_path / "c"), RGB_NAMES)


def test_mixed_precision_model_exports_float32_probabilities(tmp_path):
    # A hand-built model keeps this fast; what matters is its float16 output.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        inputs = keras.Input((8, 8, 3))
        x = Preprocess("unit")(inputs)
        x = keras.layers.Conv2D(4, 3, name="conv")(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(x))
    finally:
        keras.config.set_dtype_policy(previous)
    images = _smooth_images(4, 8, 8, 3, seed=3)
    expected = model(images, training=False)
    assert keras.backend.standardize_dtype(expected.dtype) == "float16"
    export_dir = ex.export_saved_model(model, str(tmp_path / "saved_model"), ["a", "b"])
    out = ex.load_exported(export_dir).predict(images)
    assert out["probabilities"].dtype == np.float32
    np.testing.assert_allclose(out["probabilities"], keras.ops.convert_to_numpy(expected), atol=1e-3)


# --------------------------------------------------------------------------- decoding


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_decode_images_resize_modes():
    # A 20x40 image: white outer quarters, black middle half.
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10] = wide[:, 30:] = 255
    data = [_png(wide)]
    crop = ex.decode_images(data, (16, 16), 3, "crop").numpy()[0]
    pad = ex.decode_images(data, (16, 16), 3, "pad").numpy()[0]
    stretch = ex.decode_images(data, (16, 16), 3, "resize").numpy()[0]
    assert crop.max() == 0  # the central square is the black middle
    assert pad[:3].max() == 0 and pad[-3:].max() == 0  # black bars above and below
    assert pad[8, 0].min() == 255 and pad[8, 8].max() == 0
    assert stretch[:, 0].min() == 255 and stretch[:, 8].max() == 0
    with pytest.raises(ValueError, match="resize_mode=.zoom."):
        ex.decode_images(data, (16, 16), 3, "zoom")


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "GIF"])
def test_decode_images_to_gray_from_any_format(fmt):
    # GIF and BMP decoders give colour only; a gray image must still come back unchanged.
    gray = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (8, 1))
    buffer = io.BytesIO()
    Image.fromarray(gray).convert("RGB" if fmt != "PNG" else "L").save(buffer, format=fmt)
    decoded = ex.decode_images([buffer.getvalue()], gray.shape, 1).numpy()
    np.testing.assert_array_equal(decoded[0, :, :, 0], gray)


# --------------------------------------------------------------------------- TFLite and ONNX


def test_tflite_round_trip(rgb, tmp_path):
    path = ex.export_tflite(rgb["model"], str(tmp_path / "model.tflite"))
    check = ex.verify_export(path, rgb["model"], rgb["images"])
    assert check["max_abs_diff"] < 1e-4
    assert check["class_id_agree"] == N_IMAGES
    details = ex._tflite_interpreter(path).get_signature_runner(ex.SERVING_DEFAULT).get_input_details()
    assert details["images"]["dtype"] == np.uint8


@pytest.mark.skipif(ex.onnx_unavailable_reason() is not None, reason=f"{ex.onnx_unavailable_reason()}")
def test_onnx_round_trip(rgb, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is needed to run the ONNX export")
    path = ex.export_onnx(rgb["model"], str(tmp_path / "model.onnx"))
    check = ex.verify_export(path, rgb["model"], rgb["images"])
    assert check["max_abs_diff"] < 1e-4
    assert check["class_id_agree"] == N_IMAGES


def test_onnx_unavailable_is_a_clear_error(rgb, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # makes `import tf2onnx` raise ImportError
    with pytest.raises(RuntimeError, match="ONNX export unavailable: ModuleNotFoundError"):
        ex.export_onnx(rgb["model"], "unused.onnx")
    assert cli.main(["export", rgb["run_dir"], "--format", "onnx"]) != 0
    assert "ONNX export unavailable" in capsys.readouterr().err


# --------------------------------------------------------------------------- limits, atomic writes


def _tiny_model(size=8):
    """A hand-built 3-class model: exports in a second, unlike the ResNet-20 fixtures."""
    inputs = keras.Input((size, size, 3))
    x = Preprocess("unit")(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x))


def _encoded(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A tiny model exported with max_pixels=10,000 (e.g. 100x100)."""
    export_dir = str(tmp_path_factory.mktemp("limited") / "saved_model")
    ex.export_saved_model(_tiny_model(), export_dir, RGB_NAMES, max_pixels=10_000)
    return ex.load_exported(export_dir)


def test_max_pixels_is_stored_and_enforced_for_every_format(limited):
    assert limited.max_pixels == 10_000
    small = _smooth_images(1, 100, 100, 3, seed=4)[0]
    large = _smooth_images(1, 101, 100, 3, seed=4)[0]
    for fmt in ("PNG", "JPEG", "GIF", "BMP"):
        assert limited.predict_bytes([_encoded(small, fmt)])["class_id"].shape == (1,)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"max_pixels=10,000.*export again"):
            limited.predict_bytes([_encoded(large, fmt)])


def test_max_pixels_is_checked_from_the_header_before_decoding(limited):
    # Headers that promise 5000x5000 images with no pixel data behind them: the decoder would
    # allocate 75 MB and then fail as corrupt; the header check refuses them first.
    png = _encoded(np.zeros((1, 1, 3), np.uint8), "PNG")
    png = png[:16] + (5000).to_bytes(4, "big") * 2 + png[24:33]  # IHDR width, height; no IDAT
    jpeg = _encoded(np.zeros((5000, 5000, 3), np.uint8), "JPEG")[:2000]  # truncated mid-scan
    for data in (png, jpeg):
        with pytest.raises(tf.errors.InvalidArgumentError, match="max_pixels=10,000") as err:
            limited.predict_bytes([data])
        assert "25000000" in str(err.value)  # the image's pixel count, from its header


def test_one_bad_image_fails_the_whole_batch(limited):
    good = _encoded(_smooth_images(1, 8, 8, 3, seed=5)[0], "PNG")
    assert limited.predict_bytes([good, good])["class_id"].shape == (2,)
    too_large = _encoded(np.zeros((200, 200, 3), np.uint8), "PNG")
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_pixels"):
        limited.predict_bytes([good, too_large, good])
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        limited.predict_bytes([good, b"not an image", good])


@pytest.mark.parametrize("mode", ["resize", "crop", "pad"])
def test_serving_resizes_like_training_without_a_full_size_float_copy(mode, monkeypatch):
    image = np.random.default_rng(6).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    casts = []
    cast = tf.cast

    def recording_cast(x, dtype, name=None):
        x = tf.convert_to_tensor(x)
        casts.append((x.dtype, tf.as_dtype(dtype), x.shape))
        return cast(x, dtype, name=name)

    monkeypatch.setattr(tf, "cast", recording_cast)
    got = ex.decode_images([_encoded(image, "PNG")], (16, 20), 3, mode).numpy()[0]
    monkeypatch.undo()
    full_size_float = [c for c in casts if c[0] == tf.uint8 and c[1].is_floating and c[2].rank == 3]
    assert not full_size_float, f"decoded images are cast to float before resizing: {full_size_float}"
    # Training resizes as keras.layers.Resizing does (tests/data/test_pipeline.py checks it too).
    resizing = keras.layers.Resizing(16, 20, crop_to_aspect_ratio=mode == "crop", pad_to_aspect_ratio=mode == "pad")
    expected = np.clip(np.round(resizing(image.astype(np.float32))), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(got, expected)


def test_failed_export_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    export_dir = str(tmp_path / "saved_model")
    first = _tiny_model()
    ex.export_saved_model(first, export_dir, RGB_NAMES)
    images = _smooth_images(2, 8, 8, 3, seed=7)
    before = ex.load_exported(export_dir).predict(images)["probabilities"]

    def write_half_then_fail(obj, export_dir, **kwargs):
        (Path(export_dir) / "saved_model.pb").write_bytes(b"half a model")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(tf.saved_model, "save", write_half_then_fail)
    with pytest.raises(OSError, match="simulated"):
        ex.export_saved_model(_tiny_model(), export_dir, RGB_NAMES)
    monkeypatch.undo()
    np.testing.assert_array_equal(ex.load_exported(export_dir).predict(images)["probabilities"], before)
    assert os.listdir(tmp_path) == ["saved_model"]  # the partial folder is gone

    # A later export still replaces it, leaving nothing beside it.
    second = _tiny_model()
    ex.export_saved_model(second, export_dir, RGB_NAMES)
    after = ex.load_exported(export_dir).predict(images)["probabilities"]
    np.testing.assert_allclose(after, _keras_probabilities(second, images), atol=1e-5)
    assert os.listdir(tmp_path) == ["saved_model"]


def test_export_killed_before_the_swap_keeps_the_previous_one(tmp_path, monkeypatch):
    # The last step renames: if the new folder cannot take the name, the old one gets it back.
    (tmp_path / "saved_model").mkdir()
    (tmp_path / "saved_model" / "saved_model.pb").write_text("previous")
    real_replace = os.replace

    def fail_second_rename(src, dst):
        if ".partial-" in os.path.basename(src) and not src.endswith("-previous"):
            raise KeyboardInterrupt  # as if killed between the two renames
        real_replace(src, dst)

    monkeypatch.setattr(ex.os, "replace", fail_second_rename)
    with pytest.raises(KeyboardInterrupt), ex._replacing(str(tmp_path / "saved_model")) as staged:
        Path(staged, "saved_model.pb").write_text("new")
    assert (tmp_path / "saved_model" / "saved_model.pb").read_text() == "previous"
    assert os.listdir(tmp_path) == ["saved_model"]


# --------------------------------------------------------------------------- fresh process


@pytest.mark.parametrize("key", ["rgb", "gray"])
def test_saved_model_matches_keras_in_fresh_process(key, rgb, gray, fresh_results):
    case = _case(key, rgb, gray)
    result = fresh_results[key]
    expected = _keras_probabilities(case["model"], case["images"])
    assert list(result["signatures"]) == ["serving_bytes", "serving_default"]
    assert result["probabilities"].dtype == np.float32
    assert np.max(np.abs(result["probabilities"] - expected)) < 1e-5
    np.testing.assert_array_equal(result["class_id"], expected.argmax(-1))
    assert len(set(result["class_id"])) > 1, "the test images should not all fall in one class"
    assert list(result["class_name"]) == [case["names"][i] for i in expected.argmax(-1)]


@pytest.mark.parametrize("key", ["rgb", "gray"])
def test_bytes_signature_matches_raw_signature(key, fresh_results):
    result = fresh_results[key]
    # PNG is lossless, so decoding must give back the very pixels of the raw batch.
    assert np.max(np.abs(result["png_probabilities"] - result["probabilities"])) < 1e-5
    assert list(result["png_class_name"]) == list(result["class_name"])
    agree = np.mean(result["jpeg_class_id"] == result["class_id"])
    assert agree >= 0.75, f"JPEG copies changed the top class of {1 - agree:.0%} of the images"


def test_saved_model_cli_lists_both_signatures(background):
    if "saved_model_cli" not in background["processes"]:
        pytest.skip("saved_model_cli is not installed beside this Python")
    rc, stdout, stderr = _finish(background["processes"]["saved_model_cli"])
    assert rc == 0, stderr[-2000:]
    assert "signature_def['serving_default']" in stdout
    assert "signature_def['serving_bytes']" in stdout
    assert "dtype: DT_UINT8" in stdout and "shape: (-1, 32, 32, 3)" in stdout
    assert "dtype: DT_STRING" in stdout and "shape: (-1)" in stdout


# --------------------------------------------------------------------------- permissions, old runs


def _modes(path):
    """{relative path: permission bits} of a file, or of a folder and everything under it."""
    if not os.path.isdir(path):
        return {os.path.basename(path): os.stat(path).st_mode & 0o777}
    modes = {".": os.stat(path).st_mode & 0o777}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            modes[os.path.relpath(full, path)] = os.stat(full).st_mode & 0o777
    return modes


_WRITERS = {
    "saved_model": lambda model, folder: ex.export_saved_model(model, os.path.join(folder, "saved_model"), RGB_NAMES),
    "tflite": lambda model, folder: ex.export_tflite(model, os.path.join(folder, "model.tflite")),
    "onnx": lambda model, folder: ex.export_onnx(model, os.path.join(folder, "model.onnx")),
}


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask022", "umask077"])
@pytest.mark.parametrize("fmt", list(_WRITERS))
def test_every_export_gets_the_permissions_the_umask_gives(fmt, umask, tmp_path):
    # Before: tempfile made saved_model/ 0700 and model.tflite 0600 whatever the umask; ONNX 0644.
    if fmt == "onnx" and ex.onnx_unavailable_reason() is not None:
        pytest.skip(f"ONNX export unavailable here: {ex.onnx_unavailable_reason()}")
    model = _tiny_model()
    previous = os.umask(umask)
    try:
        path = _WRITERS[fmt](model, str(tmp_path))
    finally:
        os.umask(previous)
    modes = _modes(path)
    expected = {name: (0o777 if os.path.isdir(os.path.join(path, name)) else 0o666) & ~umask for name in modes}
    assert {n: f"{m:o}" for n, m in modes.items()} == {n: f"{m:o}" for n, m in expected.items()}
    if fmt == "saved_model":
        assert {"saved_model.pb", "variables", os.path.join("assets", ex.CLASS_NAMES_ASSET)} <= set(modes)


# config.json exactly as the release before `tfresnet.runs.RunDir` wrote it (TrainConfig.to_json).
RELEASED_CONFIG = (
    '{"model": "convnet", "model_args": {}, "weights": null, "l2": 0.0, "dropout": 0.0, "drop_path": 0.0, '
    '"data": "folder:/data/flowers", "data_dir": null, "data_args": {}, "image_size": 8, "resize_mode": "pad", '
    '"augment": "none", "validation_split": 0.1, "cache": true, "drop_empty_classes": false, "optimizer": "adam", '
    '"lr": 0.001, "momentum": 0.9, "weight_decay": 0.0, "schedule": "constant", "warmup_epochs": 0.0, '
    '"step_epochs": [], "step_gamma": 0.1, "label_smoothing": 0.0, "output": "softmax", "epochs": 3, '
    '"batch_size": 128, "seed": 0, "deterministic": false, "monitor": "val_accuracy", "early_stopping": null, '
    '"reduce_lr_on_plateau": null, "tensorboard": true, "gradient_flow": null, "freeze_backbone": false, '
    '"fine_tune_epochs": 0, "fine_tune_lr": 1e-05, "fine_tune_from": null, "mixed_precision": null, '
    '"jit_compile": "auto", "steps_per_execution": 1, "strategy": null, "export": true, "smoke": false, '
    '"steps_per_epoch": null, "verbose": 2, "tune": {}}'
)


@pytest.fixture
def released_run(tmp_path):
    """A run directory laid out as the previous release's trainer wrote it, around a tiny model."""
    run_dir = tmp_path / "flowers-20250101-120000"
    run_dir.mkdir()
    model = _tiny_model()
    model.save(run_dir / "model.keras")
    (run_dir / "class_names.json").write_text(json.dumps(RGB_NAMES))
    (run_dir / "config.json").write_text(RELEASED_CONFIG)
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "loss": 1.0}))
    (run_dir / "history.csv").write_text("epoch,loss\n0,1.0\n")
    return str(run_dir), model


def test_a_run_written_by_the_previous_release_exports_and_predicts(released_run):
    from tfresnet.using.predict import load_classifier

    run_dir, model = released_run
    path = ex.export_run(run_dir, verbose=False)
    assert path == os.path.join(run_dir, "export", "saved_model")
    images = _smooth_images(2, 8, 8, 3, seed=8)
    np.testing.assert_allclose(ex.load_exported(path).predict(images)["probabilities"],
                               _keras_probabilities(model, images), atol=1e-5)
    # The run's resize_mode reaches predict, from the run itself and from its SavedModel.
    assert load_classifier(run_dir).resize_mode == "pad"
    assert load_classifier(path).resize_mode == "pad"


def test_a_full_disk_during_export_is_one_line_and_keeps_the_previous_export(released_run, monkeypatch, capsys):
    import errno

    run_dir, _ = released_run
    path = ex.export_run(run_dir, verbose=False, verify=False)
    before = sorted(os.listdir(path))

    def disk_full(obj, export_dir, **kwargs):
        (Path(export_dir) / "saved_model.pb").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", disk_full)
    assert cli.main(["export", run_dir, "--no-verify"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"could not write {path}" in err and "No space left" in err
    assert sorted(os.listdir(path)) == before and os.listdir(os.path.dirname(path)) == ["saved_model"]
