"""`tfresnet inspect`: every diagnostic writes its files from a run directory, bad input is one clear line."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tfresnet
from tfresnet.cli import main

CLASSES = [f"digit{i}" for i in range(10)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A minimal finished run: an (untrained) digit convnet, saved as tfresnet train saves it."""
    path = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    model = tfresnet.create_model("convnet_fast", input_shape=(28, 28, 1), num_classes=10,
                                  preprocessing="auto")
    model.save(path / "model.keras")
    (path / "class_names.json").write_text(json.dumps(CLASSES))
    (path / "config.json").write_text(json.dumps({"data": "mnist-sample"}))
    return path


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "seven.png"
    pixels = np.zeros((28, 28), dtype="uint8")
    pixels[6:9, 8:20] = 255
    pixels[9:22, 16:19] = 255
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def rgb_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "colour.png"
    Image.fromarray(np.full((40, 30, 3), 120, dtype="uint8")).save(path)
    return path


def inspect(*args):
    return main(["inspect", *map(str, args)])


def test_attack_writes_picture_and_json_within_budget(run_dir, digit_png, tmp_path, capsys):
    out = tmp_path / "out"
    assert inspect("attack", run_dir, digit_png, "--target", "digit3", "--eps", "40", "--out", out) == 0
    rows = json.loads((out / "attack.json").read_text())
    assert rows[0]["target"] == "digit3" and rows[0]["max_abs_change"] <= 40 + 1e-3
    assert (out / "attack.png").stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_gradcam_features_and_ideal_write_pictures(run_dir, digit_png, tmp_path):
    out = tmp_path / "out"
    assert inspect("gradcam", run_dir, digit_png, "--class", "7", "--out", out) == 0
    assert (out / "gradcam-seven.png").exists()
    assert inspect("features", run_dir, digit_png, "--out", out) == 0
    assert list((out / "features").glob("*.png"))
    assert inspect("ideal", run_dir, "--class", "digit2", "--steps", "5", "--out", out) == 0
    assert [row["class"] for row in json.loads((out / "ideal.json").read_text())] == ["digit2"]


def test_gradients_and_robustness_on_data(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert inspect("gradients", "convnet", "--examples", "32", "--out", out) == 0
    frame = pd.read_csv(out / "gradient_norms.csv")
    assert len(frame) == len(tfresnet.create_model("convnet").trainable_weights)
    assert (frame["grad_norm"] > 0).all() and frame["depth"].is_monotonic_increasing
    # The run's names (digit0...) are not mnist-sample's (0...): refused, naming both sides.
    assert inspect("robustness", run_dir, "--examples", "16", "--out", out) == 2
    err = capsys.readouterr().err
    assert "only in the data (10): 0, 1, 2" in err and "classes (run names): digit0, digit1" in err
    names = tmp_path / "names.txt"
    names.write_text("".join(f"{i}\n" for i in range(10)))
    assert inspect("robustness", run_dir, "--class-names", names, "--examples", "16", "--eps", "0,25.5",
                   "--pgd-steps", "2", "--out", out) == 0
    assert (out / "robustness.png").exists() and "fgsm" in (out / "robustness.csv").read_text()


@pytest.mark.parametrize("args, message", [
    (["ideal", "{run}", "--class", "seven"], "Unknown class 'seven'"),
    (["ideal", "{run}", "--class", "12"], "Class index 12 is out of range"),
    (["gradcam", "{run}", "{rgb}"], "has 3 channels; the model takes 1"),
    (["gradcam", "{run}", "{digit}", "--layer", "block9_conv"], "has no layer 'block9_conv'"),
    (["attack", "{empty}", "{digit}"], "holds no model.keras"),
    (["gradients", "resnet9000"], "Unknown model name 'resnet9000'"),
    (["robustness", "{run}", "--eps", "0,big"], "--eps takes comma-separated numbers"),
])
def test_bad_input_is_one_line_naming_the_value(args, message, run_dir, digit_png, rgb_png, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    values = {"run": run_dir, "rgb": rgb_png, "digit": digit_png, "empty": tmp_path / "empty"}
    argv = [a.format(**values) for a in args] + ["--out", str(tmp_path / "out")]
    assert inspect(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1, err


def _edge_reader():
    """8x8x3 images -> 2 classes: logit 0 reads the left column, logit 1 the right one."""
    inputs = keras.Input((8, 8, 3))
    dense = keras.layers.Dense(2, activation="softmax", name="predictions")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    kernel = np.zeros((8, 8, 3, 2), "float32")
    kernel[:, 0, :, 0] = kernel[:, 7, :, 1] = 0.05
    dense.set_weights([kernel.reshape(-1, 2), np.zeros(2, "float32")])
    return model


@pytest.mark.parametrize("resize_mode, accuracy", [("crop", 1.0), ("resize", 0.5)])
def test_robustness_uses_the_runs_resize_mode(resize_mode, accuracy, tmp_path):
    # 16x8 images with a white bar at columns 4-5 ("left") or 10-11 ("right"): the centre crop
    # (columns 4-11) puts the bar on the edge column the model reads; stretching puts it inside.
    for name, columns in (("left", slice(4, 6)), ("right", slice(10, 12))):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(6):
            pixels = np.zeros((8, 16, 3), "uint8")
            pixels[:, columns] = 255
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    run = tmp_path / "run"
    run.mkdir()
    _edge_reader().save(run / "model.keras")
    (run / "class_names.json").write_text(json.dumps(["left", "right"]))
    (run / "config.json").write_text(json.dumps({
        "data": f"folder:{tmp_path / 'data'}", "resize_mode": resize_mode, "validation_split": 0,
        "data_args": {"test_split": 0.5}}))
    assert inspect("robustness", run, "--eps", "0", "--out", tmp_path / "out") == 0
    frame = pd.read_csv(tmp_path / "out" / "robustness.csv")
    assert frame["accuracy"].tolist() == [accuracy, accuracy]  # FGSM and PGD rows at eps 0


def test_saved_sequential_and_class_names_beside_a_keras_file(digit_png, tmp_path, capsys):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "seq.keras")
    (tmp_path / "class_names.json").write_text(json.dumps(["cat", "dog", "bird"]))
    out = tmp_path / "out"
    assert inspect("gradcam", tmp_path / "seq.keras", digit_png, "--class", "dog", "--out", out) == 0
    assert (out / "gradcam-seven.png").stat().st_size > 0
    names = tmp_path / "other.txt"
    names.write_text("ant\nbee\n\nwasp\n")
    assert inspect("ideal", tmp_path / "seq.keras", "--class-names", names, "--class", "wasp", "--steps", "2",
                   "--out", out) == 0
    assert json.loads((out / "ideal.json").read_text())[0]["class"] == "wasp"
    assert inspect("attack", tmp_path / "seq.keras", digit_png, "--target", "bird", "--out", out) == 0
    row = json.loads((out / "attack.json").read_text())[0]
    assert row["eps"] == pytest.approx(0.3 * 255) and isinstance(row["succeeded"], bool)  # MNIST-like default
