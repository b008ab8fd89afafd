"""Datasets and tf.data input pipelines: one entry point, `load(name, ...)`.

    import tfresnet.data as data
    bundle = data.load("mnist", data_dir="../shared/data")
    print(bundle)                       # split sizes, classes, skipped files
    model.fit(bundle.train, validation_data=bundle.validation)

Names: ``mnist``, ``mnist-sample``, ``oxford_iiit_pet``, ``cats_vs_dogs`` and ``folder:PATH``
(`list_datasets()`). Data is looked for in ``data_dir`` (or ``$TFRESNET_DATA_DIR``) first, then
in tensorflow-datasets; offline, a missing dataset fails within seconds with a message naming
the files to provide.

Pipeline settings (image size, resize mode, batch size, cache, shuffling, augmentation, ...) are
`load`'s keywords, or one `PipelineOptions` passed as ``load(name, options=...)``.

Every split yields float32 images in [0, 255] and int32 class ids: input scaling is the model's
business (`tfresnet.models.layers.Preprocess`, chosen per model by `model_preprocessing`).
Image files are validated before training (`images.validate_images`): broken ones are skipped
and reported, odd formats converted, so training never meets a file it cannot decode.
`tfresnet scan-data PATH` (`tfresnet.data.scan`) prints the same validation as a report.
"""

# Importing the dataset modules registers them.
from tfresnet.data import cats_vs_dogs, folder, mnist, oxford_iiit_pet  # noqa: F401
from tfresnet.data.augment import (
    AUGMENT_PRESETS,
    Augmentation,
    build_augmentation,
    list_augmentations,
)
from tfresnet.data.bundle import DatasetBundle
from tfresnet.data.images import ImageCheck, default_cache_dir, validate_images
from tfresnet.data.pipeline import RESIZE_MODES, PipelineOptions
from tfresnet.data.registry import (
    DatasetSpec,
    get_dataset_spec,
    list_datasets,
    load,
    model_preprocessing,
    register_dataset,
)
from tfresnet.data.sources import DataNotFoundError, EmptyClassError, FileIssue
from tfresnet.data.splits import stratified_split

__all__ = [
    "AUGMENT_PRESETS",
    "RESIZE_MODES",
    "Augmentation",
    "DataNotFoundError",
    "DatasetBundle",
    "DatasetSpec",
    "EmptyClassError",
    "FileIssue",
    "ImageCheck",
    "PipelineOptions",
    "build_augmentation",
    "default_cache_dir",
    "get_dataset_spec",
    "list_augmentations",
    "list_datasets",
    "load",
    "model_preprocessing",
    "register_dataset",
    "stratified_split",
    "validate_images",
]
