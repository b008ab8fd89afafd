"""The trainer and its data: the data report, classes without usable images, steps per epoch.

A folder dataset with broken files (cat/: 12 of 40 files empty; fox/: 10 text files named .jpg)
must not train silently: the run writes `data_report.json`, says what it skipped, refuses a class
it cannot learn unless told to drop it, and trains every epoch for the same number of steps
without Keras running out of data.
"""

from __future__ import annotations

import json
import warnings

import keras
import pytest

from tests.data import fakes
from tfresnet.training import TrainConfig
from tfresnet.training.cli import main
from tfresnet.training.session import load_data, steps_per_epoch_of
from tfresnet.training.trainer import train


@pytest.fixture(scope="module")
def animals(tmp_path_factory):
    """cat/: 28 images + 12 zero-byte files; dog/: 20 images; fox/: 10 text files named .jpg."""
    root = tmp_path_factory.mktemp("animals")
    fakes.write_class_folders(root, {"cat": 28, "dog": 20}, size=(16, 16))
    for i in range(12):
        (root / "cat" / f"empty_{i}.jpg").write_bytes(b"")
    (root / "fox").mkdir()
    for i in range(10):
        (root / "fox" / f"fox_{i}.jpg").write_text("not an image\n" * 20)
    return root


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TFRESNET_CACHE_DIR", str(tmp_path / "cache"))


def _config(root, **changes) -> TrainConfig:
    values = dict(model="convnet", data=f"folder:{root}", image_size=16, batch_size=8, epochs=3,
                  export=False, tensorboard=False, jit_compile=False, verbose=0)
    values.update(changes)
    return TrainConfig(**values)


class _StepsPerEpoch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_epoch_begin(self, epoch, logs=None):
        self.steps.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.steps[-1] += 1


def test_empty_class_fails_before_training_naming_it(animals, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(lambda: _config(animals), ["--run-dir", str(run_dir)], name="animals")
    assert code == 2
    err = capsys.readouterr().err
    assert "'fox'" in err and "all 10 of its files were skipped (10 not an image" in err
    assert "--set drop_empty_classes=true" in err
    assert not (run_dir / "history.csv").exists()


def test_folder_run_reports_skipped_files_and_steps_agree(animals, tmp_path, capsys):
    steps = _StepsPerEpoch()
    config = _config(animals, drop_empty_classes=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(config, str(tmp_path / "run"), callbacks=[steps])
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "ran out of data" in m], messages
    out = capsys.readouterr()
    assert "ran out of data" not in out.out + out.err

    data = load_data(config)
    expected = steps_per_epoch_of(data, config)
    assert int(data.train.cardinality()) == expected == 5  # ceil(38 training images / 8)
    assert steps.steps == [expected] * 3

    assert result.class_names == ["cat", "dog"]
    assert None not in result.metrics["per_class_accuracy"]
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["files"]["skipped"] == 22 and report["class_names"] == ["cat", "dog"]
    assert report["per_class"]["fox"]["skipped"] == 10 and "dropped" in report["per_class"]["fox"]
    assert "Data: 22 of 70 files skipped" in out.out and "class 'fox' dropped" in out.out
