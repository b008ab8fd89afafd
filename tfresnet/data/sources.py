"""What a dataset loader hands to the pipeline: labelled, split, validated examples.

Each dataset module turns its own layout (an `.npz`, IDX files, an annotation list, class
folders, a tensorflow-datasets builder) into a `Source`: one `SplitSource` per present split,
each an unbatched ``tf.data.Dataset`` of ``(x, label)`` pairs, where ``x`` is a file path, the
encoded bytes of an image, or a decoded uint8 image. `tfresnet.data.pipeline` does the rest
(decode, resize, cache, shuffle, batch, augment) the same way for every dataset.

File layouts go through `FileIndex` -> `source_from_index`, which validates every file
(`tfresnet.data.images`) and makes the stratified, seeded splits (`tfresnet.data.splits`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfresnet.data.images import validate_images
from tfresnet.data.splits import split_count, stratified_split

__all__ = [
    "SPLITS",
    "DataNotFoundError",
    "FileIndex",
    "FileIssue",
    "IndexedFile",
    "LoadContext",
    "Source",
    "SplitSource",
    "describe_size",
    "source_from_arrays",
    "source_from_index",
]

SPLITS = ("train", "validation", "test")


class DataNotFoundError(FileNotFoundError):
    """A dataset is neither in the data directory nor obtainable from tensorflow-datasets.

    The message says which files to put where.
    """


@dataclasses.dataclass(frozen=True)
class FileIssue:
    """A file a loader found but does not train on, and why."""

    path: str
    reason: str


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


def _fingerprint(*parts: Sequence) -> str:
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

    bar = {}

    def update(done: int, total: int) -> None:
        if total == 0 or (not bar and done == total):
            return  # nothing to decode (all cached): no bar
        if not bar:
            print(f"Validating {total:,} {what}")
            bar["bar"] = keras.utils.Progbar(total, unit_name="file")
        bar["bar"].update(done)

    return update


def _file_split(files: list[IndexedFile], checks: dict, description: str) -> SplitSource:
    paths = [checks[f.path].decode_path for f in files]
    labels = np.asarray([f.label for f in files], dtype=np.int32)
    elements = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths, dtype=tf.string), tf.constant(labels, dtype=tf.int32))
    )
    return SplitSource(elements, "path", labels, description, _fingerprint(paths, labels))


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
    skipped = list(index.skipped) + [
        FileIssue(f.path, checks[f.path].reason) for f in index.files if not checks[f.path].ok
    ]
    converted = [FileIssue(f.path, checks[f.path].note) for f in usable if checks[f.path].converted]
    if not usable:
        raise ValueError(
            f"No usable image in {index.root} ({len(skipped)} files skipped; run "
            f"`tfresnet scan-data {index.root}` for the reasons)."
        )

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


def _array_split(x: np.ndarray, y: np.ndarray, description: str) -> SplitSource:
    if x.ndim == 3:
        x = x[..., None]  # grayscale digits: HxW -> HxWx1
    y = y.astype(np.int32)
    elements = tf.data.Dataset.from_tensor_slices((x.astype(np.uint8), y))
    h = hashlib.sha1(x.tobytes())
    h.update(y.tobytes())
    return SplitSource(elements, "image", y, description, h.hexdigest()[:16])


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
) -> Source:
    """Splits in-memory uint8 images (N, H, W[, C]) into train, validation and test.

    Validation is a stratified, seeded sample of the training arrays (`ctx.validation_split`);
    the test arrays are the test split as they are.

    Returns:
        A `Source` of decoded images (`SplitSource.kind` ``"image"``).
    """
    parts = stratified_split(y_train, {"validation": ctx.validation_split}, seed=ctx.seed)
    splits = {
        "train": _array_split(
            x_train[parts["train"]], y_train[parts["train"]], f"{pool_name} minus validation"
        )
    }
    absent = {}
    if len(parts["validation"]):
        splits["validation"] = _array_split(
            x_train[parts["validation"]],
            y_train[parts["validation"]],
            f"stratified {describe_size(ctx.validation_split, len(y_train))} of {pool_name}, "
            f"seed {ctx.seed}",
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
