"""`DatasetBundle`: what `tfresnet.data.load` returns.

One object holds the three splits, the class names, the input shape, the size and class balance
of each split, and what the loader skipped, so a training script (and a reader of its log) can
see at a glance what it trains on.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from tfresnet.data.sources import SPLITS, FileIssue, reason_counts
from tfresnet.files import write_json_atomic

__all__ = ["DatasetBundle"]

_SHOWN_FILES = 3  # file issues listed in repr; the rest are in the attributes


@dataclasses.dataclass(repr=False, eq=False)
class DatasetBundle:
    """The splits of a dataset as batched `tf.data.Dataset`s, and what is known about them.

    Every split yields ``(images, labels)``: images float32 ``(batch, *input_shape)`` with values
    in [0, 255] (no model-specific scaling: a model's `Preprocess` layer does that), labels int32
    class ids, or one-hot float32 when `label_mode` is ``"categorical"`` (augmentations that mix
    labels). Augmentation touches the training split only.

    Attributes:
        name: the dataset name given to `load`.
        origin: where the examples came from (a file, a folder, a tensorflow-datasets builder).
        train: the training split, shuffled and augmented; None when absent.
        validation: the validation split; None when absent.
        test: the test split; None when absent.
        class_names: names of class ids 0..K-1.
        input_shape: (height, width, channels) of one image.
        num_examples: split name -> number of examples (None when absent).
        descriptions: split name -> where the split comes from, or why it is absent.
        absent: split name -> why the split is absent (empty when all three are present).
        class_counts: split name -> examples per class (a length-K array).
        skipped: files found but not used because they are broken or not images, with reasons.
        unused: valid images no split uses (e.g. in no split list), with reasons.
        converted: used images read through an RGB copy (GIF, CMYK, ...), with what was done.
        batch_size: examples per batch.
        augment: name of the training augmentation (``"none"`` when none).
        label_mode: ``"int"`` or ``"categorical"``.
        resize: how images were brought to `input_shape` (`tfresnet.data.pipeline.RESIZE_MODES`).
        seed: seed of the splits and shuffles.
        metadata: dataset-specific facts (e.g. Oxford-IIIT Pet's original class ids).
        dropped_classes: class name -> ``{"reason", "examples_removed"}`` for the classes
            ``load(..., drop_empty_classes=True)`` removed (no usable training example).
    """

    name: str
    origin: str
    train: tf.data.Dataset | None
    validation: tf.data.Dataset | None
    test: tf.data.Dataset | None
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    num_examples: dict[str, int | None]
    descriptions: dict[str, str]
    absent: dict[str, str]
    class_counts: dict[str, np.ndarray]
    skipped: tuple[FileIssue, ...] = ()
    unused: tuple[FileIssue, ...] = ()
    converted: tuple[FileIssue, ...] = ()
    batch_size: int = 32
    augment: str = "none"
    label_mode: str = "int"
    resize: str = "resize"
    seed: int = 0
    metadata: dict = dataclasses.field(default_factory=dict)
    dropped_classes: dict = dataclasses.field(default_factory=dict)
    _counters: dict = dataclasses.field(default_factory=dict)
    _epochs: object = None  # the training split's `tfresnet.data.pipeline.EpochCounter`

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def splits(self) -> dict[str, tf.data.Dataset]:
        """Split name -> dataset, present splits only."""
        return {name: getattr(self, name) for name in SPLITS if getattr(self, name) is not None}

    @property
    def num_batches(self) -> dict[str, int | None]:
        """Split name -> batches per pass (None when absent); the last one may be partial."""
        return {
            name: None if n is None else math.ceil(n / self.batch_size)
            for name, n in self.num_examples.items()
        }

    @property
    def num_skipped(self) -> int:
        """Number of files found but not used because they are broken or not images."""
        return len(self.skipped)

    def set_epoch(self, epoch: int) -> None:
        """Makes the training split's next pass read epoch `epoch`'s order (and augmentation).

        A trainer calls it as each epoch begins, so that a run resumed at epoch k, or a search
        trial reusing this bundle, sees epoch k as an uninterrupted run does.
        """
        if self._epochs is not None:
            self._epochs.set(epoch)

    def decode_errors(self) -> dict[str, int]:
        """Split name -> elements dropped because tf.data could not decode them.

        Validation removes broken files before training, so these stay 0 unless files change on
        disk during training. Exact after a complete pass over a split.
        """
        return {name: counter.failures for name, counter in self._counters.items()}

    def report(self) -> dict:
        """What the loader saw, used, skipped and converted, overall, per class and per split.

        For in-memory datasets (MNIST) each example counts as one file. A file's class is the
        one its layout gives it (its class folder); files outside any class are counted
        overall only.

        Returns:
            A JSON-ready dict: ``files`` (``seen``, ``used``, ``skipped``, ``unused``,
            ``converted``, ``dropped``), ``skipped_by_reason``, ``per_class`` (the same counts,
            the examples per split and, for a dropped class, why), ``splits`` (examples per
            split and class), ``dropped_classes``, and the ``skipped``, ``unused`` and
            ``converted`` files with their reasons.
        """
        present = [name for name in SPLITS if self.num_examples.get(name) is not None]
        per_class = {}
        for k, name in enumerate(self.class_names):
            per_class[name] = {split: int(self.class_counts[split][k]) for split in present}
        for name in self.dropped_classes:
            per_class[name] = {split: 0 for split in present}
        for name, counts in per_class.items():
            skipped = [i for i in self.skipped if i.class_name == name]
            used = sum(counts.values())
            dropped = self.dropped_classes.get(name, {}).get("examples_removed", 0)
            unused = sum(i.class_name == name for i in self.unused)
            counts.update(
                seen=used + len(skipped) + unused + dropped,
                used=used,
                skipped=len(skipped),
                skipped_by_reason=reason_counts(skipped),
                unused=unused,
                converted=sum(i.class_name == name for i in self.converted),
            )
            if name in self.dropped_classes:
                counts["dropped"] = self.dropped_classes[name]["reason"]
        used = sum(self.num_examples[split] for split in present)
        dropped = sum(d.get("examples_removed", 0) for d in self.dropped_classes.values())

        def files(issues):
            return [{"path": i.path, "reason": i.reason, "class": i.class_name} for i in issues]

        return {
            "dataset": self.name,
            "origin": self.origin,
            "class_names": list(self.class_names),
            "files": {
                "seen": used + len(self.skipped) + len(self.unused) + dropped,
                "used": used,
                "skipped": len(self.skipped),
                "unused": len(self.unused),
                "converted": len(self.converted),
                "dropped": dropped,
            },
            "skipped_by_reason": reason_counts(self.skipped),
            "per_class": per_class,
            "splits": {
                split: {
                    "examples": self.num_examples[split],
                    "per_class": dict(zip(self.class_names,
                                          map(int, self.class_counts[split]), strict=True)),
                }
                for split in present
            },
            "dropped_classes": dict(self.dropped_classes),
            "skipped": files(self.skipped),
            "unused": files(self.unused),
            "converted": files(self.converted),
        }

    def summary(self) -> str | None:
        """A few lines on what was skipped or dropped; None when nothing was."""
        if not self.skipped and not self.dropped_classes:
            return None
        report = self.report()
        seen, skipped = report["files"]["seen"], report["files"]["skipped"]
        reasons = ", ".join(f"{n} {kind}" for kind, n in report["skipped_by_reason"].items())
        lines = [f"Data: {skipped:,} of {seen:,} files skipped" + (f" ({reasons})" if reasons else "")]
        hit = [(name, c) for name, c in report["per_class"].items() if c["skipped"]]
        if hit:
            lines.append("  per class: " + ", ".join(
                f"{name} {c['skipped']}/{c['seen']}" for name, c in hit))
        for name, info in self.dropped_classes.items():
            lines.append(f"  class {name!r} dropped: {info['reason']}")
        return "\n".join(lines)

    def write_report(self, path: str, *, echo: bool = True) -> dict:
        """Writes `report` as JSON to `path` and, with `echo`, prints `summary` if there is one.

        Returns:
            The report.
        """
        report = self.report()
        write_json_atomic(path, report, indent=2)  # a run killed while writing leaves no half report
        summary = self.summary()
        if echo and summary:
            print(f"{summary}\n  details: {path}")
        return report

    def __repr__(self) -> str:
        labels = "int32 class ids" if self.label_mode == "int" else "one-hot float32"
        lines = [
            (
                f"DatasetBundle({self.name!r}: {self.num_classes} classes, "
                f"input_shape={self.input_shape}, batch_size={self.batch_size}"
            ),
            f"  origin:     {self.origin}",
        ]
        for name in SPLITS:
            n = self.num_examples.get(name)
            what = "absent" if n is None else f"{n:>7,} examples"
            lines.append(f"  {name + ':':<11} {what} ({self.descriptions.get(name, '')})")
        lines.append(
            f"  images float32 in [0, 255], labels {labels}; resize={self.resize!r}, "
            f"augment={self.augment!r} (train only), seed={self.seed}"
        )
        if len(self.class_names) <= 10:
            lines.append(f"  classes:    {', '.join(self.class_names)}")
        for title, issues in (
            ("skipped", self.skipped),
            ("not used", self.unused),
            ("converted", self.converted),
        ):
            if not issues:
                continue
            shown = "; ".join(
                f"{_short(i.path)}: {i.reason}" for i in issues[:_SHOWN_FILES]
            )
            more = f"; ... {len(issues) - _SHOWN_FILES} more" if len(issues) > _SHOWN_FILES else ""
            lines.append(f"  {title + ':':<11} {len(issues)} files ({shown}{more})")
        if not self.skipped:
            lines.append("  skipped:    0 files")
        for name, info in self.dropped_classes.items():
            lines.append(f"  dropped:    class {name!r} ({info['reason']})")
        return "\n".join(lines) + "\n)"


def _short(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])
