"""Every class learnable: `check_classes` names, or drops, the classes without a training example.

`tfresnet.data.load` runs it on what a dataset loader returns (`tfresnet.data.sources.Source`),
before any pipeline is built: a class whose files were all skipped, or whose few images all went
to validation and test, cannot be learned and would make its per-class accuracy meaningless.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfresnet.data.sources import (
    EmptyClassError,
    FileIssue,
    Source,
    SplitSource,
    fingerprint,
    reason_counts,
)

__all__ = ["check_classes"]


def reasons_text(issues: Sequence[FileIssue]) -> str:
    """``"10 not an image, 2 empty file (0 bytes)"``: `reason_counts` as words."""
    return ", ".join(f"{n} {kind}" for kind, n in reason_counts(issues).items())


def _why_empty(source: Source, label: int) -> str:
    """Why class `label` has no training example, from what its loader recorded."""
    name = source.class_names[label]
    skipped = [i for i in source.skipped if i.class_name == name]
    held_out = sum(int(np.sum(s.labels == label)) for n, s in source.splits.items() if n != "train")
    parts = []
    if skipped:
        example = skipped[0]
        where = "/".join(example.path.replace("\\", "/").split("/")[-2:])
        share = f"all {len(skipped)}" if not held_out else f"{len(skipped)}"
        parts.append(
            f"{share} of its files were skipped ({reasons_text(skipped)}; e.g. "
            f"{where}: {example.reason})"
        )
    if held_out:
        parts.append(f"its {held_out} usable example(s) all went to validation/test")
    if not parts:
        parts.append("no file of it was found")
    return "; ".join(parts)


def _relabel(split: SplitSource, mapping: np.ndarray) -> SplitSource:
    """Keeps the examples whose class `mapping` keeps (>= 0) and gives them the new ids."""
    new = mapping[split.labels]
    table = tf.constant(mapping, tf.int32)
    elements = split.elements.filter(lambda x, y: tf.gather(table, y) >= 0)
    elements = elements.map(lambda x, y: (x, tf.gather(table, y)))
    # The filter hides the count from tf.data; it is exact, and Keras needs it to know an epoch.
    elements = elements.apply(tf.data.experimental.assert_cardinality(int(np.sum(new >= 0))))
    return SplitSource(
        elements,
        split.kind,
        new[new >= 0].astype(np.int32),
        split.description,
        fingerprint([split.fingerprint], mapping.tolist()),
    )


def check_classes(source: Source, *, drop_empty: bool = False) -> Source:
    """Checks that every class has a training example; drops the classes that have none.

    A class whose files were all skipped (or whose few images all went to validation and test)
    cannot be learned, and its per-class accuracy would be meaningless: it is an error, unless
    `drop_empty` removes it, with its validation and test examples, and renumbers the others.

    Args:
        source: what a dataset loader returned.
        drop_empty: drop empty classes instead of raising.

    Returns:
        `source` itself when every class has training examples (or there is no training split),
        else a copy without the empty classes, which are listed in `dropped_classes`.

    Raises:
        EmptyClassError: naming each empty class and why its files were not used, unless
            `drop_empty`.
    """
    train = source.splits.get("train")
    num_classes = len(source.class_names)
    if train is None:
        return source
    counts = np.bincount(train.labels, minlength=num_classes)
    empty = [k for k in range(num_classes) if counts[k] == 0]
    if not empty:
        return source
    reasons = {source.class_names[k]: _why_empty(source, k) for k in empty}
    lines = "\n".join(f"  - {name!r}: {why}" for name, why in reasons.items())
    if not drop_empty:
        raise EmptyClassError(
            f"{len(empty)} of {num_classes} classes have no usable training image, so they cannot "
            f"be learned:\n{lines}\nFix or remove their files, or drop such classes with "
            f"drop_empty_classes=True (`--set drop_empty_classes=true`)."
        )
    keep = [k for k in range(num_classes) if counts[k] > 0]
    mapping = np.full(num_classes, -1, np.int32)
    mapping[keep] = np.arange(len(keep), dtype=np.int32)
    splits, absent = {}, dict(source.absent)
    for name, split in source.splits.items():
        relabelled = _relabel(split, mapping)
        if relabelled.size:
            splits[name] = relabelled
        else:
            absent[name] = "only examples of dropped classes"
    dropped = {}
    for k in empty:
        removed = sum(int(np.sum(s.labels == k)) for s in source.splits.values())
        dropped[source.class_names[k]] = {"reason": reasons[source.class_names[k]],
                                          "examples_removed": removed}
    # Per-class facts (e.g. Oxford-IIIT Pet's original class ids) lose the dropped entries too.
    metadata = {
        key: type(value)(value[k] for k in keep)
        if isinstance(value, (list, tuple)) and len(value) == num_classes
        else value
        for key, value in source.metadata.items()
    }
    return dataclasses.replace(
        source,
        class_names=tuple(source.class_names[k] for k in keep),
        splits=splits,
        absent=absent,
        metadata=metadata,
        dropped_classes={**source.dropped_classes, **dropped},
    )
