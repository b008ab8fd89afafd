"""Stratified, seeded splits: exact sizes, class balance, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from tfresnet.data.splits import split_count, stratified_split


def _labels(counts, shuffled=True):
    labels = np.repeat(np.arange(len(counts)), counts)
    if shuffled:
        np.random.default_rng(123).shuffle(labels)
    return labels


@pytest.mark.parametrize("shuffled", [True, False], ids=["unsorted", "sorted-by-class"])
def test_exact_count_and_class_proportions(shuffled):
    # MNIST-like class sizes; sorted input is what folder listings give.
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    labels = _labels(counts, shuffled)
    parts = stratified_split(labels, {"validation": 10_000}, seed=0)
    assert len(parts["validation"]) == 10_000
    assert len(parts["train"]) == 50_000
    per_class = np.bincount(labels[parts["validation"]], minlength=10)
    expected = np.asarray(counts) * 10_000 / 60_000
    assert np.all(np.abs(per_class - expected) <= 1)


def test_partition_is_disjoint_and_complete():
    labels = _labels([30, 50, 20])
    parts = stratified_split(labels, {"validation": 0.1, "test": 0.2}, seed=3)
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(100))
    assert (len(parts["validation"]), len(parts["test"])) == (10, 20)
    assert np.bincount(labels[parts["test"]]).tolist() == [6, 10, 4]


def test_same_seed_same_split_other_seed_other_split():
    labels = _labels([40, 40, 40])
    a = stratified_split(labels, {"validation": 0.25}, seed=7)
    b = stratified_split(labels, {"validation": 0.25}, seed=7)
    c = stratified_split(labels, {"validation": 0.25}, seed=8)
    assert np.array_equal(a["validation"], b["validation"])
    assert not np.array_equal(a["validation"], c["validation"])


def test_zero_size_gives_empty_split():
    parts = stratified_split(_labels([5, 5]), {"validation": 0}, seed=0)
    assert len(parts["validation"]) == 0 and len(parts["train"]) == 10


@pytest.mark.parametrize(
    "size, error",
    [(1.0, ValueError), (-1, ValueError), (11, ValueError), ("0.1", TypeError), (True, TypeError)],
)
def test_bad_sizes_are_rejected_with_the_value(size, error):
    with pytest.raises(error, match="validation_split"):
        split_count(size, 10)


def test_sizes_adding_up_to_more_than_all_examples_are_rejected():
    with pytest.raises(ValueError, match="add up to more"):
        stratified_split(_labels([5, 5]), {"validation": 0.6, "test": 0.5}, seed=0)
