"""The dataset registry and `load`, the one entry point to every dataset.

Each dataset module registers a loader with `register_dataset`, like the model families do with
`tfresnet.models.register_model`; `load` looks the name up (``folder:PATH`` by its prefix),
runs the loader to get a `tfresnet.data.sources.Source`, and builds the batched splits with
`tfresnet.data.pipeline.make_dataset`, all from one `PipelineOptions`. No code outside the
dataset modules branches on a dataset's name.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable

import numpy as np

from tfresnet.data.bundle import DatasetBundle
from tfresnet.data.classes import check_classes
from tfresnet.data.images import default_cache_dir
from tfresnet.data.pipeline import DecodeCounter, EpochCounter, PipelineOptions, make_dataset
from tfresnet.data.sources import SPLITS, DataNotFoundError, LoadContext, Source

__all__ = [
    "DatasetSpec",
    "get_dataset_spec",
    "list_datasets",
    "load",
    "model_preprocessing",
    "register_dataset",
    "resolve_data_dir",
]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the registry knows of one dataset name.

    Attributes:
        name: registry name (``"mnist"``), or the prefix of a parametrised name (``"folder"``
            for ``"folder:PATH"``).
        loader: ``loader(ctx, **kwargs) -> Source``; prefix datasets also get ``path=``.
        description: one line for `list_datasets` and error messages.
        default_image_size: (height, width) when `load` gets no `image_size`.
        default_validation_split: fraction or count held out for validation by default.
        prefix: whether the name takes an argument after a colon.
        flips_keep_class: whether a mirrored image keeps its class (False for digits: a mirrored
            2, 3 or 7 is no digit; None when the dataset cannot say, as for any folder). Read by
            test-time augmentation (`tfresnet.using.tta`), which refuses flips where it is False.
    """

    name: str
    loader: Callable[..., Source]
    description: str
    default_image_size: tuple[int, int]
    default_validation_split: float | int
    prefix: bool = False
    flips_keep_class: bool | None = True


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(
    name: str,
    *,
    description: str,
    default_image_size: tuple[int, int] = (224, 224),
    default_validation_split: float = 0.1,
    prefix: bool = False,
    flips_keep_class: bool | None = True,
) -> Callable[[Callable[..., Source]], Callable[..., Source]]:
    """Registers a dataset loader; returns a decorator for it.

    Raises:
        ValueError: if `name` is already registered.
    """

    def decorator(loader: Callable[..., Source]) -> Callable[..., Source]:
        if name in _REGISTRY:
            raise ValueError(f"Dataset name {name!r} is already registered; names must be unique.")
        _REGISTRY[name] = DatasetSpec(
            name, loader, description, tuple(default_image_size), default_validation_split, prefix,
            flips_keep_class,
        )
        return loader

    return decorator


def _ensure_datasets_loaded() -> None:
    # Dataset modules register on import; importing the package registers them all.
    import tfresnet.data  # noqa: F401


def list_datasets() -> list[str]:
    """Returns the dataset names `load` accepts, sorted (``folder:PATH`` with its placeholder)."""
    _ensure_datasets_loaded()
    return sorted(f"{n}:PATH" if spec.prefix else n for n, spec in _REGISTRY.items())


def get_dataset_spec(name: str) -> tuple[DatasetSpec, str | None]:
    """Looks a dataset name up.

    Returns:
        ``(spec, argument)``: the argument is the part after the colon of a prefixed name
        (``"folder:/data/flowers"`` -> ``"/data/flowers"``), else None.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    _ensure_datasets_loaded()
    head, sep, arg = str(name).partition(":")
    spec = _REGISTRY.get(head)
    if spec is not None and spec.prefix == bool(sep) and (not sep or arg):
        return spec, (arg if sep else None)
    close = difflib.get_close_matches(head, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"Unknown dataset name {name!r}.{hint} Valid names: {', '.join(list_datasets())}."
    )


def resolve_data_dir(data_dir: str | os.PathLike | None) -> str | None:
    """Returns the data directory: `data_dir`, else ``$TFRESNET_DATA_DIR``, else None.

    Raises:
        DataNotFoundError: if a data directory is named but does not exist.
    """
    source = "data_dir"
    if data_dir is None and os.environ.get("TFRESNET_DATA_DIR"):
        data_dir, source = os.environ["TFRESNET_DATA_DIR"], "$TFRESNET_DATA_DIR"
    if data_dir is None:
        return None
    path = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.isdir(path):
        raise DataNotFoundError(f"The data directory does not exist. Received {source}={data_dir!r}")
    return path


def model_preprocessing(model_name: str) -> str | None:
    """Returns the input scaling a registered model expects (a `Preprocess` mode).

    The pipelines here always yield images in [0, 255]; a model built with
    ``preprocessing=model_preprocessing(name)`` scales them itself, so this is only needed to
    build such a model or to report what it will do.
    """
    from tfresnet.models.registry import get_model_spec

    return get_model_spec(model_name).preprocessing


def load(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    image_size: int | tuple[int, int] | None = None,
    batch_size: int = 32,
    validation_split: float | None = None,
    seed: int = 0,
    augment=None,
    resize: str = "resize",
    cache: str | None = None,
    shuffle: bool = True,
    shuffle_buffer: int | None = None,
    deterministic: bool = False,
    drop_remainder: bool = False,
    label_mode: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    tfds_data_dir: str | os.PathLike | None = None,
    verbose: int = 1,
    drop_empty_classes: bool = False,
    options: PipelineOptions | None = None,
    **dataset_kwargs,
) -> DatasetBundle:
    """Loads a dataset as batched train/validation/test `tf.data.Dataset`s.

    Every split yields ``(images, labels)`` batches: images float32 in [0, 255] of shape
    ``(batch, *bundle.input_shape)`` (model-specific scaling is the model's `Preprocess`
    layer's job), labels int32 class ids (one-hot float32 if the augmentation mixes labels).
    Image files are validated first: broken ones are skipped and listed in `bundle.skipped`.

    Names (`list_datasets()`):
        - ``"mnist"``: 60,000 training + 10,000 test digits, 28x28x1, from `data_dir`
          (``mnist.npz`` or LeCun's IDX files) or tensorflow-datasets. Default validation:
          a stratified 10,000 of the 60,000 training digits (the size of Nielsen's
          validation set), leaving 50,000 for training.
        - ``"mnist-sample"``: 6,000 training + 1,000 test digits shipped with tfresnet;
          default validation 1,000 of the 6,000.
        - ``"oxford_iiit_pet"``: ``label="breed"`` (default) or ``"species"``;
          ``trainval.txt`` -> train + validation, ``test.txt`` -> test.
        - ``"cats_vs_dogs"``: ``test_split=0.1`` of the images held out as test (the dataset
          has no test set).
        - ``"folder:PATH"``: one sub-folder per class; ``test_split=0.1``.

    Args:
        name: a dataset name.
        data_dir: where to look for the dataset's files; None reads ``$TFRESNET_DATA_DIR``.
            Without either (or without the files there), tensorflow-datasets is used.
        image_size: output (height, width) or one int for squares; None for the dataset's
            default (28x28 for MNIST, 224x224 otherwise).
        batch_size: examples per batch.
        validation_split: fraction in [0, 1) or count of the training pool held out (stratified,
            seeded) for validation; None for the dataset's default; 0 for no validation split.
        seed: seed of the splits, the training shuffle and the augmentation.
        augment: augmentation preset (``"none"``, ``"light"``, ``"standard"``, ``"strong"``,
            ``"mnist-shift"``), a list of Keras preprocessing layers, or None.
        resize: ``"resize"`` (stretch), ``"crop"`` (centre crop to the aspect ratio) or
            ``"pad"`` (pad to the aspect ratio).
        cache: None, ``"memory"``, or a directory for tf.data file caches of decoded, resized
            images.
        shuffle: shuffle the training split every epoch.
        shuffle_buffer: shuffle buffer size (see `tfresnet.data.pipeline.make_dataset`).
        deterministic: make the training split's element order reproducible from run to run
            (slower parallel maps). Validation and test always keep a fixed order.
        drop_remainder: drop incomplete last batches.
        label_mode: ``"int"`` or ``"categorical"``; None picks ``"categorical"`` only when the
            augmentation mixes labels.
        cache_dir: tfresnet's cache directory for converted images and validation results;
            None for `tfresnet.data.images.default_cache_dir()`.
        tfds_data_dir: tensorflow-datasets' data directory; None for its default.
        verbose: 1 shows a progress bar while validating files, 0 is silent.
        drop_empty_classes: remove classes with no usable training example (and their
            validation and test examples) and renumber the rest, instead of raising
            `EmptyClassError`; `bundle.dropped_classes` says which and why.
        options: the pipeline settings (`image_size` to `label_mode` above, `seed` included) as
            one `PipelineOptions`, instead of those keywords, which must then be left unset.
        **dataset_kwargs: the dataset's own options (``label=`` for Oxford-IIIT Pet,
            ``test_split=`` for cats_vs_dogs and folders).

    Returns:
        A `DatasetBundle`.

    Raises:
        ValueError: for an unknown name or an invalid argument.
        EmptyClassError: (a ValueError) when a class has no usable training example, naming it
            and why its files were skipped; not with ``drop_empty_classes=True``.
        DataNotFoundError: if the data is neither in the data directory nor obtainable from
            tensorflow-datasets (the message says which files to put where). Raised within
            seconds when there is no network.
    """
    spec, arg = get_dataset_spec(name)
    keywords = PipelineOptions(
        image_size=image_size, resize=resize, batch_size=batch_size, cache=cache, shuffle=shuffle,
        shuffle_buffer=shuffle_buffer, seed=seed, deterministic=deterministic,
        drop_remainder=drop_remainder, augment=augment, label_mode=label_mode,
    )
    if options is not None and keywords != PipelineOptions():
        raise ValueError(
            "Pass the pipeline settings either as options= or as keywords, not both. Received "
            f"options={options!r} and {_changed(keywords)}"
        )
    options = (options or keywords).resolved(spec.default_image_size)
    ctx = LoadContext(
        data_dir=resolve_data_dir(data_dir),
        validation_split=spec.default_validation_split if validation_split is None else validation_split,
        seed=options.seed,
        cache_dir=os.fspath(cache_dir) if cache_dir else default_cache_dir(),
        tfds_data_dir=os.fspath(tfds_data_dir) if tfds_data_dir else None,
        verbose=verbose,
    )
    if spec.prefix:
        dataset_kwargs["path"] = arg
    source = check_classes(spec.loader(ctx, **dataset_kwargs), drop_empty=drop_empty_classes)
    return _bundle(str(name), spec.name, source, options)


def _changed(options: PipelineOptions) -> str:
    """The fields of `options` that differ from the defaults, as keywords."""
    default = PipelineOptions()
    return ", ".join(
        f"{f.name}={getattr(options, f.name)!r}"
        for f in dataclasses.fields(options)
        if getattr(options, f.name) != getattr(default, f.name)
    )


def _bundle(name: str, cache_prefix: str, source: Source, options: PipelineOptions) -> DatasetBundle:
    """Builds every split of `source` and the bundle that holds them."""
    counters = {split: DecodeCounter() for split, s in source.splits.items() if s.kind != "image"}
    epochs = EpochCounter()
    datasets = {
        split: make_dataset(
            split_source,
            options,
            training=split == "train",
            channels=source.channels,
            source_size=source.image_size,
            cache_name=f"{cache_prefix}-{split}",
            num_classes=len(source.class_names),
            counter=counters.get(split),
            epochs=epochs if split == "train" else None,
        )
        for split, split_source in source.splits.items()
    }
    return DatasetBundle(
        name=name,
        origin=source.origin,
        train=datasets.get("train"),
        validation=datasets.get("validation"),
        test=datasets.get("test"),
        class_names=tuple(source.class_names),
        input_shape=(*options.image_size, source.channels),
        num_examples={s: source.splits[s].size if s in source.splits else None for s in SPLITS},
        descriptions={
            s: source.splits[s].description if s in source.splits else source.absent.get(s, "")
            for s in SPLITS
        },
        absent={s: source.absent.get(s, "") for s in SPLITS if s not in source.splits},
        class_counts={
            s: np.bincount(src.labels, minlength=len(source.class_names))
            for s, src in source.splits.items()
        },
        skipped=source.skipped,
        unused=source.unused,
        converted=source.converted,
        batch_size=options.batch_size,
        augment=options.augment.name if options.augment is not None else "none",
        label_mode=options.label_mode,
        resize=options.resize,
        seed=options.seed,
        metadata=dict(source.metadata),
        dropped_classes=dict(source.dropped_classes),
        _counters=counters,
        _epochs=epochs,
    )
