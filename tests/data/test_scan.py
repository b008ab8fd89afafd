"""`tfresnet scan-data`: the report on the real sample and on generated defects."""

from __future__ import annotations

import json

import pytest

from tests.data import fakes
from tfresnet.cli import main
from tfresnet.data.scan import scan_directory


def test_report_on_the_pets_sample(pets_sample, capsys):
    assert main(["scan-data", str(pets_sample)]) == 0
    out = capsys.readouterr().out
    assert "300 usable listed images of 3 classes" in out
    for name in ("Abyssinian_100.mat", "Abyssinian_101.mat", "Abyssinian_102.mat"):
        assert f"images/{name}  not an image (.mat): MATLAB data file" in out
    assert "images/Abyssinian_34.jpg  in no split list" in out
    assert "valid GIF" in out
    assert "images/Abyssinian_82.jpg  in no split list" in out
    assert "test absent (annotations/test.txt not found" in out
    assert "Image sizes: width" in out


def test_json_report(pets_sample, capsys):
    assert main(["scan-data", str(pets_sample), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # the progress bar goes to stderr
    assert report["layout"] == "oxford_iiit_pet" and report["num_usable"] == 300
    assert report["usable"] == {"Abyssinian": 100, "american_bulldog": 100, "Bengal": 100}
    assert {i["path"] for i in report["unused"]} == {
        "images/Abyssinian_34.jpg", "images/Abyssinian_82.jpg"
    }
    assert len(report["skipped"]) == 3 and report["formats"] == {"JPEG": 300}


def test_report_on_class_folders_with_defects(tmp_path):
    fakes.write_class_folders(tmp_path, {"a": 3, "b": 2})
    fakes.write_defects(tmp_path / "b")
    report = scan_directory(str(tmp_path), use_cache=False)
    assert report.layout == "folder" and report.usable == {"a": 3, "b": 8}
    skipped = {i.path: i.reason for i in report.skipped}
    assert set(skipped) == {"b/truncated.jpg", "b/empty.jpg", "b/text.jpg", "b/junk.mat"}
    notes = {i.path: i.reason for i in report.notes}
    assert "converted from CMYK to RGB" in notes["b/cmyk.jpg"]
    assert "PNG named .jpg" in notes["b/png_named.jpg"]
    assert report.modes["RGB"] == 6 and report.formats["GIF"] == 1  # 5 plain + the PNG


def test_plain_folder_of_images(tmp_path):
    fakes.write_defects(tmp_path)
    report = scan_directory(str(tmp_path), use_cache=False)
    assert report.layout == "files" and report.num_usable == len(fakes.USABLE)
    assert len(report.skipped) == len(fakes.BROKEN)


@pytest.mark.parametrize("argv", [["/definitely/not/here"], ["{tmp}", "--layout", "cats_vs_dogs"]])
def test_bad_paths_exit_with_2(tmp_path, capsys, argv):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(["scan-data", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
