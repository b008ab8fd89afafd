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
    assert inspect("robustness", run_dir, "--examples", "16", "--eps", "0,25.5", "--pgd-steps", "2",
                   "--out", out) == 0
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
