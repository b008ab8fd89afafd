"""folder:PATH: one sub-folder per class."""

from __future__ import annotations

import os

import pytest

from tests.data import fakes
from tfresnet import data


@pytest.fixture(scope="module")
def flowers(tmp_path_factory):
    root = tmp_path_factory.mktemp("flowers")
    fakes.write_class_folders(root, {"tulip": 20, "daisy": 10, "rose": 30})
    fakes.write_jpeg(root / "rose" / "nested" / "deep.jpg")  # nested folders count too
    (root / ".hidden").mkdir()
    (root / "rose" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "README.txt").write_text("a file outside the class folders")
    return root


def test_classes_are_sorted_folder_names_and_splits_stratified(flowers):
    b = data.load(f"folder:{flowers}", image_size=(24, 32), batch_size=16, verbose=0)
    assert b.class_names == ("daisy", "rose", "tulip")
    assert b.input_shape == (24, 32, 3)
    assert b.num_examples == {"train": 49, "validation": 6, "test": 6}
    assert b.class_counts["validation"].tolist() == [1, 3, 2]
    assert b.class_counts["test"].tolist() == [1, 3, 2]
    images, labels = next(iter(b.validation))
    assert images.shape[1:] == (24, 32, 3) and labels.dtype == "int32"


def test_hidden_files_ignored_and_strays_reported(flowers):
    b = data.load(f"folder:{flowers}", image_size=16, verbose=0)
    reasons = {os.path.basename(i.path): i.reason for i in b.skipped}
    assert reasons == {"README.txt": "file outside the class folders"}


def test_validation_and_test_fractions(flowers):
    b = data.load(f"folder:{flowers}", image_size=16, validation_split=0.25, test_split=0, verbose=0)
    assert b.test is None
    assert (b.num_examples["train"], b.num_examples["validation"]) == (46, 15)


def test_folder_without_class_folders_is_an_error(tmp_path):
    fakes.write_jpeg(tmp_path / "lonely.jpg")
    with pytest.raises(data.DataNotFoundError, match="one sub-folder per class"):
        data.load(f"folder:{tmp_path}", verbose=0)


def test_folder_with_no_usable_image_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="No usable image"):
        data.load(f"folder:{tmp_path}", verbose=0)
