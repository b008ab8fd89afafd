"""Cats vs Dogs: Microsoft's PetImages layout with its broken files, and tensorflow-datasets."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.data import fakes
from tfresnet import data


@pytest.fixture(scope="module")
def pet_images(tmp_path_factory):
    """A small PetImages: 20 cats, 30 dogs, plus the kinds of files that break real loaders."""
    parent = tmp_path_factory.mktemp("kagglecatsanddogs")
    root = parent / "PetImages"
    fakes.write_class_folders(root, {"Cat": 20, "Dog": 30})
    fakes.write_defects(root / "Cat", prefix="cat_")
    (root / "Dog" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(200))
    return parent


@pytest.mark.parametrize("where", ["parent", "PetImages"])
def test_layout_found_from_either_folder(pet_images, where):
    data_dir = pet_images if where == "parent" else pet_images / "PetImages"
    b = data.load("cats_vs_dogs", data_dir=data_dir, image_size=32, batch_size=8, verbose=0)
    assert b.class_names == ("cat", "dog")
    # 20 + 6 usable defect files (converted or not) cats, 30 dogs; 10% + 10% held out.
    assert b.num_examples == {"train": 44, "validation": 6, "test": 6}
    assert sum(int(b.class_counts[s][0]) for s in b.class_counts) == 26


def test_held_out_splits_are_stratified_and_seeded(pet_images):
    kwargs = {
        "data_dir": pet_images, "image_size": 16, "validation_split": 0.2, "test_split": 0.2,
        "verbose": 0, "batch_size": 64,
    }
    a = data.load("cats_vs_dogs", seed=1, **kwargs)
    b = data.load("cats_vs_dogs", seed=1, **kwargs)
    for split in ("validation", "test"):
        assert a.class_counts[split].tolist() == [5, 6]  # 26 cats, 30 dogs: 20% each
        xa, ya = next(iter(a.splits[split]))
        xb, yb = next(iter(b.splits[split]))
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)


def test_broken_files_are_listed(pet_images):
    b = data.load("cats_vs_dogs", data_dir=pet_images, image_size=16, verbose=0)
    skipped = {os.path.basename(i.path): i.reason for i in b.skipped}
    assert set(skipped) == {"cat_truncated.jpg", "cat_empty.jpg", "cat_text.jpg", "cat_junk.mat",
                            "Thumbs.db"}
    assert b.num_skipped == 5
    assert {os.path.basename(i.path) for i in b.converted} == {"cat_cmyk.jpg", "cat_gif_named.jpg"}
    assert "skipped:    5 files" in repr(b)


def test_no_test_split_when_test_split_is_zero(pet_images):
    b = data.load("cats_vs_dogs", data_dir=pet_images, image_size=16, test_split=0, verbose=0)
    assert b.test is None and "test_split=0" in b.absent["test"]
    assert b.num_examples["train"] + b.num_examples["validation"] == 56


def test_tensorflow_datasets_fallback(tmp_path):
    with tfds.testing.mock_data(num_examples=30):
        b = data.load("cats_vs_dogs", image_size=32, batch_size=8, tfds_data_dir=str(tmp_path),
                      verbose=0)
    assert "tensorflow-datasets" in b.origin and b.class_names == ("cat", "dog")
    assert b.num_examples == {"train": 24, "validation": 3, "test": 3}
    assert sum(int(y.shape[0]) for ds in b.splits.values() for _, y in ds) == 30


@pytest.mark.usefixtures("offline")
def test_offline_message_names_the_layout(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="PetImages/Cat"):
        data.load("cats_vs_dogs", data_dir=tmp_path, tfds_data_dir=str(tmp_path / "tfds"),
                  verbose=0)
