"""Cats vs Dogs: Microsoft's Asirra PetImages (about 12,500 cats and 12,500 dogs).

Reads ``PetImages/Cat`` and ``PetImages/Dog`` from the data directory (which may be the folder
holding ``PetImages``, ``PetImages`` itself, or hold ``cats_vs_dogs/PetImages``); otherwise
tensorflow-datasets' ``cats_vs_dogs`` (which already dropped the 1,738 files it cannot decode).
About 1,600 PetImages files are not valid JPEGs (empty, truncated or other formats): validation
skips or converts them, and lists each in `DatasetBundle.skipped`.

The dataset has no test set (tensorflow-datasets offers only ``train``): validation and test
examples are both held out of all images with one stratified, seeded split (``test_split``,
default 0.1, and ``validation_split``, default 0.1, each a fraction of all images).
"""

from __future__ import annotations

import os

from tfresnet.data.folder import DEFAULT_TEST_SPLIT, index_class_folders
from tfresnet.data.registry import register_dataset
from tfresnet.data.sources import FileIndex, LoadContext, Source, source_from_index
from tfresnet.data.tfds_fallback import tfds_image_source

__all__ = ["CLASSES", "find_root", "index_directory"]

# (class name, folder name); class names match tensorflow-datasets' label names.
CLASSES = (("cat", "Cat"), ("dog", "Dog"))

MISSING = """Could not find Cats vs Dogs.
Put Microsoft's PetImages folder (from the kagglecatsanddogs zip) in the data directory
(data_dir=... or $TFRESNET_DATA_DIR), or in its cats_vs_dogs/ folder:
  PetImages/Cat/<n>.jpg
  PetImages/Dog/<n>.jpg"""


def _is_pet_images(path: str) -> bool:
    return all(os.path.isdir(os.path.join(path, folder)) for _, folder in CLASSES)


def find_root(data_dir: str | None) -> str | None:
    """Returns the ``PetImages`` folder (the one holding ``Cat/`` and ``Dog/``), or None."""
    if not data_dir:
        return None
    for candidate in (
        os.path.join(data_dir, "PetImages"),
        data_dir,
        os.path.join(data_dir, "cats_vs_dogs", "PetImages"),
    ):
        if _is_pet_images(candidate):
            return candidate
    return None


def index_directory(root: str) -> FileIndex:
    """Indexes ``PetImages/Cat`` and ``PetImages/Dog`` without decoding anything."""
    index = index_class_folders(root, CLASSES, layout="cats_vs_dogs")
    index.pool_name = "PetImages"
    return index


@register_dataset("cats_vs_dogs", description="Microsoft PetImages cats vs dogs, 2 classes")
def load_cats_vs_dogs(ctx: LoadContext, *, test_split: float | None = DEFAULT_TEST_SPLIT) -> Source:
    """Loads Cats vs Dogs from the data directory, else from tensorflow-datasets.

    Args:
        ctx: the loader's settings.
        test_split: fraction or count of the images held out as test (0 for none).
    """
    root = find_root(ctx.data_dir)
    if root is not None:
        return source_from_index(
            index_directory(root), ctx, origin=f"{root} (Microsoft PetImages)", test_split=test_split
        )
    return tfds_image_source(
        "cats_vs_dogs",
        ctx,
        missing=MISSING,
        label_key="label",
        key_feature="image/filename",
        test_split=test_split,
    )
