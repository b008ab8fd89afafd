"""tensorflow-datasets as the fallback source, guarded so that an offline machine fails fast.

`tfds.load(..., download=True)` on a machine without network can retry for minutes before it
gives up. Here a dataset is first read from tensorflow-datasets' data directory as it is; only
if it is not prepared there is a download attempted, and only after a connectivity probe with
a 3-second budget (DNS included) succeeds. Otherwise `DataNotFoundError` says which files to
put where.

Image features are read as encoded bytes (``tfds.decode.SkipDecoding``) so that the validation
split can be made from the labels alone, and the pipeline decodes images the same way as for
files. Splits held out of tensorflow-datasets' ``train`` split are stratified and keyed by each
record's file name, so they do not depend on the order records are read in.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import urllib.parse
import urllib.request

import numpy as np
import tensorflow as tf

from tfresnet.console import is_terminal
from tfresnet.data.sources import (
    SPLITS,
    DataNotFoundError,
    LoadContext,
    Source,
    SplitSource,
    describe_size,
)
from tfresnet.data.splits import stratified_split

__all__ = ["network_available", "tfds_arrays", "tfds_datasets", "tfds_image_source"]

PROBE_HOST = "storage.googleapis.com"  # where tensorflow-datasets downloads and metadata live
PROBE_TIMEOUT_S = 3.0


def network_available(host: str = PROBE_HOST, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Returns whether a TCP connection to `host` (or the HTTPS proxy) opens within `timeout`.

    Name resolution runs in a daemon thread so that a hanging DNS server cannot stretch the
    budget (``socket.getaddrinfo`` has no timeout of its own).
    """
    proxy = urllib.request.getproxies().get("https")
    if proxy:
        parsed = urllib.parse.urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parsed.hostname or host, parsed.port or 80
    result: dict = {}

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result["ok"] = True
        except OSError:
            result["ok"] = False

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result.get("ok"))


def _import_tfds(missing: str):
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DataNotFoundError(f"{missing}\ntensorflow-datasets is not installed ({err}).") from None
    return tfds


def tfds_datasets(name: str, splits, ctx: LoadContext, *, missing: str, skip_image_decoding=True):
    """Opens tensorflow-datasets splits, downloading only when the network answers.

    Args:
        name: the tensorflow-datasets name.
        splits: split names to open.
        ctx: the loader's settings (`tfds_data_dir`).
        missing: the message saying which files to put where, used when nothing works.
        skip_image_decoding: read image features as encoded bytes.

    Returns:
        ``(builder, {split: tf.data.Dataset of feature dicts})``.

    Raises:
        DataNotFoundError: if the dataset is not prepared and cannot be downloaded.
    """
    tfds = _import_tfds(missing)
    builder = tfds.builder(name, data_dir=ctx.tfds_data_dir)
    decoders = None
    if skip_image_decoding:
        decoders = {
            key: tfds.decode.SkipDecoding()
            for key, feature in builder.info.features.items()
            if isinstance(feature, tfds.features.Image)
        }

    def open_splits():
        return {
            split: builder.as_dataset(split=split, decoders=decoders, shuffle_files=False)
            for split in splits
        }

    try:
        return builder, open_splits()
    except (AssertionError, OSError, tf.errors.NotFoundError):
        pass  # not prepared in tensorflow-datasets' data directory
    if not network_available():
        searched = ctx.data_dir or "none (no data_dir argument, $TFRESNET_DATA_DIR unset)"
        raise DataNotFoundError(
            f"{missing}\nData directory searched: {searched}.\n"
            f"tensorflow-datasets fallback: {name!r} is not prepared in "
            f"{os.path.dirname(os.path.dirname(builder.data_dir))} and cannot be downloaded: "
            f"{PROBE_HOST}:443 could not be reached within {PROBE_TIMEOUT_S:.0f} s."
        ) from None
    print(f"Downloading {name!r} with tensorflow-datasets into {builder.data_dir} ...")
    if not is_terminal(sys.stderr):
        # tqdm's stacked bars move the cursor with ANSI codes: keep them out of logs.
        tfds.disable_progress_bar()
    builder.download_and_prepare()
    return builder, open_splits()


def tfds_arrays(name: str, splits, ctx: LoadContext, *, missing: str) -> dict:
    """Reads whole small splits (MNIST) as numpy arrays: split -> (images, labels)."""
    tfds = _import_tfds(missing)
    _, datasets = tfds_datasets(name, splits, ctx, missing=missing, skip_image_decoding=False)
    out = {}
    for split, ds in datasets.items():
        batch = tfds.as_numpy(ds.batch(1 << 30))
        data = next(iter(batch))
        out[split] = (np.asarray(data["image"]), np.asarray(data["label"]))
    return out


def _location(builder) -> str:
    return f"tensorflow-datasets {builder.name!r} {builder.version} in {builder.data_dir}"


def tfds_image_source(
    name: str,
    ctx: LoadContext,
    *,
    missing: str,
    label_key: str,
    key_feature: str,
    test_split: float | None = None,
    official_test: str | None = None,
    class_names=None,
) -> Source:
    """Reads an image-classification dataset from tensorflow-datasets as encoded images.

    The ``train`` split is the pool: validation (and, without an official test split, test)
    examples are held out of it with a stratified, seeded split keyed by `key_feature`.

    Args:
        name: the tensorflow-datasets name.
        ctx: the loader's settings.
        missing: the message saying which files to put where, used when nothing works.
        label_key: the label feature (e.g. ``"label"``, ``"species"``).
        key_feature: a feature unique per record (its file name).
        test_split: fraction or count of ``train`` held out as test, without an official one.
        official_test: name of the dataset's own test split, if it has one.
        class_names: names of the label ids; None reads them from the label feature.

    Returns:
        A `Source` of encoded images (`SplitSource.kind` ``"bytes"``).
    """
    wanted = ["train"] + ([official_test] if official_test else [])
    builder, datasets = tfds_datasets(name, wanted, ctx, missing=missing)
    if class_names is None:
        class_names = builder.info.features[label_key].names
    keys, labels = _keys_and_labels(datasets["train"], key_feature, label_key, name)
    sizes = {"validation": ctx.validation_split}
    if official_test is None:
        sizes["test"] = test_split
    parts = stratified_split(labels, sizes, seed=ctx.seed)
    origin = _location(builder)
    splits: dict[str, SplitSource] = {}
    for split, elements in _members(datasets["train"], keys, parts, key_feature, label_key).items():
        if split == "train":
            description = "tensorflow-datasets' train split minus held-out examples"
        else:
            description = (
                f"stratified {describe_size(sizes[split], len(labels))} of tensorflow-datasets' "
                f"train split, seed {ctx.seed}"
            )
        splits[split] = SplitSource(
            elements, "bytes", labels[parts[split]], description, f"{origin}|{split}|{ctx.seed}|{sizes}"
        )
    absent = {
        split: f"{split}_split={sizes.get(split)!r} holds out no example"
        for split in SPLITS
        if split in parts and len(parts[split]) == 0
    }
    if official_test:
        splits["test"] = _official_test(datasets[official_test], official_test, label_key, origin)
    return Source(
        origin=origin,
        class_names=tuple(class_names),
        channels=3,
        image_size=None,
        splits={split: splits[split] for split in SPLITS if split in splits},
        absent=absent,
    )


def _keys_and_labels(ds, key_feature: str, label_key: str, name: str) -> tuple[list[bytes], np.ndarray]:
    """Every record's key and label, in read order.

    Raises:
        ValueError: if the key is not unique per record.
    """
    keys, labels = [], []
    for key, label in ds.map(lambda ex: (ex[key_feature], ex[label_key])).as_numpy_iterator():
        keys.append(key)
        labels.append(label)
    if len(set(keys)) != len(keys):
        raise ValueError(f"{name}: the {key_feature!r} feature is not unique per record.")
    return keys, np.asarray(labels, dtype=np.int32)


def _members(ds, keys: list[bytes], parts: dict, key_feature: str, label_key: str) -> dict:
    """Split -> the ``(image, label)`` records of `ds` in it, for the non-empty parts.

    Records are assigned by key through a lookup table, so the splits do not depend on the order
    the records are read in.
    """
    codes = np.zeros(len(keys), dtype=np.int32)
    for code, split in enumerate(SPLITS):
        if split in parts:
            codes[parts[split]] = code
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string), tf.constant(codes)),
        default_value=-1,
    )

    def member_of(code):
        elements = ds.map(lambda ex: (ex[key_feature], ex["image"], tf.cast(ex[label_key], tf.int32)))
        elements = elements.filter(lambda key, image, label: tf.equal(table.lookup(key), code))
        return elements.map(lambda key, image, label: (image, label))

    return {
        split: member_of(code)
        for code, split in enumerate(SPLITS)
        if split in parts and len(parts[split])
    }


def _official_test(ds, split: str, label_key: str, origin: str) -> SplitSource:
    """A dataset's own test split, as it is."""
    labels = np.fromiter(ds.map(lambda ex: ex[label_key]).as_numpy_iterator(), dtype=np.int32)
    elements = ds.map(lambda ex: (ex["image"], tf.cast(ex[label_key], tf.int32)))
    return SplitSource(
        elements, "bytes", labels, f"tensorflow-datasets' {split} split", f"{origin}|{split}"
    )
