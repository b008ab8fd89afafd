"""Oxford-IIIT Pet (Parkhi, Vedaldi, Zisserman and Jawahar, CVPR 2012): 37 cat and dog breeds.

Reads the layout the dataset's own tarballs unpack to, from the data directory (or its
``oxford_iiit_pet/`` or ``oxford-iiit-pet/`` sub-folder)::

    images/<Breed>_<n>.jpg
    annotations/list.txt       # Image CLASS-ID SPECIES BREED-ID  (species 1 = cat, 2 = dog)
    annotations/trainval.txt   # the paper's trainval split, same columns
    annotations/test.txt       # the paper's test split, same columns

otherwise tensorflow-datasets' ``oxford_iiit_pet``.

- ``label="breed"``: class names are the breed names (the image names without their number,
  e.g. ``Abyssinian``, ``american_bulldog``) of the classes the annotation lists contain, in
  class-id order, with labels renumbered 0..K-1: the full dataset gives the paper's 37 classes,
  a subset gives only its own breeds (`metadata["class_ids"]` keeps the original ids).
- ``label="species"``: ``cat`` and ``dog``.

``trainval.txt`` is split (stratified, seeded) into train and validation; ``test.txt`` is the
test split. A missing list leaves its split absent, said so by the bundle: the loader never
re-splits trainval into a test set. Images in no list are not used, and reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tfresnet.data.images import IMAGE_EXTENSIONS, check_image
from tfresnet.data.registry import register_dataset
from tfresnet.data.sources import (
    DataNotFoundError,
    FileIndex,
    FileIssue,
    IndexedFile,
    LoadContext,
    Source,
    source_from_index,
)
from tfresnet.data.tfds_fallback import tfds_image_source

__all__ = ["LABELS", "find_root", "index_directory", "read_annotation_list"]

LABELS = ("breed", "species")
SPECIES = ("cat", "dog")
_SUBFOLDERS = ("", "oxford_iiit_pet", "oxford-iiit-pet")

MISSING = """Could not find Oxford-IIIT Pet.
Put the dataset's own layout in the data directory (data_dir=... or $TFRESNET_DATA_DIR), or in its
oxford_iiit_pet/ folder (what images.tar.gz and annotations.tar.gz from
https://www.robots.ox.ac.uk/~vgg/data/pets/ unpack to):
  images/<Breed>_<n>.jpg
  annotations/list.txt, annotations/trainval.txt, annotations/test.txt"""


def find_root(data_dir: str | None) -> str | None:
    """Returns the folder holding ``images/`` and ``annotations/`` under `data_dir`, or None."""
    if not data_dir:
        return None
    for sub in _SUBFOLDERS:
        root = os.path.join(data_dir, sub) if sub else data_dir
        if os.path.isdir(os.path.join(root, "images")) and os.path.isdir(
            os.path.join(root, "annotations")
        ):
            return root
    return None


def read_annotation_list(path: str) -> list[tuple[str, int, int]]:
    """Reads ``list.txt``/``trainval.txt``/``test.txt``: (image name, class id, species id).

    Lines starting with ``#`` (the header of the full ``list.txt``) and blank lines are ignored.

    Raises:
        ValueError: for a line that is not ``NAME CLASS-ID SPECIES BREED-ID``.
    """
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            try:
                rows.append((fields[0], int(fields[1]), int(fields[2])))
            except (IndexError, ValueError):
                raise ValueError(
                    f"{path}:{number}: expected 'NAME CLASS-ID SPECIES BREED-ID'. Received {line!r}"
                ) from None
    return rows


def _breed(image_name: str) -> str:
    return image_name.rsplit("_", 1)[0]


def _read_lists(annotations: str) -> dict[str, list[tuple[str, int, int]]]:
    """The annotation lists present: ``"list"``, ``"trainval"``, ``"test"`` -> rows."""
    lists = {}
    for name in ("list", "trainval", "test"):
        path = os.path.join(annotations, f"{name}.txt")
        if os.path.isfile(path):
            lists[name] = read_annotation_list(path)
    if "trainval" not in lists and "test" not in lists:
        raise DataNotFoundError(
            f"{annotations} has neither trainval.txt nor test.txt, so no split is defined.\n{MISSING}"
        )
    return lists


def _classes(lists: dict, label: str) -> tuple[list[int], tuple[str, ...], Callable[[str], int]]:
    """(original class ids, class names, image name -> class id 0..K-1) for `label`."""
    rows = {}
    for name in ("list", "trainval", "test"):
        for image, class_id, species in lists.get(name, ()):
            rows.setdefault(image, (class_id, species))
    if label == "species":
        return [1, 2], SPECIES, lambda image: rows[image][1] - 1
    breeds = {}
    for image in sorted(rows):
        breeds.setdefault(rows[image][0], _breed(image))
    class_ids = sorted(breeds)
    label_of = {c: i for i, c in enumerate(class_ids)}
    return class_ids, tuple(breeds[c] for c in class_ids), lambda image: label_of[rows[image][0]]


def _listed_files(images_dir: str, lists: dict, label_fn: Callable[[str], int]):
    """The images the split lists name: (files, listed but missing, listed image names)."""
    files, missing, listed = [], [], set()
    for name, group in (("trainval", "pool"), ("test", "test")):
        for image, _, _ in lists.get(name, ()):
            if image in listed:
                continue  # listed twice (in both lists): the first list wins
            listed.add(image)
            path = os.path.join(images_dir, image + ".jpg")
            if os.path.isfile(path):
                files.append(IndexedFile(path, label_fn(image), group))
            else:
                missing.append(FileIssue(path, f"listed in annotations/{name}.txt but missing"))
    return files, missing, listed


def _unlisted_files(images_dir: str, lists: dict, listed: set[str]):
    """The other files of the images folder: (images in no list, non-images with the reason)."""
    unused, skipped = [], []
    used_lists = " or ".join(f"{n}.txt" for n in ("trainval", "test") if n in lists)
    for entry in sorted(os.scandir(images_dir), key=lambda e: e.name):
        if not entry.is_file():
            continue
        stem, ext = os.path.splitext(entry.name)
        if stem in listed and ext == ".jpg":
            continue
        if ext.lower() in IMAGE_EXTENSIONS:
            unused.append(FileIssue(entry.path, f"in no split list (not in {used_lists})"))
        else:
            skipped.append(FileIssue(entry.path, check_image(entry.path).reason))
    return unused, skipped


def _absent(lists: dict, test_split) -> dict[str, str]:
    absent = {}
    if "trainval" not in lists:
        reason = "annotations/trainval.txt not found"
        absent.update(train=reason, validation=reason)
    if "test" not in lists and not test_split:
        absent["test"] = (
            "annotations/test.txt not found; trainval is re-split into a test set only when "
            "asked (data_args={'test_split': 0.2})"
        )
    return absent


def index_directory(root: str, *, label: str = "breed", test_split=None) -> FileIndex:
    """Reads the annotation lists and the images folder, without decoding any image.

    Args:
        root: the folder holding ``images/`` and ``annotations/``.
        label: ``"breed"`` or ``"species"``.
        test_split: where ``test.txt`` is absent, the fraction (or count) of trainval to hold
            out as test; None leaves the test split absent.

    Returns:
        A `FileIndex`: trainval images in group ``"pool"``, test images in group ``"test"``.

    Raises:
        DataNotFoundError: if neither ``trainval.txt`` nor ``test.txt`` exists.
        ValueError: for an unknown `label`.
    """
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}. Received label={label!r}")
    lists = _read_lists(os.path.join(root, "annotations"))
    class_ids, class_names, label_fn = _classes(lists, label)
    images_dir = os.path.join(root, "images")
    files, missing, listed = _listed_files(images_dir, lists, label_fn)
    unused, not_images = _unlisted_files(images_dir, lists, listed)
    return FileIndex(
        root=root,
        layout="oxford_iiit_pet",
        class_names=class_names,
        files=files,
        skipped=missing + not_images,
        unused=unused,
        absent=_absent(lists, test_split),
        # Without test.txt (e.g. a sample of trainval) the layout is a pool like a folder's.
        official_test="test" in lists,
        pool_name="annotations/trainval.txt",
        test_name="annotations/test.txt",
        metadata={"label": label, "class_ids": tuple(class_ids)},
    )


@register_dataset(
    "oxford_iiit_pet",
    description="Oxford-IIIT Pet, 37 breeds (label='breed') or cat/dog (label='species')",
)
def load_oxford_iiit_pet(ctx: LoadContext, *, label: str = "breed", test_split: float | None = None) -> Source:
    """Loads Oxford-IIIT Pet from the data directory, else from tensorflow-datasets.

    Args:
        ctx: the loader's settings.
        label: ``"breed"`` (class names are breed names) or ``"species"`` (cat, dog).
        test_split: only for a local layout without ``annotations/test.txt`` (a sample of
            trainval): the fraction or count of trainval held out as test, stratified and seeded
            (the loader's seed) in the same split as validation, so it never overlaps it.

    Raises:
        ValueError: for `test_split` where the dataset has its own test split.
    """
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}. Received label={label!r}")
    root = find_root(ctx.data_dir)
    if root is not None:
        index = index_directory(root, label=label, test_split=test_split)
        return source_from_index(index, ctx, origin=f"{root} (Oxford-IIIT Pet layout, label={label!r})",
                                 test_split=test_split)
    if test_split:
        raise ValueError(
            "test_split holds out part of a local trainval-only layout; tensorflow-datasets' "
            f"oxford_iiit_pet has its own test split. Received test_split={test_split!r}"
        )
    missing = MISSING
    sample = ctx.data_dir and os.path.join(ctx.data_dir, "oxford_iiit_pet_sample")
    if sample and find_root(sample):
        missing += f"\n(A sample is at {sample}: pass data_dir={sample!r} to use it.)"
    return tfds_image_source(
        "oxford_iiit_pet",
        ctx,
        missing=missing,
        label_key="label" if label == "breed" else "species",
        key_feature="file_name",
        official_test="test",
        class_names=None if label == "breed" else SPECIES,
    )
