"""folder:PATH: one sub-folder per class."""

from __future__ import annotations

import json
import os

import numpy as np
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


@pytest.fixture(scope="module")
def broken_animals(tmp_path_factory):
    """cat/: 28 images and 12 zero-byte files; dog/: 20 images; fox/: 10 text files named .jpg."""
    root = tmp_path_factory.mktemp("animals")
    fakes.write_class_folders(root, {"cat": 28, "dog": 20})
    for i in range(12):
        (root / "cat" / f"empty_{i}.jpg").write_bytes(b"")
    (root / "fox").mkdir()
    for i in range(10):
        (root / "fox" / f"fox_{i}.jpg").write_text("not an image\n" * 20)
    return root


def test_class_without_usable_image_is_an_error_naming_it_and_why(broken_animals):
    with pytest.raises(data.EmptyClassError) as err:
        data.load(f"folder:{broken_animals}", image_size=16, verbose=0)
    message = str(err.value)
    assert "'fox'" in message and "all 10 of its files were skipped (10 not an image" in message
    assert "drop_empty_classes" in message
    assert "'cat'" not in message  # cat lost files but still has training images


def test_drop_empty_classes_removes_and_relabels(broken_animals):
    b = data.load(f"folder:{broken_animals}", image_size=16, batch_size=64, verbose=0,
                  drop_empty_classes=True)
    assert b.class_names == ("cat", "dog") and b.num_classes == 2
    assert list(b.dropped_classes) == ["fox"]
    assert "not an image" in b.dropped_classes["fox"]["reason"]
    labels = np.concatenate([y.numpy() for ds in b.splits.values() for _, y in ds])
    assert sorted(set(labels.tolist())) == [0, 1] and len(labels) == 48
    assert "dropped:    class 'fox'" in repr(b)


def test_report_counts_files_per_reason_class_and_split(broken_animals, tmp_path, capsys):
    b = data.load(f"folder:{broken_animals}", image_size=16, verbose=0, drop_empty_classes=True)
    report = b.write_report(str(tmp_path / "data_report.json"))
    assert json.loads((tmp_path / "data_report.json").read_text()) == report
    assert report["files"] == {"seen": 70, "used": 48, "skipped": 22, "unused": 0,
                               "converted": 0, "dropped": 0}
    assert report["skipped_by_reason"] == {"empty file (0 bytes)": 12, "not an image": 10}
    cat, dog, fox = (report["per_class"][c] for c in ("cat", "dog", "fox"))
    assert (cat["seen"], cat["used"], cat["skipped"]) == (40, 28, 12)
    assert cat["skipped_by_reason"] == {"empty file (0 bytes)": 12}
    assert cat["train"] + cat["validation"] + cat["test"] == 28
    assert (dog["seen"], dog["used"], dog["skipped"]) == (20, 20, 0)
    assert (fox["seen"], fox["used"], fox["skipped"], fox["train"]) == (10, 0, 10, 0)
    assert "not an image" in fox["dropped"]
    assert report["splits"]["train"]["examples"] == b.num_examples["train"]
    assert sum(report["splits"]["train"]["per_class"].values()) == b.num_examples["train"]
    assert {f["class"] for f in report["skipped"]} == {"cat", "fox"}
    out = capsys.readouterr().out
    assert "22 of 70 files skipped (12 empty file (0 bytes), 10 not an image)" in out
    assert "cat 12/40, fox 10/10" in out and "class 'fox' dropped" in out


def test_report_counts_strays_overall_and_is_silent_when_nothing_is_skipped(flowers, tmp_path, capsys):
    b = data.load(f"folder:{flowers}", image_size=16, test_split=0, verbose=0)
    report = b.write_report(str(tmp_path / "flowers.json"))
    # The stray README.txt sits outside every class folder: skipped, but no class lost a file.
    assert report["files"]["skipped"] == 1 and report["skipped"][0]["class"] is None
    assert all(c["skipped"] == 0 for c in report["per_class"].values())
    assert "1 of 62 files skipped" in capsys.readouterr().out

    clean = data.load("mnist-sample", verbose=0)
    report = clean.write_report(str(tmp_path / "mnist.json"))
    assert report["files"]["seen"] == report["files"]["used"] == 7_000
    assert clean.summary() is None and capsys.readouterr().out == ""
