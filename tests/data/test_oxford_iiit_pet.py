"""Oxford-IIIT Pet: the real sample, generated layouts with defects, tensorflow-datasets."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from tests.data import fakes
from tfresnet import data


@pytest.fixture(scope="module")
def sample_bundle(pets_sample):
    return data.load("oxford_iiit_pet", data_dir=pets_sample, image_size=64, batch_size=32, verbose=0)


def test_sample_splits_and_classes(sample_bundle):
    b = sample_bundle
    assert b.class_names == ("Abyssinian", "american_bulldog", "Bengal")
    assert b.metadata["class_ids"] == (1, 2, 6)  # the full dataset's ids, in order
    assert b.num_examples == {"train": 270, "validation": 30, "test": None}
    assert b.class_counts["train"].tolist() == [90, 90, 90]
    assert b.class_counts["validation"].tolist() == [10, 10, 10]


def test_missing_test_list_leaves_test_absent_and_says_so(sample_bundle):
    assert sample_bundle.test is None
    assert "test.txt" in sample_bundle.absent["test"]
    assert "absent (annotations/test.txt not found" in repr(sample_bundle)


def test_sample_defects_are_reported(sample_bundle):
    skipped = {os.path.basename(i.path): i.reason for i in sample_bundle.skipped}
    assert set(skipped) == {f"Abyssinian_{n}.mat" for n in (100, 101, 102)}
    assert all("MATLAB" in reason for reason in skipped.values())
    unused = {os.path.basename(i.path): i.reason for i in sample_bundle.unused}
    assert set(unused) == {"Abyssinian_34.jpg", "Abyssinian_82.jpg"}  # the GIF and the unlisted
    assert all("no split list" in reason for reason in unused.values())


def test_every_sample_image_decodes_end_to_end(sample_bundle):
    seen = 0
    for ds in sample_bundle.splits.values():
        for images, labels in ds:
            assert images.shape[1:] == (64, 64, 3) and labels.dtype == tf.int32
            seen += int(labels.shape[0])
    assert seen == 300
    assert sample_bundle.decode_errors() == {"train": 0, "validation": 0}


def test_species_labels(pets_sample):
    b = data.load("oxford_iiit_pet", data_dir=pets_sample, label="species", image_size=32, verbose=0)
    assert b.class_names == ("cat", "dog")
    total = b.class_counts["train"] + b.class_counts["validation"]
    assert total.tolist() == [200, 100]  # Abyssinian and Bengal are cats


def test_unknown_label_is_rejected(pets_sample):
    with pytest.raises(ValueError, match="label"):
        data.load("oxford_iiit_pet", data_dir=pets_sample, label="colour", verbose=0)


def _paths(dataset_source) -> set:
    return {p.decode() for p, _ in dataset_source.elements.as_numpy_iterator()}


def test_test_split_holds_out_trainval_only_without_a_test_list(pets_sample, tmp_path):
    # The sample has no test.txt: test_split holds out a fixed, stratified share of trainval,
    # disjoint from train and validation, and the same for the same seed.
    source = data.get_dataset_spec("oxford_iiit_pet")[0].loader
    from tfresnet.data.sources import LoadContext

    ctx = LoadContext(data_dir=str(pets_sample), validation_split=0.1, seed=0,
                      cache_dir=str(tmp_path / "cache"), verbose=0)
    first, again = (source(ctx, test_split=0.2) for _ in range(2))
    assert {n: len(s.labels) for n, s in first.splits.items()} == {"train": 210, "validation": 30, "test": 60}
    assert sorted(np.bincount(first.splits["test"].labels)) == [20, 20, 20]
    train, val, test = (_paths(first.splits[n]) for n in ("train", "validation", "test"))
    assert not (train & test) and not (val & test) and not (train & val)
    assert _paths(again.splits["test"]) == test
    # A layout with its own test list refuses it.
    (tmp_path / "annotations").mkdir()
    for name in ("list.txt", "trainval.txt"):
        (tmp_path / "annotations" / name).write_text((pets_sample / "annotations" / name).read_text())
    (tmp_path / "annotations" / "test.txt").write_text("Abyssinian_1 1 1 1\n")
    (tmp_path / "images").symlink_to(pets_sample / "images")
    with pytest.raises(ValueError, match="has its own test list"):
        data.load("oxford_iiit_pet", data_dir=tmp_path, test_split=0.1, verbose=0)


BREEDS = {"Abyssinian": (1, 10, 4), "Bengal": (6, 10, 4), "beagle": (11, 10, 4)}


def test_full_layout_with_test_list_and_defects(tmp_path):
    root = fakes.write_pets_layout(tmp_path / "pets", BREEDS)
    images = root / "images"
    os.remove(images / "Bengal_3.jpg")  # listed, missing
    fakes.write_truncated_jpeg(images / "Bengal_4.jpg")  # listed, truncated
    fakes.write_gif(images / "beagle_2.jpg")  # listed, a GIF named .jpg
    fakes.write_rgba_png(images / "beagle_12.jpg")  # listed in test, an RGBA PNG named .jpg
    b = data.load("oxford_iiit_pet", data_dir=tmp_path / "pets", image_size=32, batch_size=8,
                  validation_split=0.2, verbose=0)
    assert b.class_names == ("Abyssinian", "Bengal", "beagle")
    assert b.num_examples == {"train": 22, "validation": 6, "test": 12}
    assert b.descriptions["test"] == "annotations/test.txt"
    reasons = {os.path.basename(i.path): i.reason for i in b.skipped}
    assert "listed in annotations/trainval.txt but missing" in reasons["Bengal_3.jpg"]
    assert "truncated" in reasons["Bengal_4.jpg"]
    assert [os.path.basename(i.path) for i in b.converted] == ["beagle_2.jpg"]
    assert sum(int(y.shape[0]) for ds in b.splits.values() for _, y in ds) == 40
    assert set(b.decode_errors().values()) == {0}


def test_missing_trainval_list_leaves_train_and_validation_absent(tmp_path):
    fakes.write_pets_layout(tmp_path, BREEDS, trainval=False)
    b = data.load("oxford_iiit_pet", data_dir=tmp_path, image_size=32, verbose=0)
    assert b.train is None and b.validation is None
    assert b.num_examples == {"train": None, "validation": None, "test": 12}
    assert "trainval.txt" in b.absent["train"]
    # Images listed only in list.txt are in no split list.
    assert len(b.unused) == 30


def _png(seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (20 + seed % 7, 24, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _fake_pets(self, split, decoders=None, read_config=None, shuffle_files=False):
    # tfds' random fake oxford_iiit_pet draws invalid head boxes, so records are written here;
    # images are encoded bytes because the loader asks for SkipDecoding.
    # Two training records per breed: a breed without one would be refused (EmptyClassError).
    n = 74 if split == "train" else 12
    return tf.data.Dataset.from_tensor_slices({
        "file_name": [f"{split}_{i}.jpg" for i in range(n)],
        "image": [_png(i) for i in range(n)],
        "label": np.arange(n) % 37,
        "species": np.arange(n) % 2,
    })


@pytest.mark.parametrize("label, classes", [("breed", 37), ("species", 2)])
def test_tensorflow_datasets_fallback(tmp_path, label, classes):
    with tfds.testing.mock_data(as_dataset_fn=_fake_pets):
        b = data.load("oxford_iiit_pet", label=label, image_size=32, batch_size=8,
                      tfds_data_dir=str(tmp_path), verbose=0)
    assert "tensorflow-datasets" in b.origin and b.num_classes == classes
    assert b.num_examples == {"train": 67, "validation": 7, "test": 12}
    assert b.class_names[0] == ("Abyssinian" if label == "breed" else "cat")
    assert sum(int(y.shape[0]) for ds in b.splits.values() for _, y in ds) == 86
