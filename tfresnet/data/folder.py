"""``folder:PATH``: an image-classification dataset as one sub-folder per class.

Class names are the sub-folder names, sorted; images may sit in nested folders below their
class folder. Hidden files and folders are ignored; other non-image files and files outside a
class folder are reported as skipped. There is no test list in such a layout: validation and
test examples are both held out of all images with one stratified, seeded split
(``validation_split`` and ``test_split``, each a fraction or count of all images; defaults 0.1
and 0.1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

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

__all__ = ["DEFAULT_TEST_SPLIT", "find_root", "index_class_folders", "index_directory"]

DEFAULT_TEST_SPLIT = 0.1


def _visible(name: str) -> bool:
    return not name.startswith(".")


def find_root(path: str | None) -> str | None:
    """Returns `path` if it holds at least one (non-hidden) sub-folder, else None."""
    if not path or not os.path.isdir(path):
        return None
    with os.scandir(path) as entries:
        if any(e.is_dir() and _visible(e.name) for e in entries):
            return path
    return None


def index_class_folders(
    root: str,
    classes: Sequence[tuple[str, str]],
    *,
    layout: str,
) -> FileIndex:
    """Indexes images under class folders, without decoding them.

    Args:
        root: the folder holding the class folders.
        classes: ``(class name, folder name)`` pairs, in class-id order.
        layout: the layout's name, for reports.

    Returns:
        A `FileIndex` with every image in group ``"pool"``.
    """
    files: list[IndexedFile] = []
    skipped: list[FileIssue] = []
    class_dirs = set()
    for label, (class_name, folder) in enumerate(classes):
        class_dir = os.path.join(root, folder)
        class_dirs.add(folder)
        for directory, subdirs, names in os.walk(class_dir):
            subdirs[:] = sorted(d for d in subdirs if _visible(d))
            for name in sorted(filter(_visible, names)):
                path = os.path.join(directory, name)
                if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    files.append(IndexedFile(path, label))
                else:
                    skipped.append(FileIssue(path, check_image(path).reason, class_name))
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if _visible(entry.name) and entry.name not in class_dirs:
                kind = "folder" if entry.is_dir() else "file"
                skipped.append(FileIssue(entry.path, f"{kind} outside the class folders"))
    return FileIndex(
        root=root,
        layout=layout,
        class_names=tuple(name for name, _ in classes),
        files=files,
        skipped=skipped,
        official_test=False,
        pool_name=f"the {len(files):,} images",
    )


def index_directory(root: str) -> FileIndex:
    """Indexes a one-sub-folder-per-class layout (class names = sorted folder names).

    Raises:
        DataNotFoundError: if `root` has no sub-folder.
    """
    if find_root(root) is None:
        raise DataNotFoundError(
            f"folder:PATH needs a folder with one sub-folder per class. Received PATH={root!r}"
        )
    with os.scandir(root) as entries:
        names = sorted(e.name for e in entries if e.is_dir() and _visible(e.name))
    return index_class_folders(root, [(n, n) for n in names], layout="folder")


@register_dataset(
    "folder",
    description="one sub-folder of images per class (folder:PATH)",
    prefix=True,
    flips_keep_class=None,  # any images at all: whether a mirror keeps the class is the user's call
)
def load_folder(ctx: LoadContext, *, path: str, test_split: float | None = DEFAULT_TEST_SPLIT) -> Source:
    """Loads ``folder:PATH``.

    Args:
        ctx: the loader's settings.
        path: the folder holding one sub-folder per class.
        test_split: fraction or count of the images held out as test (0 for none).
    """
    root = os.path.abspath(os.path.expanduser(path))
    index = index_directory(root)
    return source_from_index(index, ctx, origin=f"{root} (one folder per class)", test_split=test_split)
