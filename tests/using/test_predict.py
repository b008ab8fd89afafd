"""`tfresnet predict`: real image files through a run's model.keras and its SavedModel."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

import tfresnet
from tfresnet.using.predict import csv_folder, load_classifier

from .conftest import copy_run, run_cli

PETS = "oxford_iiit_pet_sample/images"
JPEGS = ["Abyssinian_1.jpg", "Bengal_10.jpg", "american_bulldog_10.jpg"]


@pytest.fixture(scope="module")
def pet_folder(tmp_path_factory, shared_data_dir):
    """Real pet photos, the sample's GIF named .jpg (plus its first frame as a PNG), a MATLAB
    file and an empty file, in a subfolder to check the walk is recursive."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("pets")
    nested = folder / "more"
    nested.mkdir()
    images = shared_data_dir / PETS
    for name in JPEGS:
        shutil.copy(images / name, folder / name)
    shutil.copy(images / "Abyssinian_34.jpg", nested / "Abyssinian_34.jpg")
    with Image.open(images / "Abyssinian_34.jpg") as gif:
        assert gif.format == "GIF"  # the defect this test is about
        gif.seek(0)
        gif.convert("RGB").save(nested / "gif_first_frame.png")
    shutil.copy(images / "Abyssinian_100.mat", folder / "Abyssinian_100.mat")
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def test_pets_folder_gets_one_row_per_file_with_reasons_for_broken_ones(pets_run, pet_folder):
    frame = tfresnet.predict(pets_run, [str(pet_folder)], top=2)
    by_name = {os.path.basename(p): row for p, row in zip(frame["path"], frame.to_dict("records"))}
    assert set(by_name) == {*JPEGS, "Abyssinian_34.jpg", "gif_first_frame.png", "Abyssinian_100.mat", "empty.jpg"}
    assert list(frame.columns) == ["path", "class_1", "prob_1", "class_2", "prob_2", "error"]
    assert "MATLAB" in by_name["Abyssinian_100.mat"]["error"]
    assert "empty file" in by_name["empty.jpg"]["error"]
    assert pd.isna(by_name["empty.jpg"]["prob_1"])
    good = frame[frame["error"] == ""]
    assert len(good) == 5
    assert (good["prob_1"] >= good["prob_2"]).all() and (good["prob_1"] + good["prob_2"] <= 1 + 1e-6).all()
    assert set(good["class_1"]) <= {"Abyssinian", "american_bulldog", "Bengal"}
    # The GIF goes through the data layer's conversion: same pixels as its first frame as a PNG.
    gif, png = by_name["Abyssinian_34.jpg"], by_name["gif_first_frame.png"]
    assert gif["class_1"] == png["class_1"]
    assert gif["prob_1"] == pytest.approx(png["prob_1"], abs=1e-6)


def test_run_resize_mode_is_used(pets_run):
    assert load_classifier(pets_run).resize_mode == "crop"


def test_cli_folder_writes_csv_and_reports_failures(pets_run, pet_folder, tmp_path):
    csv = tmp_path / "out.csv"
    rc, out, err = run_cli("predict", pets_run, str(pet_folder), "--top", "1", "--csv", str(csv))
    assert rc == 0, err
    rows = pd.read_csv(csv, keep_default_na=False)
    assert len(rows) == 7 and (rows["error"] != "").sum() == 2
    assert "5 of 7 files classified" in err and "2 could not be read" in err
    assert "error: not an image (.mat): MATLAB data file" in out


def test_mnist_digits_mostly_right_and_keras_agrees_with_savedmodel(mnist_run, digit_pngs):
    folder, labels = digit_pngs
    keras_rows = tfresnet.predict(mnist_run, folder, top=3)
    saved_rows = tfresnet.predict(os.path.join(mnist_run, "export", "saved_model"), folder, top=3)
    assert (keras_rows["error"] == "").all()
    truth = [os.path.basename(p).split("_")[1].split(".")[0] for p in keras_rows["path"]]
    assert sorted(truth) == sorted(labels)
    right = (keras_rows["class_1"] == truth).mean()
    assert right >= 0.8, keras_rows[["path", "class_1", "prob_1"]]
    assert list(keras_rows["class_1"]) == list(saved_rows["class_1"])
    np.testing.assert_allclose(keras_rows["prob_1"], saved_rows["prob_1"], atol=1e-5)


def test_cli_json_output_for_files(mnist_run, digit_pngs):
    folder, _ = digit_pngs
    files = sorted(os.listdir(folder))[:2]
    rc, out, err = run_cli("predict", mnist_run, *[os.path.join(folder, f) for f in files], "--top", "2", "--json")
    assert rc == 0, err
    records = json.loads(out)
    assert [os.path.basename(r["path"]) for r in records] == files
    assert set(records[0]) == {"path", "class_1", "prob_1", "class_2", "prob_2", "error"}


def test_bad_source_and_top_are_one_line_errors(tmp_path, digit_pngs):
    rc, _, err = run_cli("predict", str(tmp_path), digit_pngs[0])
    assert rc == 2 and "holds neither model.keras nor saved_model.pb" in err
    with pytest.raises(ValueError, match="top=0"):
        tfresnet.predict(str(tmp_path), digit_pngs[0], top=0)


@pytest.fixture(scope="module")
def imagenet_keras(imagenet_weights_dir, tmp_path_factory):
    """The real ImageNet MobileNet v1 0.25 (128 px, with its classifier) saved as a .keras file."""
    model = tfresnet.create_model("mobilenetv1", alpha=0.25, input_shape=(128, 128, 3), num_classes=1000,
                                  weights=str(imagenet_weights_dir / "mobilenet_2_5_128_tf.h5"),
                                  preprocessing="auto")
    path = tmp_path_factory.mktemp("imagenet") / "mobilenet.keras"
    model.save(path)
    return str(path)


def test_imagenet_keras_file_says_class_names(imagenet_keras, imagenet_weights_dir, shared_data_dir,
                                              monkeypatch):
    monkeypatch.setenv("TFRESNET_WEIGHTS_DIR", str(imagenet_weights_dir))
    images = shared_data_dir / "oxford_iiit_pet_sample" / "images"
    bulldogs = sorted(str(p) for p in images.glob("american_bulldog_1*.jpg"))[:8]
    frame = tfresnet.predict(imagenet_keras, bulldogs, top=3)
    assert not frame["error"].any()
    names = set(frame["class_1"])
    assert not any(name.isdigit() for name in names), names  # "boxer", not "242"
    # ImageNet's dogs are ids 151-268: most bulldog photos land on a dog breed by name.
    from tfresnet.models.pretrained import imagenet_class_names

    dogs = set(imagenet_class_names()[151:269])
    assert sum(name in dogs for name in frame["class_1"]) >= 5


def test_keras_file_takes_a_class_names_file(imagenet_keras, tmp_path, shared_data_dir):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"thing{i}" for i in range(1000)))
    photo = str(next((shared_data_dir / "oxford_iiit_pet_sample" / "images").glob("Bengal_1*.jpg")))
    rc, out, err = run_cli("predict", imagenet_keras, photo, "--class-names", str(names), "--top", "1")
    assert rc == 0, err
    assert " thing" in out


def test_unsupported_model_file_is_named_as_such(tmp_path, digit_pngs):
    model_file = tmp_path / "model.tflite"
    model_file.write_bytes(b"TFL3")
    rc, _, err = run_cli("predict", str(model_file), digit_pngs[0])
    assert rc == 2 and "is a file predict cannot use" in err and "does not exist" not in err


def test_folder_rows_go_where_the_run_lives_not_into_the_working_directory(pets_run, pet_folder, tmp_path,
                                                                            monkeypatch):
    run_dir = copy_run(pets_run, str(tmp_path / "run"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc, _, err = run_cli("predict", run_dir, str(pet_folder), "--top", "1")
    assert rc == 0, err
    written = os.path.join(run_dir, "predictions.csv")
    assert len(pd.read_csv(written, keep_default_na=False)) == 7
    assert os.listdir(work) == [] and f"rows written to {written}" in err
    os.remove(written)
    rc, _, err = run_cli("predict", run_dir, str(pet_folder), "--top", "1", "--csv", "mine.csv")
    assert rc == 0, err
    assert os.listdir(work) == ["mine.csv"] and not os.path.exists(written) and "rows written to mine.csv" in err


def test_csv_folder_is_the_run_or_the_folder_beside_the_model(tmp_path):
    run = tmp_path / "run"
    (run / "export" / "saved_model").mkdir(parents=True)
    (run / "model.keras").write_bytes(b"")
    (run / "config.json").write_text("{}")
    (run / "export" / "saved_model" / "saved_model.pb").write_bytes(b"")
    lone = tmp_path / "models" / "served"
    lone.mkdir(parents=True)
    (lone / "saved_model.pb").write_bytes(b"")
    assert csv_folder(str(run)) == str(run)
    assert csv_folder(str(run / "export" / "saved_model")) == str(run)  # its run, not inside the SavedModel
    assert csv_folder(str(lone)) == str(tmp_path / "models")
    assert csv_folder(str(tmp_path / "models" / "net.keras")) == str(tmp_path / "models")


def test_unsupported_formats_are_named_with_what_is_supported(tmp_path, digit_pngs):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx")
    rc, _, err = run_cli("predict", str(onnx), digit_pngs[0])
    assert rc == 2 and "ONNX (.onnx) is not a format predict supports" in err
    assert "Supported: a run directory (model.keras), a SavedModel export directory (saved_model.pb)" in err
    missing = tmp_path / "export" / "model.tflite"
    rc, _, err = run_cli("predict", str(missing), digit_pngs[0])
    assert rc == 2 and "does not exist, and TFLite (.tflite) is not a format predict supports" in err
