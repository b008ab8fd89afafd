"""Checking the class labels passed to the inspection functions, with errors that name the bad one."""

from __future__ import annotations

import numpy as np

__all__ = ["integer_labels"]


def integer_labels(labels: np.ndarray, what: str, noun: str, top: int, out_of_range: str) -> np.ndarray:
    """`labels` (one per image) as integers in ``0..top``; whole numbers stored as floats pass.

    Args:
        labels: a 1-D array of class labels.
        what: the argument's name, for the messages.
        noun: what a label is called in the dtype message (``ids``, ``labels``).
        top: the largest valid label.
        out_of_range: the message for a label outside ``0..top``, formatted with the first such
            label's ``value`` and ``position``.

    Raises:
        ValueError: for labels that are not whole numbers, or one outside ``0..top``.
    """
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integer class {noun}. Received {what} of dtype {labels.dtype}")
    bad = (labels < 0) | (labels > top)
    if bad.any():
        raise ValueError(out_of_range.format(value=int(labels[bad][0]), position=int(np.argmax(bad))))
    return labels
