"""tf.data input pipelines: decode, resize, cache, shuffle, batch, augment, prefetch.

One function builds every split of every dataset (`make_dataset`), so MNIST arrays, validated
image files and tensorflow-datasets records go through the same steps, set by one
`PipelineOptions`:

1. shuffle the un-decoded elements (file names are cheap to shuffle; a full-size buffer),
   unless the split is cached, in which case the shuffle moves after the cache so that every
   epoch gets a new order;
2. decode and resize in parallel (`tfresnet.data.decode.decode_image`, the function the
   SavedModel's ``serving_bytes`` signature uses too: ``channels=3``, first frame of GIFs), to
   ``image_size``: ``"resize"`` stretches, ``"crop"`` centre-crops to the target aspect ratio
   first, ``"pad"`` pads with black to it (the boxes of `keras.layers.Resizing` with
   ``crop_to_aspect_ratio`` / ``pad_to_aspect_ratio``), then rounds to uint8, which keeps the
   cache four times smaller than float32. An element that still fails is counted and dropped
   (a second line of defence: validation already removed broken files) - see `DecodeCounter`;
   a pass shortened by such a drop is topped up with the split's first decodable elements, so
   every split has a known, fixed number of batches per epoch. Decoded arrays (MNIST) are only
   resized, and only when their size differs;
3. cache in memory or in files (optional), then batch;
4. cast to **float32 in [0, 255]** with **int32 class ids** (or one-hot float32 labels when an
   augmentation mixes labels); no model-specific scaling happens here - a model's
   `tfresnet.models.layers.Preprocess` layer does it;
5. augment (training split only), then ``prefetch(AUTOTUNE)``.

``deterministic=True`` makes the order of training elements reproducible run to run (seeded
shuffles, ordered parallel maps); otherwise parallel maps may reorder them for speed.
Validation and test splits are never shuffled and always keep their order.

Given an `EpochCounter`, the training split's shuffle is keyed by the seed and the epoch (epoch
k's order is a function of (seed, k), not of how many passes this dataset object has made), and
with ``deterministic=True`` so is its augmentation, batch by batch: a run resumed at epoch k,
which builds a new dataset, reads epoch k exactly as an uninterrupted run does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import tensorflow as tf

from tfresnet.checks import number
from tfresnet.data.augment import build_augmentation
from tfresnet.data.decode import RESIZE_MODES, decode_image, resize_image
from tfresnet.data.sources import SplitSource

__all__ = ["RESIZE_MODES", "DecodeCounter", "EpochCounter", "PipelineOptions", "make_dataset"]

LABEL_MODES = ("int", "categorical")

# Shuffle buffer for elements that are not cheap to hold (encoded images, cached pixels).
_MAX_SHUFFLE_BUFFER = 10_000


def _check_image_size(image_size) -> tuple[int, int]:
    try:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    except TypeError:
        size = ()
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(
            f"image_size must be an int or (height, width) of positive ints. "
            f"Received image_size={image_size!r}"
        )
    return size


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """How the splits of a dataset become batches: what `tfresnet.data.load` passes to each split.

    Checked when made: an invalid value raises ValueError naming it. `resolved` fills in what
    depends on the dataset and builds the augmentation.

    Attributes:
        image_size: output (height, width), or one int for squares; None for the dataset's
            default (`load`).
        resize: one of `RESIZE_MODES`: ``"resize"`` (stretch), ``"crop"`` (centre crop to the
            aspect ratio) or ``"pad"`` (pad to the aspect ratio).
        batch_size: examples per batch.
        cache: None, ``"memory"``, or a directory for tf.data file caches of decoded, resized
            images. File caches are named after the split's fingerprint and the resize settings,
            so changed data or settings never read a stale cache.
        shuffle: shuffle the training split every epoch (other splits never are).
        shuffle_buffer: shuffle buffer size; None means every element for file names, arrays
            and memory caches, and at most 10,000 for encoded images and file caches.
        seed: seed of the splits (in `load`), the training shuffle and the augmentation.
        deterministic: make the training split's element order reproducible from run to run
            (slower parallel maps). Validation and test always keep a fixed order.
        drop_remainder: drop incomplete last batches.
        augment: augmentation preset (``"none"``, ``"light"``, ``"standard"``, ``"strong"``,
            ``"mnist-shift"``), a list of Keras preprocessing layers, an `Augmentation`, or None;
            applied to the training split only.
        label_mode: ``"int"`` (int32 class ids) or ``"categorical"`` (one-hot float32); None
            picks ``"categorical"`` only when the augmentation mixes labels.
    """

    image_size: int | tuple[int, int] | None = None
    resize: str = "resize"
    batch_size: int = 32
    cache: str | os.PathLike | None = None
    shuffle: bool = True
    shuffle_buffer: int | None = None
    seed: int | None = 0
    deterministic: bool = False
    drop_remainder: bool = False
    augment: Any = None
    label_mode: str | None = None

    def __post_init__(self):
        number(self.batch_size, "batch_size", integer=True)
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}. Received resize={self.resize!r}")
        if self.cache is not None and not isinstance(self.cache, (str, os.PathLike)):
            raise ValueError(f"cache must be None, 'memory' or a directory. Received cache={self.cache!r}")
        if self.image_size is not None:
            object.__setattr__(self, "image_size", _check_image_size(self.image_size))
        if self.label_mode not in (None, *LABEL_MODES):
            raise ValueError(
                f"label_mode must be 'int' or 'categorical'. Received label_mode={self.label_mode!r}"
            )
        if self.cache is not None:
            object.__setattr__(self, "cache", os.fspath(self.cache))

    def resolved(self, default_image_size=None) -> PipelineOptions:
        """These options with an image size, the augmentation built and the label mode chosen.

        Args:
            default_image_size: the dataset's (height, width), used when `image_size` is None.

        Raises:
            ValueError: for no image size at all, an unknown augmentation preset, or
                ``label_mode="int"`` with an augmentation that mixes labels.
        """
        size = _check_image_size(default_image_size if self.image_size is None else self.image_size)
        augmentation = build_augmentation(self.augment, seed=self.seed)
        mixes = augmentation is not None and augmentation.mixes_labels
        label_mode = self.label_mode
        if label_mode is None:
            label_mode = "categorical" if mixes else "int"
        elif label_mode == "int" and mixes:
            raise ValueError(
                f"augment={augmentation.name!r} mixes labels (MixUp/CutMix) and needs "
                f"label_mode='categorical'. Received label_mode={label_mode!r}"
            )
        return dataclasses.replace(self, image_size=size, augment=augmentation, label_mode=label_mode)


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


def _buffer(options: PipelineOptions, n: int, *, whole: bool) -> int:
    """The shuffle buffer: the option, else all `n` elements when `whole`, else at most 10,000."""
    return max(options.shuffle_buffer or (n if whole else min(n, _MAX_SHUFFLE_BUFFER)), 1)


def _counted(ds, count: tf.Variable):
    """`ds` unchanged, adding one to `count` per element that passes."""

    def add_one(x, y):
        count.assign_add(1)
        return x, y

    return ds.map(add_one)


def _decoded(ds, split: SplitSource, options: PipelineOptions, channels: int, deterministic: bool,
             counter: DecodeCounter | None):
    """Decodes and resizes file paths or encoded images; drops (and counts) what fails."""

    def decode(x, y):
        data = tf.io.read_file(x) if split.kind == "path" else x
        return decode_image(data, options.image_size, channels, options.resize), y

    if counter is not None:
        ds = _counted(ds, counter.attempted)
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    # Second line of defence only: validation already skipped every file Pillow could not
    # decode, so this drops what changed on disk since, or what TF alone cannot read.
    ds = ds.ignore_errors()
    if counter is not None:
        ds = _counted(ds, counter.delivered)
    # ignore_errors leaves the number of elements unknown, so Keras would learn an epoch's
    # length only by running out of data ("Your input ran out of data" in epoch 1), and an
    # element dropped at run time would shorten that epoch below the steps the learning-rate
    # schedule counts. A short pass is topped up with the split's first decodable elements
    # (through their own pipeline, which is started only after a drop and is not counted),
    # so every pass has exactly n elements and tf.data knows it.
    filler = split.elements.map(decode).ignore_errors().repeat()  # repeat() ends if a whole pass fails
    return ds.concatenate(filler).take(split.size).apply(tf.data.experimental.assert_cardinality(split.size))


def _resized(ds, options: PipelineOptions, channels: int, source_size, deterministic: bool):
    """Resizes decoded images, unless they already have the output size."""
    size = options.image_size
    if tuple(size) == tuple(source_size or ()):
        return ds.map(lambda x, y: (tf.ensure_shape(x, [*size, channels]), y))
    return ds.map(
        lambda x, y: (resize_image(x, size, options.resize), y),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )


def _cached(ds, split: SplitSource, options: PipelineOptions, channels: int, cache_name: str):
    if options.cache == "memory":
        return ds.cache()
    if not options.cache:
        return ds
    os.makedirs(options.cache, exist_ok=True)
    height, width = options.image_size
    settings = f"{split.fingerprint}-{height}x{width}-{options.resize}-{channels}"
    key = hashlib.sha1(settings.encode()).hexdigest()[:12]
    return ds.cache(os.path.join(options.cache, f"{cache_name}-{key}"))


def _batched(ds, options: PipelineOptions, num_classes: int | None, deterministic: bool):
    """Batches; images to float32 in [0, 255], labels to int32 ids or one-hot float32."""
    ds = ds.batch(
        options.batch_size,
        drop_remainder=options.drop_remainder,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )

    def to_float(images, labels):
        images = tf.cast(images, tf.float32)
        if options.label_mode == "categorical":
            return images, tf.one_hot(labels, num_classes, dtype=tf.float32)
        return images, tf.cast(labels, tf.int32)

    return ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def _augmented(ds, options: PipelineOptions, deterministic: bool, epochs: EpochCounter | None):
    augmentation, seed = options.augment, options.seed
    if augmentation is None:
        return ds
    if deterministic and epochs is not None and seed is not None:
        # One call at a time: each call sets the augmentation's random generators to its batch's
        # key first, and two calls in parallel would share those generators.
        return ds.enumerate().map(
            lambda index, batch: augmentation(*batch, key=_batch_key(seed, epochs.current(), index)))
    return ds.map(augmentation, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def make_dataset(
    split: SplitSource,
    options: PipelineOptions | None = None,
    *,
    training: bool,
    channels: int,
    source_size: tuple[int, int] | None = None,
    cache_name: str = "split",
    num_classes: int | None = None,
    counter: DecodeCounter | None = None,
    epochs: EpochCounter | None = None,
    **settings,
) -> tf.data.Dataset:
    """Builds the batched dataset of one split.

    Args:
        split: the split's elements (`tfresnet.data.sources.SplitSource`).
        options: the pipeline's settings; its `image_size` is needed (`PipelineOptions.resolved`
            is applied here, so presets and label modes may still be unresolved).
        training: shuffle and augment (the training split); False for validation and test.
        channels: 3 for colour datasets, 1 for MNIST.
        source_size: (height, width) shared by every source image, if known; no resize is done
            when it equals the output size.
        cache_name: prefix of the cache file names.
        num_classes: needed for ``"categorical"`` labels.
        counter: a `DecodeCounter` that counts elements dropped because decoding failed.
        epochs: an `EpochCounter` keying the training split's shuffle (and, with
            `deterministic` and an augmentation, its augmentation) by the seed and the epoch.
        **settings: `PipelineOptions` fields instead of `options`, e.g.
            ``make_dataset(split, training=True, channels=3, image_size=(32, 32))``.

    Returns:
        A `tf.data.Dataset` of ``(images, labels)`` batches: images float32
        ``(batch, height, width, channels)`` in [0, 255].

    Raises:
        ValueError: for an invalid setting (see `PipelineOptions`).
        TypeError: for both `options` and `settings`.
    """
    if options is not None and settings:
        raise TypeError(f"make_dataset takes options= or settings, not both. Received {sorted(settings)}")
    options = (options or PipelineOptions(**settings)).resolved()
    n = split.size
    shuffle = options.shuffle and training
    # Validation and test keep their order always: predictions line up with labels across
    # runs (confusion matrices, per-example diagnostics) at little cost, as they are not shuffled.
    deterministic = options.deterministic or not training
    ds = split.elements
    if shuffle and options.cache is None:
        cheap = split.kind in ("path", "image")
        ds = _shuffle(ds, _buffer(options, n, whole=cheap), options.seed, epochs)
    if split.kind == "image":
        ds = _resized(ds, options, channels, source_size, deterministic)
    else:
        ds = _decoded(ds, split, options, channels, deterministic, counter)
    ds = _cached(ds, split, options, channels, cache_name)
    if shuffle and options.cache:
        ds = _shuffle(ds, _buffer(options, n, whole=options.cache == "memory"), options.seed, epochs)
    ds = _batched(ds, options, num_classes, deterministic)
    if training:
        ds = _augmented(ds, options, deterministic, epochs)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    data_options = tf.data.Options()
    data_options.deterministic = deterministic
    return ds.with_options(data_options)
