"""tf.data input pipelines: decode, resize, cache, shuffle, batch, augment, prefetch.

One function builds every split of every dataset (`make_dataset`), so MNIST arrays, validated
image files and tensorflow-datasets records go through the same steps:

1. shuffle the un-decoded elements (file names are cheap to shuffle; a full-size buffer),
   unless the split is cached, in which case the shuffle moves after the cache so that every
   epoch gets a new order;
2. decode in parallel (`tf.io.decode_image`, ``channels=3``, first frame of GIFs), counting
   and dropping any element that still fails (a second line of defence: validation already
   removed broken files) - see `DecodeCounter`; a pass shortened by such a drop is topped up
   with the split's first decodable elements, so every split has a known, fixed number of
   batches per epoch;
3. resize to ``image_size``: ``"resize"`` stretches, ``"crop"`` centre-crops to the target
   aspect ratio first, ``"pad"`` pads with black to it (`keras.layers.Resizing` with
   ``crop_to_aspect_ratio`` / ``pad_to_aspect_ratio``), then rounds to uint8, which keeps the
   cache four times smaller than float32;
4. cache in memory or in files (optional), then batch;
5. cast to **float32 in [0, 255]** with **int32 class ids** (or one-hot float32 labels when an
   augmentation mixes labels); no model-specific scaling happens here - a model's
   `tfresnet.models.layers.Preprocess` layer does it;
6. augment (training split only), then ``prefetch(AUTOTUNE)``.

``deterministic=True`` makes the order of training elements reproducible run to run (seeded
shuffles, ordered parallel maps); otherwise parallel maps may reorder them for speed.
Validation and test splits are never shuffled and always keep their order.

Given an `EpochCounter`, the training split's shuffle is keyed by the seed and the epoch (epoch
k's order is a function of (seed, k), not of how many passes this dataset object has made), and
with ``deterministic=True`` so is its augmentation, batch by batch: a run resumed at epoch k,
which builds a new dataset, reads epoch k exactly as an uninterrupted run does.
"""

from __future__ import annotations

import hashlib
import os

import keras
import tensorflow as tf

from tfresnet.data.augment import Augmentation
from tfresnet.data.sources import SplitSource

__all__ = ["RESIZE_MODES", "DecodeCounter", "EpochCounter", "make_dataset"]

RESIZE_MODES = ("resize", "crop", "pad")

# Shuffle buffer for elements that are not cheap to hold (encoded images, cached pixels).
_MAX_SHUFFLE_BUFFER = 10_000


class DecodeCounter:
    """Counts elements that failed to decode and were dropped, for one split.

    `tf.data`'s ``ignore_errors`` drops failing elements silently; two counters around it make
    the drops visible: ``failures`` = elements that entered decoding - elements that came out.
    The count is exact after a complete pass over the split (mid-epoch, elements still in
    flight count as failures).
    """

    def __init__(self):
        # Outside any tf.function or distribution scope: plain local counters.
        with tf.init_scope(), tf.device("/CPU:0"):
            self.attempted = tf.Variable(0, dtype=tf.int64, trainable=False, name="decode_attempted")
            self.delivered = tf.Variable(0, dtype=tf.int64, trainable=False, name="decode_delivered")

    @property
    def failures(self) -> int:
        """Elements dropped because they could not be decoded (exact after a full pass)."""
        return int(self.attempted.numpy() - self.delivered.numpy())


class EpochCounter:
    """The epoch a training split's next pass reads, which keys its shuffle and augmentation.

    Each pass (each new iterator, as Keras makes one per epoch) takes the current value and
    moves it on by one, so a dataset iterated by hand still gets a new order every pass; a
    trainer sets it at the start of each epoch (`set`), so that epoch k reads epoch k's order
    however many passes came before, e.g. none in a run resumed at epoch k.
    """

    def __init__(self):
        # Outside any tf.function or distribution scope, like `DecodeCounter`'s.
        with tf.init_scope(), tf.device("/CPU:0"):
            self.next_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_next_epoch")

    def set(self, epoch: int) -> None:
        """Makes the next pass read epoch `epoch`."""
        self.next_epoch.assign(epoch)

    def start_pass(self):
        """In a tf.data function: the epoch of the pass starting now; moves the counter on."""
        return self.next_epoch.assign_add(1) - 1

    def current(self):
        """In a tf.data function: the epoch of the pass under way."""
        return self.next_epoch.read_value() - 1


def _shuffle(ds, buffer: int, seed: int | None, epochs: EpochCounter | None):
    """`ds.shuffle`, in a new order every pass; keyed by (seed, epoch) when there is a counter."""
    if epochs is None or seed is None:
        return ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    size = int(ds.cardinality())

    def one_pass(_):
        # Run once per iterator: a dataset captured here is shared, caches included. `shuffle`
        # compares (global seed, op seed) with (0, 0) in Python, which fails for a tensor op
        # seed when the global seed is 0: this trace's graph gets a non-zero seed of its own
        # (graph mode: it touches nothing outside this function).
        tf.compat.v1.set_random_seed(seed % (2**31 - 1) + 1)
        epoch_seed = tf.constant(seed, tf.int64) * 1_000_003 + epochs.start_pass()
        return ds.shuffle(buffer, seed=epoch_seed, reshuffle_each_iteration=False)

    keyed = tf.data.Dataset.range(1).flat_map(one_pass)
    return keyed.apply(tf.data.experimental.assert_cardinality(size)) if size >= 0 else keyed


def _batch_key(seed: int, epoch, index):
    """The stateless random key of batch `index` of epoch `epoch`."""
    fold = tf.random.experimental.stateless_fold_in
    return fold(fold(tf.constant([seed, 0], tf.int64), epoch), index)


def _decode(x, kind: str, channels: int):
    if kind == "image":
        return x
    data = tf.io.read_file(x) if kind == "path" else x
    image = tf.io.decode_image(data, channels=channels, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, channels])
    return image


def _resizer(image_size, resize: str):
    layer = keras.layers.Resizing(
        image_size[0],
        image_size[1],
        crop_to_aspect_ratio=resize == "crop",
        pad_to_aspect_ratio=resize == "pad",
        fill_value=0.0,
    )

    def apply(image):
        resized = layer(tf.cast(image, tf.float32))
        return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)

    return apply


def make_dataset(
    split: SplitSource,
    *,
    training: bool,
    image_size: tuple[int, int],
    channels: int,
    source_size: tuple[int, int] | None = None,
    resize: str = "resize",
    batch_size: int = 32,
    cache: str | None = None,
    cache_name: str = "split",
    shuffle: bool = True,
    shuffle_buffer: int | None = None,
    seed: int | None = 0,
    deterministic: bool = False,
    augmentation=None,
    label_mode: str = "int",
    num_classes: int | None = None,
    drop_remainder: bool = False,
    counter: DecodeCounter | None = None,
    epochs: EpochCounter | None = None,
) -> tf.data.Dataset:
    """Builds the batched dataset of one split.

    Args:
        split: the split's elements (`tfresnet.data.sources.SplitSource`).
        training: shuffle and augment (the training split); False for validation and test.
        image_size: output (height, width).
        channels: 3 for colour datasets, 1 for MNIST.
        source_size: (height, width) shared by every source image, if known; no resize is done
            when it equals `image_size`.
        resize: one of `RESIZE_MODES`.
        batch_size: examples per batch.
        cache: None, ``"memory"``, or a directory for file caches. File caches are named after
            the split's fingerprint and the resize settings, so changed data or settings never
            read a stale cache.
        cache_name: prefix of the cache file names.
        shuffle: shuffle the training split (ignored for other splits).
        shuffle_buffer: shuffle buffer size; None means every element for file names, arrays
            and memory caches, and at most 10,000 for encoded images and file caches.
        seed: seed of the shuffles.
        deterministic: keep the training split's element order reproducible (slower parallel
            maps); other splits always keep their order.
        augmentation: a callable ``(images, labels) -> (images, labels)`` on batches, applied
            only when `training`.
        label_mode: ``"int"`` (int32 class ids) or ``"categorical"`` (one-hot float32).
        num_classes: needed for ``"categorical"``.
        drop_remainder: drop the last incomplete batch.
        counter: a `DecodeCounter` that counts elements dropped because decoding failed.
        epochs: an `EpochCounter` keying the training split's shuffle (and, with
            `deterministic` and an `Augmentation`, its augmentation) by the seed and the epoch.

    Returns:
        A `tf.data.Dataset` of ``(images, labels)`` batches: images float32
        ``(batch, height, width, channels)`` in [0, 255].
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}. Received resize={resize!r}")
    if label_mode not in ("int", "categorical"):
        raise ValueError(f"label_mode must be 'int' or 'categorical'. Received label_mode={label_mode!r}")
    n = split.size
    shuffle = shuffle and training
    # Validation and test keep their order always: predictions line up with labels across
    # runs (confusion matrices, per-example diagnostics) at little cost, as they are not shuffled.
    deterministic = deterministic or not training
    ds = split.elements
    cheap = split.kind in ("path", "image")
    if shuffle and cache is None:
        buffer = shuffle_buffer or (n if cheap else min(n, _MAX_SHUFFLE_BUFFER))
        ds = _shuffle(ds, max(buffer, 1), seed, epochs)

    if split.kind != "image":
        if counter is not None:
            def count_in(x, y):
                counter.attempted.assign_add(1)
                return x, y

            ds = ds.map(count_in)
        ds = ds.map(
            lambda x, y: (_decode(x, split.kind, channels), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
        # Second line of defence only: validation already skipped every file Pillow could not
        # decode, so this drops what changed on disk since, or what TF alone cannot read.
        ds = ds.ignore_errors()
        if counter is not None:
            def count_out(x, y):
                counter.delivered.assign_add(1)
                return x, y

            ds = ds.map(count_out)
        # ignore_errors leaves the number of elements unknown, so Keras would learn an epoch's
        # length only by running out of data ("Your input ran out of data" in epoch 1), and an
        # element dropped at run time would shorten that epoch below the steps the learning-rate
        # schedule counts. A short pass is topped up with the split's first decodable elements
        # (through their own pipeline, which is started only after a drop and is not counted),
        # so every pass has exactly n elements and tf.data knows it.
        filler = split.elements.map(lambda x, y: (_decode(x, split.kind, channels), y))
        filler = filler.ignore_errors().repeat()  # repeat() ends if a whole pass fails
        ds = ds.concatenate(filler).take(n).apply(tf.data.experimental.assert_cardinality(n))

    if tuple(image_size) != tuple(source_size or ()):
        resizer = _resizer(image_size, resize)
        ds = ds.map(
            lambda x, y: (resizer(x), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    else:
        ds = ds.map(lambda x, y: (tf.ensure_shape(x, [*image_size, channels]), y))

    if cache == "memory":
        ds = ds.cache()
    elif cache:
        os.makedirs(cache, exist_ok=True)
        settings = f"{split.fingerprint}-{image_size[0]}x{image_size[1]}-{resize}-{channels}"
        key = hashlib.sha1(settings.encode()).hexdigest()[:12]
        ds = ds.cache(os.path.join(cache, f"{cache_name}-{key}"))
    if shuffle and cache:
        buffer = shuffle_buffer or (n if cache == "memory" else min(n, _MAX_SHUFFLE_BUFFER))
        ds = _shuffle(ds, max(buffer, 1), seed, epochs)

    ds = ds.batch(
        batch_size,
        drop_remainder=drop_remainder,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )

    def to_float(images, labels):
        images = tf.cast(images, tf.float32)
        if label_mode == "categorical":
            return images, tf.one_hot(labels, num_classes, dtype=tf.float32)
        return images, tf.cast(labels, tf.int32)

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    keyed = deterministic and epochs is not None and seed is not None and isinstance(augmentation, Augmentation)
    if training and augmentation is not None and keyed:
        # One call at a time: each call sets the augmentation's random generators to its batch's
        # key first, and two calls in parallel would share those generators.
        ds = ds.enumerate().map(
            lambda index, batch: augmentation(*batch, key=_batch_key(seed, epochs.current(), index)))
    elif training and augmentation is not None:
        ds = ds.map(augmentation, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    return ds.with_options(options)
