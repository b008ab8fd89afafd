"""MNIST (LeCun, Cortes and Burges): 60,000 training and 10,000 test digits, 28x28 grayscale.

``mnist`` reads, from the data directory (or its ``mnist/`` or torchvision's ``MNIST/raw/``
sub-folder), either Keras' ``mnist.npz`` (the file ``keras.datasets.mnist.load_data()`` caches)
or LeCun's four IDX files, gzipped or not; otherwise tensorflow-datasets' ``mnist``.

``mnist-sample`` is a stratified sample shipped inside the package (6,000 training and 1,000
test digits, `scripts/make_mnist_sample.py`), so examples and tests run with no data at all.

Validation: by default a stratified, seeded 10,000 of the 60,000 training digits, the size of
the validation set in Nielsen's *Neural Networks and Deep Learning*, which takes the last 10,000
in file order instead: ``data_args={"holdout": "last"}`` does that (`validation_split` changes
the size). ``data_args={"expand": "shift1"}`` adds Nielsen's one-pixel shifts of every training
digit (50,000 -> 250,000; `tfresnet.data.augment.EXPANSIONS`).
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import os
import struct
from collections.abc import Callable

import numpy as np

from tfresnet.data.augment import EXPANSIONS, expand_arrays
from tfresnet.data.registry import register_dataset
from tfresnet.data.sources import (
    DataNotFoundError,
    LoadContext,
    Source,
    source_from_arrays,
)
from tfresnet.data.tfds_fallback import tfds_arrays

__all__ = ["SAMPLE_FILE", "check_mnist_arrays", "find_mnist", "read_idx", "read_mnist_dir"]

CLASS_NAMES = tuple(str(d) for d in range(10))
SAMPLE_FILE = "mnist_sample.npz"

# Key of the Keras npz layout -> LeCun's file stem. Kaggle's copies use ".idx3-ubyte".
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MISSING = """Could not find MNIST.
Put one of these in the data directory (data_dir=... or $TFRESNET_DATA_DIR), or in its mnist/ folder:
  - mnist.npz: the file keras.datasets.mnist.load_data() caches (keys x_train, y_train, x_test,
    y_test), e.g. from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz
  - LeCun's IDX files, each optionally gzipped (.gz): train-images-idx3-ubyte,
    train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte
For a small MNIST that needs no files at all, use load('mnist-sample')."""


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (LeCun's format: magic, dimensions, big-endian data), gzipped or not.

    Raises:
        ValueError: if the file is not a well-formed IDX file.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4]!r}).")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path}: IDX header promises {expected} bytes, the file has {len(data)}.")
    return np.frombuffer(data, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_path(directory: str, stem: str) -> str | None:
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            path = os.path.join(directory, name + suffix)
            if os.path.isfile(path):
                return path
    return None


def find_mnist(data_dir: str | None) -> tuple[str, str | dict] | None:
    """Finds MNIST files under a data directory.

    Returns:
        ``("npz", path)``, ``("idx", {key: path})`` or None.
    """
    if not data_dir:
        return None
    for directory in (data_dir, os.path.join(data_dir, "mnist"), os.path.join(data_dir, "MNIST", "raw")):
        npz = os.path.join(directory, "mnist.npz")
        if os.path.isfile(npz):
            return "npz", npz
        paths = {key: _idx_path(directory, stem) for key, stem in IDX_FILES.items()}
        if all(paths.values()):
            return "idx", paths
    return None


def check_mnist_arrays(arrays: dict[str, np.ndarray], where: dict[str, str]) -> dict[str, np.ndarray]:
    """Checks MNIST arrays before anything trains on them; returns them unchanged.

    Images must be uint8 ``(N, 28, 28)`` (a float array is refused rather than cast: its scale,
    [0, 1] or [0, 255], cannot be told apart safely), labels integer class ids 0-9 of shape
    ``(N,)``, and each split as many labels as images.

    Args:
        arrays: Keras key (``x_train``, ``y_train``, ``x_test``, ``y_test``) -> array.
        where: Keras key -> where the array came from, for messages (a file, ``"FILE, key
            'x_train'"``, a tensorflow-datasets builder).

    Raises:
        ValueError: naming the file, the key and what was found.
    """
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        wx, wy = where[f"x_{split}"], where[f"y_{split}"]
        if x.dtype != np.uint8:
            raise ValueError(
                f"{wx}: MNIST images must be uint8 pixels in [0, 255]. Found dtype {x.dtype} "
                f"(shape {x.shape}); convert the file, e.g. np.clip(x * 255, 0, 255).astype(np.uint8) "
                f"for pixels in [0, 1]."
            )
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"{wx}: MNIST images must have shape (N, 28, 28). Found shape {x.shape}.")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{wy}: MNIST labels must be integers 0-9. Found dtype {y.dtype}.")
        if y.ndim != 1:
            raise ValueError(f"{wy}: MNIST labels must have shape (N,). Found shape {y.shape}.")
        if len(x) != len(y):
            raise ValueError(
                f"{wx} holds {len(x):,} images but {wy} holds {len(y):,} labels; they must be equal."
            )
        bad = (y < 0) | (y > 9)
        if bad.any():
            values = np.unique(y[bad])
            raise ValueError(
                f"{wy}: MNIST labels must be class ids 0-9. Found {int(bad.sum()):,} outside, "
                f"values {values[:5].tolist()}{' ...' if len(values) > 5 else ''}."
            )
    return arrays


def _read_npz(path: str) -> dict[str, np.ndarray]:
    # allow_pickle=False: an .npz from elsewhere must not run code when loaded.
    with np.load(path, allow_pickle=False) as data:
        missing = sorted(set(IDX_FILES) - set(data.files))
        if missing:
            raise ValueError(f"{path} lacks the keys {missing} of Keras' mnist.npz layout.")
        arrays = {key: np.asarray(data[key]) for key in IDX_FILES}
    return check_mnist_arrays(arrays, {key: f"{path}, key {key!r}" for key in IDX_FILES})


def read_mnist_dir(data_dir: str) -> tuple[dict[str, np.ndarray], str]:
    """Reads MNIST from a data directory: (arrays by Keras key, origin description).

    Raises:
        DataNotFoundError: if no MNIST files are there.
    """
    found = find_mnist(data_dir)
    if found is None:
        raise DataNotFoundError(MISSING)
    kind, where = found
    if kind == "npz":
        return _read_npz(where), f"{where} (Keras mnist.npz)"
    arrays = check_mnist_arrays({key: read_idx(path) for key, path in where.items()}, where)
    return arrays, f"{os.path.dirname(where['x_train'])} (LeCun IDX files)"


def _read_full(ctx: LoadContext) -> tuple[dict[str, np.ndarray], str, str, str]:
    """MNIST from the data directory, else tensorflow-datasets: arrays, origin, pool and test names."""
    if find_mnist(ctx.data_dir):
        arrays, origin = read_mnist_dir(ctx.data_dir)
    else:
        splits = tfds_arrays("mnist", ("train", "test"), ctx, missing=MISSING)
        arrays = {
            "x_train": splits["train"][0][..., 0], "y_train": splits["train"][1],
            "x_test": splits["test"][0][..., 0], "y_test": splits["test"][1],
        }
        origin = "tensorflow-datasets 'mnist'"
        check_mnist_arrays(arrays, {key: f"{origin}, {key}" for key in IDX_FILES})
    return arrays, origin, "the {:,} training digits", "the official {:,} test digits"


def _read_sample(ctx: LoadContext) -> tuple[dict[str, np.ndarray], str, str, str]:
    """The sample shipped in the package: arrays, origin, pool and test names."""
    resource = importlib.resources.files("tfresnet.data") / SAMPLE_FILE
    with importlib.resources.as_file(resource) as path:
        arrays = _read_npz(str(path))
    return (arrays, f"tfresnet/data/{SAMPLE_FILE} (stratified sample of MNIST)",
            "the sample's {:,} training digits", "the sample's {:,} test digits (from the official test set)")


def _loader(read: Callable[[LoadContext], tuple[dict[str, np.ndarray], str, str, str]]):
    """The registry loader of an MNIST variant whose arrays `read(ctx)` returns."""

    def load(ctx: LoadContext, holdout: str = "stratified", expand: str | None = None) -> Source:
        """Loads MNIST arrays and splits them.

        Args:
            holdout: ``"stratified"`` (seeded, every class in proportion) or ``"last"`` (the last
                `validation_split` digits in file order, as Nielsen's book splits MNIST).
            expand: None, or a `tfresnet.data.augment.EXPANSIONS` name applied to the training
                split (``"shift1"``: Nielsen's one-pixel shifts, 5x the digits).
        """
        arrays, origin, pool, test = read(ctx)
        if expand is not None and expand not in EXPANSIONS:  # before splitting anything
            raise ValueError(f"Unknown expansion {expand!r}; choose one of {list(EXPANSIONS)}.")
        return source_from_arrays(
            arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], ctx,
            origin=origin, class_names=CLASS_NAMES, pool_name=pool.format(len(arrays["y_train"])),
            test_name=test.format(len(arrays["y_test"])), holdout=holdout,
            expand=None if expand is None else functools.partial(expand_arrays, name=expand),
        )

    return load


# Registry name -> (description, default validation split, reader). The full set holds out 10,000
# (the size of Nielsen's validation set), the sample 1,000 of its 6,000.
VARIANTS = {
    "mnist": ("MNIST digits, 60,000 train + 10,000 test, 28x28x1", 10_000, _read_full),
    "mnist-sample": (
        "stratified MNIST sample shipped with tfresnet, 6,000 train + 1,000 test", 1_000, _read_sample
    ),
}

for _name, (_description, _validation_split, _read) in VARIANTS.items():
    register_dataset(
        _name, description=_description, default_image_size=(28, 28), default_validation_split=_validation_split,
        flips_keep_class=False,  # a mirrored 2, 3 or 7 is no digit: no flips in augmentation or TTA
    )(_loader(_read))
