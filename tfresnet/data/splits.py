"""Stratified, seeded splits of a labelled pool of examples.

Every loader holds out validation (and, where a dataset has no official test set, test) examples
with `stratified_split`, so each class keeps its share in every split and the same seed always
gives the same split, whatever order the source lists its examples in (MNIST's `mnist.npz` is
not sorted by class; folder and Oxford-IIIT Pet listings are).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["split_count", "stratified_split"]


def split_count(size: float | None, total: int, *, what: str = "validation_split") -> int:
    """Turns a split size given as a fraction or a count into a number of examples.

    Args:
        size: a fraction in [0, 1) of `total`, an absolute count (an int >= 1), or None for 0.
        total: the number of examples the split is taken from.
        what: the argument's name, for the error message.

    Returns:
        The number of examples, rounded to the nearest integer for fractions.

    Raises:
        TypeError: for a size that is not a number.
        ValueError: for a negative size, a fraction >= 1 or a count larger than `total`.
    """
    if size is None:
        return 0
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a fraction in [0, 1) or a count. Received {what}={size!r}")
    if isinstance(size, (int, np.integer)):
        count = int(size)
    elif 0.0 <= size < 1.0:
        count = round(float(size) * total)
    else:
        raise ValueError(
            f"{what} as a float must be a fraction in [0, 1); pass an int for a count. "
            f"Received {what}={size!r}"
        )
    if count < 0 or count > total:
        raise ValueError(
            f"{what} asks for {count:,} of the {total:,} examples. Received {what}={size!r}"
        )
    return count


def _allocate(class_counts: np.ndarray, target: int) -> np.ndarray:
    # Largest-remainder apportionment: each class gets its proportional share of `target`,
    # rounded so the shares sum exactly to `target` (10,000 means 10,000, not 9,998).
    exact = class_counts * (target / class_counts.sum())
    share = np.floor(exact).astype(np.int64)
    short = target - int(share.sum())
    if short > 0:
        # Ties broken by class order, so the result does not depend on float noise.
        order = np.argsort(-(exact - share), kind="stable")
        share[order[:short]] += 1
    return np.minimum(share, class_counts)


def stratified_split(
    labels,
    sizes: Mapping[str, float | int | None],
    *,
    seed: int,
    rest: str = "train",
) -> dict[str, np.ndarray]:
    """Splits example indices by class, holding out the requested sizes.

    Args:
        labels: one integer class id per example.
        sizes: split name -> size, each a fraction of all examples or a count (see `split_count`);
            e.g. ``{"validation": 10_000}`` or ``{"validation": 0.1, "test": 0.1}``.
        seed: seed of the per-class permutation; the same labels and seed give the same split.
        rest: name of the split that receives everything not held out.

    Returns:
        Split name -> sorted int64 indices into `labels`, for every name in `sizes` and `rest`.
        Each held-out split has exactly the requested number of examples (when every class has
        enough), with each class represented in proportion to its share of `labels`.

    Raises:
        ValueError: if the requested sizes add up to more than the examples available.
    """
    labels = np.asarray(labels).reshape(-1)
    total = len(labels)
    targets = {
        name: split_count(size, total, what=f"{name}_split") for name, size in sizes.items()
    }
    if sum(targets.values()) > total:
        raise ValueError(
            f"The requested splits {targets} add up to more than the {total} examples available."
        )
    classes, inverse, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    remaining = class_counts.copy()
    shares = {}
    for name, target in targets.items():
        shares[name] = np.minimum(_allocate(class_counts, target), remaining)
        remaining -= shares[name]

    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {name: [] for name in (*targets, rest)}
    for c in range(len(classes)):
        members = rng.permutation(np.flatnonzero(inverse == c))
        start = 0
        for name in targets:
            stop = start + int(shares[name][c])
            out[name].append(members[start:stop])
            start = stop
        out[rest].append(members[start:])
    return {
        name: np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)
        for name, parts in out.items()
    }
