"""What a dataset loader hands to the pipeline: labelled, split, validated examples.

Each dataset module turns its own layout (an `.npz`, IDX files, an annotation list, class
folders, a tensorflow-datasets builder) into a `Source`: one `SplitSource` per present split,
each an unbatched ``tf.data.Dataset`` of ``(x, label)`` pairs, where ``x`` is a file path, the
encoded bytes of an image, or a decoded uint8 image. `tfresnet.data.pipeline` does the rest
(decode, resize, cache, shuffle, batch, augment) the same way for every dataset.

File layouts go through `FileIndex` -> `source_from_index`, which validates every file
(`tfresnet.data.images`) and makes the stratified, seeded splits (`tfresnet.data.splits`).
`tfresnet.data.classes.check_classes` then names (or drops) the classes left without a training
example.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tfresnet.data.images import validate_images
from tfresnet.data.splits import split_count, stratified_split

__all__ = [
    "SPLITS",
    "DataNotFoundError",
    "EmptyClassError",
    "FileIndex",
    "FileIssue",
    "IndexedFile",
    "LoadContext",
    "Source",
    "SplitSource",
    "describe_size",
    "source_from_arrays",
    "source_from_index",
    "reason_kind",
    "reason_counts",
]

SPLITS = ("train", "validation", "test")


class DataNotFoundError(FileNotFoundError):
    """A dataset is neither in the data directory nor obtainable from tensorflow-datasets.

    The message says which files to put where.
    """


class EmptyClassError(ValueError):
    """A class has no usable training example; the message names it and why.

    Raised by `tfresnet.data.load` unless ``drop_empty_classes=True``.
    """


@dataclasses.dataclass(frozen=True)
class FileIssue:
    """A file a loader found but does not train on (or converted), and why.

    Attributes:
        path: the file.
        reason: why it is skipped or unused, or how it was converted.
        class_name: the class the layout assigns the file to; None where it assigns none (a
            file outside the class folders, an image in no split list).
    """

    path: str
    reason: str
    class_name: str | None = None


@dataclasses.dataclass(frozen=True)
class LoadContext:
    """Settings every dataset loader receives from `tfresnet.data.load`.

    Attributes:
        data_dir: the data directory (argument or ``$TFRESNET_DATA_DIR``), or None.
        validation_split: fraction or count held out of the training pool for validation.
        seed: seed of the stratified splits.
        cache_dir: tfresnet's cache directory (converted images, validation results).
        tfds_data_dir: tensorflow-datasets' data directory, None for its default.
        verbose: 0 silent, 1 progress bar while validating files.
    """

    data_dir: str | None
    validation_split: float | int | None
    seed: int
    cache_dir: str
    tfds_data_dir: str | None = None
    verbose: int = 1


@dataclasses.dataclass
class SplitSource:
    """One split before decoding.

    Attributes:
        elements: unbatched dataset of ``(x, label)``; ``label`` is an int32 class id.
        kind: what ``x`` is: ``"path"`` (a file to read), ``"bytes"`` (an encoded image) or
            ``"image"`` (a decoded uint8 HxWxC tensor).
        labels: every example's class id, in the order of `elements`.
        description: where the split comes from, for the bundle's repr.
        fingerprint: changes whenever the split's membership does; names file caches.
    """

    elements: tf.data.Dataset
    kind: str
    labels: np.ndarray
    description: str
    fingerprint: str

    @property
    def size(self) -> int:
        return len(self.labels)


@dataclasses.dataclass
class Source:
    """A dataset's splits and what its loader found out while reading it.

    Attributes:
        origin: where the data came from, e.g. ``"/data/mnist.npz (Keras mnist.npz)"``.
        class_names: names of class ids 0..K-1.
        channels: 1 (MNIST) or 3.
        image_size: (height, width) shared by every source image, or None when sizes vary.
        splits: split name -> `SplitSource`, present splits only.
        absent: split name -> why the split is absent.
        skipped: files found but not usable (broken, not images, listed but missing).
        unused: valid files that no split uses (e.g. in no split list).
        converted: used files read through an RGB copy (GIF, CMYK, ...), with what was done.
        metadata: dataset-specific facts, e.g. the original class ids of Oxford-IIIT Pet.
        dropped_classes: class name -> ``{"reason": why, "examples_removed": n}`` for classes
            `drop_empty_classes` removed (n usable examples of theirs left validation/test).
    """

    origin: str
    class_names: tuple[str, ...]
    channels: int
    image_size: tuple[int, int] | None
    splits: dict[str, SplitSource]
    absent: dict[str, str] = dataclasses.field(default_factory=dict)
    skipped: tuple[FileIssue, ...] = ()
    unused: tuple[FileIssue, ...] = ()
    converted: tuple[FileIssue, ...] = ()
    metadata: dict = dataclasses.field(default_factory=dict)
    dropped_classes: dict[str, dict] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class IndexedFile:
    """A file a layout assigns to a class and to a pool of examples.

    Attributes:
        path: the file.
        label: class id in 0..K-1.
        group: ``"pool"`` (train + validation, and test where the layout has no test list) or
            ``"test"`` (the layout's own test list).
    """

    path: str
    label: int
    group: str = "pool"


@dataclasses.dataclass
class FileIndex:
    """A file layout read without decoding anything: which files, which classes, which lists.

    Attributes:
        root: the folder read.
        layout: the layout's name (``"oxford_iiit_pet"``, ``"cats_vs_dogs"``, ``"folder"``).
        class_names: names of class ids 0..K-1.
        files: the image files the layout assigns to a class and a group.
        skipped: files rejected before decoding (not images, listed but missing, ...).
        unused: image files the layout does not use (e.g. in no split list).
        absent: split name -> why the layout lacks it (e.g. no ``test.txt``).
        official_test: whether the layout has its own test list (group ``"test"``); if not,
            test examples are held out of the pool.
        pool_name: how the pool is named in descriptions, e.g. ``"annotations/trainval.txt"``.
        test_name: how the layout's test list is named.
        metadata: layout-specific facts passed on to `Source.metadata`.
    """

    root: str
    layout: str
    class_names: tuple[str, ...]
    files: list[IndexedFile]
    skipped: list[FileIssue] = dataclasses.field(default_factory=list)
    unused: list[FileIssue] = dataclasses.field(default_factory=list)
    absent: dict[str, str] = dataclasses.field(default_factory=dict)
    official_test: bool = False
    pool_name: str = "all files"
    test_name: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)


def describe_size(size: float | None, total: int) -> str:
    """Renders a split size for descriptions: ``"10% (30)"`` or ``"10,000"``."""
    count = split_count(size, total)
    if isinstance(size, float):
        return f"{size:.0%} ({count:,})" if round(size * 100) == size * 100 else f"{count:,}"
    return f"{count:,}"


def fingerprint(*parts: Sequence) -> str:
    """A short hash of the items of `parts`: it changes whenever a split's membership does."""
    h = hashlib.sha1()
    for part in parts:
        for item in part:
            h.update(str(item).encode())
            h.update(b"\0")
    return h.hexdigest()[:16]


def _progress_bar(verbose: int, what: str):
    if not verbose:
        return None
    import keras

    from tfresnet.console import progress_verbose

    bar = {}

    def update(done: int, total: int) -> None:
        if total == 0 or (not bar and done == total):
            return  # nothing to decode (all cached): no bar
        if not bar:
            print(f"Validating {total:,} {what}")
            # An animated bar on a terminal, one plain line when done in a pipe or file.
            bar["bar"] = keras.utils.Progbar(total, unit_name="file", verbose=progress_verbose(1))
        bar["bar"].update(done)

    return update


def _file_split(files: list[IndexedFile], checks: dict, description: str) -> SplitSource:
    paths = [checks[f.path].decode_path for f in files]
    labels = np.asarray([f.label for f in files], dtype=np.int32)
    elements = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths, dtype=tf.string), tf.constant(labels, dtype=tf.int32))
    )
    return SplitSource(elements, "path", labels, description, fingerprint(paths, labels))


def source_from_index(
    index: FileIndex,
    ctx: LoadContext,
    *,
    origin: str,
    test_split: float | None = None,
) -> Source:
    """Validates a layout's files and splits them into train, validation and test.

    Validation and (where the layout has no test list) test examples are held out of the pool
    with one stratified, seeded split; both sizes are fractions (or counts) of the whole pool.

    Args:
        index: the layout, from a dataset module's ``index_directory``.
        ctx: the loader's settings (validation split, seed, cache directory, verbosity).
        origin: where the data came from, for the bundle's repr.
        test_split: fraction or count of the pool held out as test; only for layouts without
            their own test list.

    Returns:
        A `Source` of file paths (`SplitSource.kind` ``"path"``).

    Raises:
        ValueError: for a `test_split` on a layout that has its own test list, or when no file
            is usable.
    """
    if index.official_test and test_split:
        raise ValueError(
            f"{index.layout} has its own test list ({index.test_name}); test_split cannot be "
            f"used with it. Received test_split={test_split!r}"
        )
    checks = validate_images(
        [f.path for f in index.files],
        cache_dir=ctx.cache_dir,
        progress=_progress_bar(ctx.verbose, f"images in {index.root}"),
    )
    usable = [f for f in index.files if checks[f.path].ok]
    names = index.class_names
    skipped = list(index.skipped) + [
        FileIssue(f.path, checks[f.path].reason, names[f.label])
        for f in index.files
        if not checks[f.path].ok
    ]
    converted = [
        FileIssue(f.path, checks[f.path].note, names[f.label])
        for f in usable
        if checks[f.path].converted
    ]
    if not usable:
        raise ValueError(
            f"No usable image in {index.root} ({len(skipped)} files skipped; run "
            f"`tfresnet scan-data {index.root}` for the reasons)."
        )
    splits, absent = _index_splits(index, usable, checks, ctx, test_split)
    return Source(
        origin=origin,
        class_names=tuple(index.class_names),
        channels=3,
        image_size=None,
        splits={name: splits[name] for name in SPLITS if name in splits},
        absent={name: absent[name] for name in SPLITS if name not in splits},
        skipped=tuple(skipped),
        unused=tuple(index.unused),
        converted=tuple(converted),
        metadata=dict(index.metadata),
    )


def _index_splits(index: FileIndex, usable: list[IndexedFile], checks: dict, ctx: LoadContext,
                  test_split: float | None) -> tuple[dict[str, SplitSource], dict[str, str]]:
    """The splits of a layout's usable files, and why the others are absent."""
    absent = dict(index.absent)
    splits: dict[str, SplitSource] = {}
    pool = [f for f in usable if f.group == "pool"]
    if pool and "train" not in absent:
        sizes = {"validation": ctx.validation_split}
        if not index.official_test:
            sizes["test"] = test_split
        labels = np.asarray([f.label for f in pool])
        parts = stratified_split(labels, sizes, seed=ctx.seed)
        for name, size in sizes.items():
            if len(parts[name]) == 0:
                absent.setdefault(name, f"{name}_split={size!r} holds out no example")
                continue
            splits[name] = _file_split(
                [pool[i] for i in parts[name]],
                checks,
                f"stratified {describe_size(size, len(pool))} of {index.pool_name}, "
                f"seed {ctx.seed}",
            )
        splits["train"] = _file_split(
            [pool[i] for i in parts["train"]], checks, f"{index.pool_name} minus held-out examples"
        )
    test = [f for f in usable if f.group == "test"]
    if index.official_test and test:
        splits["test"] = _file_split(test, checks, index.test_name)
    for name in SPLITS:
        if name not in splits:
            absent.setdefault(name, "no usable file")
    return splits, absent


def _array_split(x: np.ndarray, y: np.ndarray, description: str) -> SplitSource:
    if x.ndim == 3:
        x = x[..., None]  # grayscale digits: HxW -> HxWx1
    y = y.astype(np.int32)
    elements = tf.data.Dataset.from_tensor_slices((x.astype(np.uint8), y))
    h = hashlib.sha1(x.tobytes())
    h.update(y.tobytes())
    return SplitSource(elements, "image", y, description, h.hexdigest()[:16])


HOLDOUTS = ("stratified", "last")


def source_from_arrays(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    ctx: LoadContext,
    *,
    origin: str,
    class_names: Sequence[str],
    pool_name: str,
    test_name: str,
    holdout: str = "stratified",
    expand: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> Source:
    """Splits in-memory uint8 images (N, H, W[, C]) into train, validation and test.

    Validation is a stratified, seeded sample of the training arrays (`ctx.validation_split`),
    or with ``holdout="last"`` that many of the last training examples in file order (Nielsen's
    split of MNIST: the first 50,000 train, the last 10,000 validate); the test arrays are the
    test split as they are.

    Args:
        holdout: ``"stratified"`` or ``"last"``.
        expand: applied to the training split only, after the split, so no validation digit
            leaks into training as a shifted copy: ``(x, y) -> (x, y)``.

    Returns:
        A `Source` of decoded images (`SplitSource.kind` ``"image"``).

    Raises:
        ValueError: for an unknown `holdout`.
    """
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout must be one of {HOLDOUTS}. Received holdout={holdout!r}")
    if holdout == "last":
        count = split_count(ctx.validation_split, len(y_train))
        order = np.arange(len(y_train))
        parts = {"train": order[: len(order) - count], "validation": order[len(order) - count:]}
        how = f"the last {count:,} (file order)"
    else:
        parts = stratified_split(y_train, {"validation": ctx.validation_split}, seed=ctx.seed)
        how = f"stratified {describe_size(ctx.validation_split, len(y_train))}"
    x_fit, y_fit = x_train[parts["train"]], y_train[parts["train"]]
    fit_name = f"{pool_name} minus validation"
    if expand is not None:
        x_fit, y_fit = expand(x_fit, y_fit)
        fit_name += f", expanded to {len(y_fit):,}"
    splits = {"train": _array_split(x_fit, y_fit, fit_name)}
    absent = {}
    if len(parts["validation"]):
        splits["validation"] = _array_split(
            x_train[parts["validation"]],
            y_train[parts["validation"]],
            f"{how} of {pool_name}" + (f", seed {ctx.seed}" if holdout == "stratified" else ""),
        )
    else:
        absent["validation"] = f"validation_split={ctx.validation_split!r} holds out no example"
    if x_test is not None and len(x_test):
        splits["test"] = _array_split(x_test, y_test, test_name)
    else:
        absent["test"] = "the source has no test set"
    channels = 1 if x_train.ndim == 3 else int(x_train.shape[-1])
    return Source(
        origin=origin,
        class_names=tuple(class_names),
        channels=channels,
        image_size=(int(x_train.shape[1]), int(x_train.shape[2])),
        splits={name: splits[name] for name in SPLITS if name in splits},
        absent=absent,
    )


def reason_kind(reason: str) -> str:
    """The kind of a skip reason, without its details: ``"not an image: text file"`` ->
    ``"not an image"``; counts of skipped files are grouped by it."""
    return reason.split(":", 1)[0].strip()


def reason_counts(issues: Sequence[FileIssue]) -> dict[str, int]:
    """How many of `issues` there are of each `reason_kind`, most first (ties by name)."""
    counts = collections.Counter(reason_kind(issue.reason) for issue in issues)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
