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

from tfresnet.data.sources import SPLITS, FileIssue

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
    _counters: dict = dataclasses.field(default_factory=dict)

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

    def decode_errors(self) -> dict[str, int]:
        """Split name -> elements dropped because tf.data could not decode them.

        Validation removes broken files before training, so these stay 0 unless files change on
        disk during training. Exact after a complete pass over a split.
        """
        return {name: counter.failures for name, counter in self._counters.items()}

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
        return "\n".join(lines) + "\n)"


def _short(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])
