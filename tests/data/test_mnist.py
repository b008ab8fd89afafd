"""MNIST: mnist.npz and IDX files from a data directory, the shipped sample, tensorflow-datasets."""

from __future__ import annotations

import gzip
import importlib.resources
import os
import struct
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfresnet import data
from tfresnet.data.mnist import IDX_FILES, read_idx

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = importlib.resources.files("tfresnet.data") / "mnist_sample.npz"


def _sample_arrays():
    with np.load(str(SAMPLE), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _write_idx(path, array: np.ndarray, gz: bool) -> None:
    header = b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)


@pytest.fixture(scope="module")
def full_mnist(mnist_npz):
    return data.load("mnist", data_dir=mnist_npz.parent, batch_size=256, verbose=0)


def test_full_mnist_splits_as_documented(full_mnist):
    assert full_mnist.num_examples == {"train": 50_000, "validation": 10_000, "test": 10_000}
    assert full_mnist.input_shape == (28, 28, 1) and full_mnist.num_classes == 10
    assert full_mnist.class_names == tuple("0123456789")
    text = repr(full_mnist)
    for expected in ("50,000", "10,000", "60,000 training digits", "mnist.npz", "seed 0"):
        assert expected in text


def test_full_mnist_validation_is_stratified(full_mnist, mnist_npz):
    with np.load(mnist_npz, allow_pickle=False) as f:
        per_class = np.bincount(f["y_train"], minlength=10)
    assert np.all(np.abs(full_mnist.class_counts["validation"] - per_class / 6) <= 1)
    assert np.array_equal(
        full_mnist.class_counts["train"] + full_mnist.class_counts["validation"], per_class
    )


def test_full_mnist_batches(full_mnist):
    for ds in full_mnist.splits.values():
        images, labels = next(iter(ds))
        assert images.shape == (256, 28, 28, 1) and images.dtype == "float32"
        assert labels.dtype == "int32"
        assert float(images.numpy().min()) >= 0 and float(images.numpy().max()) == 255.0


def test_validation_split_as_a_fraction(mnist_npz):
    bundle = data.load("mnist", data_dir=mnist_npz.parent, validation_split=0.1, verbose=0)
    assert bundle.num_examples == {"train": 54_000, "validation": 6_000, "test": 10_000}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_idx_files_load_like_the_npz(tmp_path, monkeypatch, gz):
    arrays = _sample_arrays()
    for key, stem in IDX_FILES.items():
        _write_idx(tmp_path / stem, arrays[key], gz)
    # $TFRESNET_DATA_DIR stands in for data_dir.
    monkeypatch.setenv("TFRESNET_DATA_DIR", str(tmp_path))
    bundle = data.load("mnist", validation_split=1_000, batch_size=1_000, verbose=0)
    assert "LeCun IDX files" in bundle.origin
    assert bundle.num_examples == {"train": 5_000, "validation": 1_000, "test": 1_000}
    images, labels = next(iter(bundle.test))
    assert np.array_equal(images.numpy()[..., 0], arrays["x_test"])
    assert np.array_equal(labels.numpy(), arrays["y_test"])


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x08\x01" + b"\0" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(str(bad))
    short = tmp_path / "short-idx"
    short.write_bytes(b"\0\0\x08\x01" + struct.pack(">I", 10) + b"\0" * 4)
    with pytest.raises(ValueError, match="promises"):
        read_idx(str(short))


def test_sample_is_small_pickle_free_and_stratified():
    assert os.path.getsize(str(SAMPLE)) <= 2_000_000
    arrays = _sample_arrays()  # allow_pickle=False: loading must not need pickle
    assert arrays["x_train"].shape == (6_000, 28, 28) and arrays["x_test"].shape == (1_000, 28, 28)
    assert arrays["x_train"].dtype == np.uint8
    bundle = data.load("mnist-sample", verbose=0)
    assert bundle.num_examples == {"train": 5_000, "validation": 1_000, "test": 1_000}
    # Stratified: every class near a tenth of each split (MNIST's classes are 9-11%).
    for split, counts in bundle.class_counts.items():
        share = counts / counts.sum()
        assert share.min() > 0.08 and share.max() < 0.125, split


def test_sample_is_real_mnist_and_reproducible(mnist_npz, tmp_path):
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    try:
        import make_mnist_sample
    finally:
        sys.path.pop(0)
    out = tmp_path / "sample.npz"
    made = make_mnist_sample.make_sample(str(mnist_npz), str(out))
    shipped = _sample_arrays()
    for key in ("x_train", "y_train", "x_test", "y_test", "train_indices"):
        assert np.array_equal(made[key], shipped[key]), key
    with np.load(mnist_npz, allow_pickle=False) as full:
        assert np.array_equal(full["x_train"][shipped["train_indices"]], shipped["x_train"])
        per_class_full = np.bincount(full["y_test"], minlength=10) / 10
    assert np.all(np.abs(np.bincount(shipped["y_test"], minlength=10) - per_class_full) <= 1)


def test_tensorflow_datasets_fallback(tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        bundle = data.load(
            "mnist", validation_split=0.25, batch_size=8, tfds_data_dir=str(tmp_path), verbose=0
        )
    assert "tensorflow-datasets" in bundle.origin
    assert bundle.num_examples == {"train": 30, "validation": 10, "test": 40}
    for ds in bundle.splits.values():
        images, labels = next(iter(ds))
        assert images.shape[1:] == (28, 28, 1) and labels.dtype == "int32"


@pytest.mark.usefixtures("offline")
def test_offline_without_data_fails_naming_the_files(tmp_path, monkeypatch):
    def download(*args, **kwargs):
        raise AssertionError("a download was attempted although the network probe failed")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download)
    with pytest.raises(data.DataNotFoundError) as err:
        data.load("mnist", data_dir=tmp_path, tfds_data_dir=str(tmp_path / "tfds"), verbose=0)
    message = str(err.value)
    for expected in ("mnist.npz", "train-images-idx3-ubyte", "TFRESNET_DATA_DIR", str(tmp_path)):
        assert expected in message


def _small_arrays():
    arrays = _sample_arrays()
    return {"x_train": arrays["x_train"][:200], "y_train": arrays["y_train"][:200],
            "x_test": arrays["x_test"][:50], "y_test": arrays["y_test"][:50]}


@pytest.mark.parametrize(
    "key, change, message",
    [
        ("x_train", lambda a: a.astype(np.float32) / 255,
         r"key 'x_train'.*must be uint8.*Found dtype float32 \(shape \(200, 28, 28\)\)"),
        ("x_test", lambda a: a[:, :, :27], r"key 'x_test'.*shape \(N, 28, 28\). Found shape \(50, 28, 27\)"),
        ("y_train", lambda a: a.astype(np.float64), r"key 'y_train'.*integers 0-9. Found dtype float64"),
        ("y_test", lambda a: np.where(np.arange(len(a)) < 3, 10, a),
         r"key 'y_test'.*class ids 0-9. Found 3 outside, values \[10\]"),
        ("y_train", lambda a: a[:-1], r"key 'x_train' holds 200 images but .*key 'y_train' holds 199 labels"),
    ],
    ids=["float-images", "image-shape", "float-labels", "label-out-of-range", "unequal-lengths"],
)
def test_bad_npz_fails_naming_file_key_and_what_was_found(tmp_path, key, change, message):
    arrays = _small_arrays()
    arrays[key] = change(arrays[key])
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(ValueError, match=message) as err:
        data.load("mnist", data_dir=tmp_path, verbose=0)
    assert str(tmp_path / "mnist.npz") in str(err.value)


def test_bad_idx_file_fails_naming_it(tmp_path):
    arrays = _small_arrays()
    for key, stem in IDX_FILES.items():
        _write_idx(tmp_path / stem, arrays[key], gz=False)
    labels = tmp_path / IDX_FILES["y_test"]
    y = arrays["y_test"].astype(np.uint8).copy()
    y[0] = 12
    labels.write_bytes(b"\0\0\x08\x01" + struct.pack(">I", len(y)) + y.tobytes())
    with pytest.raises(ValueError, match=rf"{labels}.*class ids 0-9. Found 1 outside, values \[12\]"):
        data.load("mnist", data_dir=tmp_path, verbose=0)


def test_nielsen_holdout_is_the_last_10000_in_file_order(mnist_npz):
    bundle = data.load("mnist", data_dir=mnist_npz.parent, batch_size=1000, verbose=0,
                       shuffle=False, holdout="last")
    with np.load(mnist_npz, allow_pickle=False) as f:
        x, y = f["x_train"], f["y_train"]
    assert bundle.num_examples == {"train": 50_000, "validation": 10_000, "test": 10_000}
    assert np.array_equal(bundle.class_counts["train"], np.bincount(y[:50_000], minlength=10))
    images, labels = zip(*bundle.validation.as_numpy_iterator())
    assert np.array_equal(np.concatenate(labels), y[50_000:])
    assert np.array_equal(np.concatenate(images)[..., 0], x[50_000:].astype("float32"))
    assert "last 10,000 (file order)" in repr(bundle)


def test_shift_expansion_gives_250000_training_digits_and_spares_validation(mnist_npz):
    bundle = data.load("mnist", data_dir=mnist_npz.parent, batch_size=1000, verbose=0,
                       holdout="last", expand="shift1")
    with np.load(mnist_npz, allow_pickle=False) as f:
        y = f["y_train"]
    assert bundle.num_examples == {"train": 250_000, "validation": 10_000, "test": 10_000}
    assert np.array_equal(bundle.class_counts["train"], 5 * np.bincount(y[:50_000], minlength=10))
    assert np.array_equal(bundle.class_counts["validation"], np.bincount(y[50_000:], minlength=10))


@pytest.mark.parametrize("option, message", [({"holdout": "first"}, "stratified"),
                                             ({"expand": "shift2"}, "shift1")])
def test_bad_nielsen_options_name_the_choices(option, message):
    with pytest.raises(ValueError, match=message):
        data.load("mnist-sample", verbose=0, **option)
