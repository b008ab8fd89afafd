"""Test-time augmentation (`tfresnet.using.tta`): what the views average, and where flips are refused."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tfresnet
from tfresnet.training import TrainConfig
from tfresnet.using import tta

from .conftest import run_cli

CLASSES = ["cat", "dog", "fox"]


def _model(shape, pooled: bool, seed: int = 0, classes: int = 3):
    """Global average pooling is exactly mirror-symmetric; a dense layer over every pixel is not."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x) if pooled else keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(classes, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(
        stddev=3.0 if pooled else 0.3))(x)
    return keras.Model(inputs, outputs)


def _run_dir(path, model, data: str, names, image_size: int):
    """A run directory as the trainer leaves it (what evaluate and predict read)."""
    path.mkdir()
    model.save(path / "model.keras")
    (path / "class_names.json").write_text(json.dumps(names))
    config = TrainConfig(model="convnet", data=data, image_size=image_size, validation_split=0.0)
    (path / "config.json").write_text(config.to_json())
    (path / "metrics.json").write_text("{}")
    return str(path)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (6, 8, 8, 3)).astype("float32")


def test_flip_on_a_mirror_symmetric_model_changes_nothing(images):
    model = _model((8, 8, 3), pooled=True)
    plain = np.asarray(model(images))
    averaged = tta.tta_probabilities(model, images, "flip")
    np.testing.assert_allclose(averaged, plain, rtol=1e-6, atol=1e-7)


def test_flip_averages_the_image_and_its_mirror(images):
    model = _model((8, 8, 3), pooled=False)
    plain, mirrored = np.asarray(model(images)), np.asarray(model(images[:, :, ::-1]))
    averaged = tta.tta_probabilities(model, images, "flip")
    assert np.abs(plain - mirrored).max() > 0.01  # the model does see the mirror differently
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)


def test_crops_sit_in_the_corners_and_cover_seven_eighths():
    # Bright last row and column: only the crops that reach the bottom or the right edge see them.
    image = np.zeros((1, 8, 8, 1), "float32")
    image[:, 7, :], image[:, :, 7] = 255, 255
    views = dict(zip(tta.TTA_MODES["flip+crops"], tta.make_views(image, "flip+crops")))
    assert len(views) == 10
    assert float(keras.ops.max(views["top-left"])) == 0.0  # its 7x7 crop holds no bright pixel
    assert float(keras.ops.max(views["bottom-right"])) > 200
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(views["mirror"]), image[:, :, ::-1])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(views["top-left mirror"]),
                                  keras.ops.convert_to_numpy(views["top-left"])[:, :, ::-1])


def test_flips_on_digits_are_refused_in_one_line_and_unknown_data_get_a_note(tmp_path):
    with pytest.raises(ValueError, match="a mirror changes the class of mnist's images"):
        tta.check_tta("flip+crops", "mnist")
    assert tta.check_tta("flip", "oxford_iiit_pet") == [] and tta.check_tta("none", "mnist") == []
    assert "nothing is known" in tta.check_tta("flip", None)[0]
    assert "unknown" in tta.check_tta("flip", "folder:/some/where")[0]
    run = _run_dir(tmp_path / "digits", _model((28, 28, 1), pooled=False, classes=10), "mnist-sample",
                   [str(d) for d in range(10)], 28)
    for command in (["evaluate", run, "--data", "mnist-sample", "--tta", "flip"],
                    ["predict", run, str(tmp_path), "--tta", "flip"]):
        rc, _, err = run_cli(*command)
        assert rc == 2
        assert err.count("\n") == 1 and err.startswith("error: --tta flip is refused for 'mnist-sample': it "
                                                       "averages over mirrored images"), err
    assert not os.path.exists(os.path.join(run, "eval-mnist-sample-test"))


def test_predict_tta_output_is_the_mean_over_the_file_and_its_mirror(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(tmp_path / f"pet{i}.png")
        Image.fromarray(image[:, ::-1]).save(tmp_path / f"pet{i}_mirror.png")
    run = _run_dir(tmp_path / "run", _model((16, 16, 3), pooled=False, seed=2), "oxford_iiit_pet", CLASSES, 16)
    files = [str(tmp_path / f"pet{i}{suffix}.png") for i in range(2) for suffix in ("", "_mirror")]

    def by_class(frame):  # each row's probabilities in CLASSES order, from its top-3 columns
        return np.array([[next(row[f"prob_{r}"] for r in range(1, 4) if row[f"class_{r}"] == name) for name in CLASSES]
                         for row in frame.to_dict("records")])

    plain = by_class(tfresnet.predict(run, files, top=3))
    expected = (plain[0::2] + plain[1::2]) / 2
    assert np.abs(plain[0::2] - plain[1::2]).max() > 0.01
    rc, out, err = run_cli("predict", run, files[0], files[2], "--top", "3", "--json", "--tta", "flip")
    assert rc == 0, err
    averaged = by_class(pd.DataFrame(json.loads(out)))
    np.testing.assert_allclose(averaged, expected, atol=1e-5)
    assert "2 of 2 files classified" in err and "with --tta flip (2 views averaged)" in err


def test_evaluate_records_the_tta_and_a_keras_file_with_unknown_data_gets_a_note(tmp_path, monkeypatch):
    monkeypatch.setenv("TFRESNET_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    for name in CLASSES:
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    data = f"folder:{tmp_path / 'data'}"
    run = _run_dir(tmp_path / "run", _model((16, 16, 3), pooled=False, seed=4), data, CLASSES, 16)
    options = {"test_split": 0.5}
    plain = tfresnet.evaluate(run, data, options=options, out_dir=str(tmp_path / "plain"), verbose=False)
    flipped = tfresnet.evaluate(run, data, options=options, out_dir=str(tmp_path / "flip"), verbose=False,
                                tta_mode="flip")
    with open(tmp_path / "flip" / "metrics.json") as f:
        saved = json.load(f)
    assert saved["tta"] == {"mode": "flip", "views": ["original", "mirror"]} and saved["examples"] == 6
    assert plain["tta"]["mode"] == "none" and plain["loss"] != pytest.approx(flipped["loss"], abs=1e-4)
    assert any("whether a mirror keeps the class" in note for note in saved["notes"])
    rc, _, err = run_cli("predict", os.path.join(run, "model.keras"), str(tmp_path / "data" / "cat" / "0.png"),
                       "--class-names", os.path.join(run, "class_names.json"), "--tta", "flip")
    assert rc == 0 and "note: --tta flip mirrors images, and nothing is known of this model's data" in err
