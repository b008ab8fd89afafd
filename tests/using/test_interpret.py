"""Interpretation (`tfresnet.using.interpret`): top losses and most-confused pairs on crafted cases."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from tfresnet.training import report
from tfresnet.using import interpret

NAMES = ["cat", "dog", "bird"]


def _evaluated(keep: int):
    """Seven crafted predictions in two batches; each image's pixels hold its position."""
    probs = np.array([
        [0.90, 0.05, 0.05],  # 0 cat, right and sure
        [0.10, 0.80, 0.10],  # 1 cat -> dog: loss -log 0.10
        [0.40, 0.35, 0.25],  # 2 dog, wrong (cat): loss -log 0.35
        [0.02, 0.03, 0.95],  # 3 dog -> bird, very sure: the top loss, -log 0.03
        [0.30, 0.30, 0.40],  # 4 bird, right but unsure: loss -log 0.40
        [0.60, 0.20, 0.20],  # 5 bird -> cat: -log 0.20
        [0.05, 0.90, 0.05],  # 6 dog, right and sure
    ], "float32")
    labels = np.array([0, 0, 1, 1, 2, 2, 1])
    images = np.broadcast_to(np.arange(7, dtype="float32")[:, None, None, None], (7, 4, 4, 3)).copy()

    def model(x, training=False):  # the images' pixel value says which row of probabilities
        return probs[np.asarray(x)[:, 0, 0, 0].astype(int)]

    batches = [(images[:4], labels[:4]), (images[4:], labels[4:])]
    return report.evaluate(model, batches, 3, keep_top_losses=keep)


def test_top_losses_rank_by_loss_and_name_the_classes():
    metrics = _evaluated(keep=4)
    rows = interpret.top_losses(metrics["highest_losses"], NAMES)
    assert [r["index"] for r in rows] == [3, 1, 5, 2]  # by loss, across both batches
    assert [(r["true"], r["predicted"]) for r in rows] == [("dog", "bird"), ("cat", "dog"), ("bird", "cat"),
                                                           ("dog", "cat")]
    assert rows[0]["loss"] == pytest.approx(-np.log(0.03), rel=1e-5)
    assert rows[0]["probability"] == pytest.approx(0.95) and rows[0]["true_probability"] == pytest.approx(0.03)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4] and not any(r["correct"] for r in rows)
    # The pixels kept are each ranked image's own.
    assert list(metrics["highest_losses"]["image"][:, 0, 0, 0]) == [3, 1, 5, 2]
    # An unsure right answer ranks among the losses too (fastai's top_losses does the same).
    rows = interpret.top_losses(_evaluated(keep=5)["highest_losses"], NAMES)
    assert rows[4]["index"] == 4 and rows[4]["correct"] and rows[4]["true"] == "bird"


def test_most_confused_counts_pairs_largest_first():
    confusion = [[5, 2, 0], [3, 4, 3], [0, 1, 6]]
    pairs = interpret.most_confused(confusion, NAMES)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("dog", "cat", 3), ("dog", "bird", 3), ("cat", "dog", 2), ("bird", "dog", 1)]
    assert pairs[0]["share"] == 0.3
    assert [p["count"] for p in interpret.most_confused(confusion, NAMES, min_count=3)] == [3, 3]


def test_write_makes_the_csv_and_figures_with_panels_of_256_pixels(tmp_path):
    metrics = _evaluated(keep=interpret.TOP_LOSSES)
    highest = metrics.pop("highest_losses")
    metrics.update(split="validation", top_losses=interpret.top_losses(highest, NAMES),
                   most_confused=interpret.most_confused(metrics["confusion_matrix"], NAMES))
    written = interpret.write(str(tmp_path), metrics, highest)
    assert sorted(written) == ["most_confused.csv", "most_confused.png", "top_losses.png"]
    with open(tmp_path / "most_confused.csv") as f:
        assert next(iter(csv.DictReader(f))) == {"true": "cat", "predicted": "dog", "count": "1", "share": "0.5"}
    with Image.open(tmp_path / "top_losses.png") as png:
        assert png.width >= 3 * 256 and png.height >= 3 * 256  # 7 images: a 3x3 grid
