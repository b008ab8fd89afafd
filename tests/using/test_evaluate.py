"""`tfresnet evaluate`: a run trained on mnist-sample scored on other data, classes matched by name."""

from __future__ import annotations

import contextlib
import io
import json
import os

import keras
import numpy as np
import pytest

import tfresnet
from tfresnet import cli
from tfresnet.using.evaluate import match_classes

from .conftest import copy_run


def test_full_mnist_test_split_from_shared_data(mnist_run, shared_data_dir):
    metrics = tfresnet.evaluate(mnist_run, "mnist", data_dir=str(shared_data_dir), verbose=False)
    out = os.path.join(mnist_run, "eval-mnist-test")
    assert sorted(os.listdir(out)) == ["confusion_matrix.png", "metrics.json", "misclassified.png",
                                       "most_confused.csv", "most_confused.png", "top_losses.png"]
    with open(os.path.join(out, "metrics.json")) as f:
        saved = json.load(f)
    assert saved["examples"] == 10_000 == np.sum(saved["confusion_matrix"])
    assert saved["accuracy"] == metrics["accuracy"] > 0.8
    assert saved["notes"] == [] and saved["split"] == "test"
    assert saved["tta"]["mode"] == "none" and len(saved["top_losses"]) == 9
    losses = [row["loss"] for row in saved["top_losses"]]
    assert losses == sorted(losses, reverse=True) and not saved["top_losses"][0]["correct"]
    counts = [pair["count"] for pair in saved["most_confused"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == 10_000 - np.trace(saved["confusion_matrix"])


def _reversed_run(run_dir: str, dest: str) -> str:
    """The same classifier with its outputs (and class names) in reverse order."""
    copy_run(run_dir, dest)
    model = keras.saving.load_model(os.path.join(dest, "model.keras"), compile=False)
    head = model.layers[-1]
    kernel, bias = head.get_weights()
    head.set_weights([kernel[:, ::-1], bias[::-1]])
    model.save(os.path.join(dest, "model.keras"))
    with open(os.path.join(dest, "class_names.json")) as f:
        names = json.load(f)
    with open(os.path.join(dest, "class_names.json"), "w") as f:
        json.dump(names[::-1], f)
    return dest


def test_classes_in_another_order_are_remapped_by_name(mnist_run, tmp_path):
    reference = tfresnet.evaluate(mnist_run, "mnist-sample", out_dir=str(tmp_path / "ref"), verbose=False)
    flipped = _reversed_run(mnist_run, str(tmp_path / "flipped"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        metrics = tfresnet.evaluate(flipped, "mnist-sample")
    assert "labels remapped to the run's by name" in out.getvalue()
    assert metrics["class_mapping"]["0"] == 9 and metrics["class_mapping"]["9"] == 0
    assert metrics["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-3)
    assert np.array_equal(np.asarray(metrics["confusion_matrix"])[::-1, ::-1], reference["confusion_matrix"])
    assert os.path.isfile(os.path.join(flipped, "eval-mnist-sample-test", "metrics.json"))


def test_a_class_the_run_lacks_is_refused_with_the_differences(mnist_run, tmp_path):
    other = copy_run(mnist_run, str(tmp_path / "other"))
    with open(os.path.join(other, "class_names.json"), "w") as f:
        json.dump([*map(str, range(9)), "ten"], f)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.main(["evaluate", other, "--data", "mnist-sample"])
    assert rc == 2
    line = err.getvalue()
    assert line.startswith("error: ") and "Only in the data (1): 9." in line and "Only in the run (1): ten." in line
    assert not os.path.exists(os.path.join(other, "eval-mnist-sample-test"))


def test_match_classes_rules():
    assert match_classes(["a", "b", "c"], ["a", "b", "c"]) == ([0, 1, 2], [])
    mapping, notes = match_classes(["a", "b", "c"], ["c", "a"])
    assert mapping == [2, 0] and len(notes) == 2 and "(b)" in notes[1]
    with pytest.raises(ValueError, match="Only in the data \\(1\\): d"):
        match_classes(["a", "b"], ["a", "d"])


def test_unknown_split_names_the_choices(mnist_run):
    rc_err = io.StringIO()
    with contextlib.redirect_stderr(rc_err):
        rc = cli.main(["evaluate", mnist_run, "--data", "mnist-sample", "--split", "dev"])
    assert rc == 2 and "invalid choice: 'dev'" in rc_err.getvalue()


def test_figures_name_the_split_they_were_scored_on(mnist_run, tmp_path, monkeypatch):
    import matplotlib.axes
    import matplotlib.figure

    titles = []
    for owner, name in ((matplotlib.axes.Axes, "set_title"), (matplotlib.figure.Figure, "suptitle")):
        real = getattr(owner, name)

        def recording(self, label, *args, _real=real, **kwargs):
            titles.append(str(label))
            return _real(self, label, *args, **kwargs)

        monkeypatch.setattr(owner, name, recording)
    metrics = tfresnet.evaluate(mnist_run, "mnist-sample", split="validation", options={"validation_split": 0.2},
                                out_dir=str(tmp_path / "val"), verbose=False)
    assert metrics["split"] == "validation"
    assert any(t.startswith("validation accuracy") for t in titles), titles
    assert not [t for t in titles if "test" in t]
