"""Writers of small image files and dataset layouts for the data tests, defects included.

Every image is two flat colours (left half `LEFT`, right half `RIGHT`) so a test can check that
a decoded file has the right colours, whatever path (as is, or converted) it was read through.
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
from PIL import Image

LEFT = (200, 30, 40)
RIGHT = (20, 180, 60)
SIZE = (40, 30)  # width, height


def two_colour(size=SIZE, left=LEFT, right=RIGHT) -> np.ndarray:
    """An HxWx3 uint8 array: `left` colour on the left half, `right` on the right."""
    w, h = size
    arr = np.empty((h, w, 3), np.uint8)
    arr[:, : w // 2] = left
    arr[:, w // 2 :] = right
    return arr


def write_jpeg(path, *, mode="RGB", size=SIZE, left=LEFT, right=RIGHT, quality=95) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(two_colour(size, left, right)).convert(mode).save(path, "JPEG", quality=quality)
    return path


def write_png(path, *, mode="RGB", size=SIZE, left=LEFT, right=RIGHT) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(two_colour(size, left, right)).convert(mode).save(path, "PNG")
    return path


def write_rgba_png(path, *, size=SIZE) -> pathlib.Path:
    """An RGBA PNG whose left half is fully transparent (RGB values kept under it)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgba = np.concatenate([two_colour(size), np.full((size[1], size[0], 1), 255, np.uint8)], -1)
    rgba[:, : size[0] // 2, 3] = 0
    Image.fromarray(rgba, "RGBA").save(path, "PNG")
    return path


def write_gif(path, *, size=SIZE) -> pathlib.Path:
    """A two-frame GIF: frame 0 is the two-colour image, frame 1 is all blue."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first = Image.fromarray(two_colour(size))
    second = Image.new("RGB", size, (0, 0, 255))
    first.save(path, "GIF", save_all=True, append_images=[second], duration=100)
    return path


def write_truncated_jpeg(path, *, size=(64, 48)) -> pathlib.Path:
    """A noisy JPEG cut off half-way through its entropy-coded data."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def write_mat(path) -> pathlib.Path:
    """The first bytes of a MATLAB v5 .mat file (what Oxford-IIIT Pet's images/ holds)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Wed Apr 20 2011".ljust(116)
    path.write_bytes(header + bytes(range(256)) * 4)
    return path


# name -> (file name, writer): the defects the issue lists, plus a .mat file.
USABLE = {
    "png_named_jpg": ("png_named.jpg", write_png),
    "rgba_png": ("rgba.png", write_rgba_png),
    "gray_jpeg": ("gray.jpg", lambda p: write_jpeg(p, mode="L")),
    "cmyk_jpeg": ("cmyk.jpg", lambda p: write_jpeg(p, mode="CMYK")),
    "gif_named_jpg": ("gif_named.jpg", write_gif),
    "palette_png": ("palette.png", lambda p: write_png(p, mode="P")),
}
BROKEN = {
    "truncated_jpeg": ("truncated.jpg", write_truncated_jpeg),
    "zero_bytes": ("empty.jpg", lambda p: pathlib.Path(p).write_bytes(b"")),
    "text_named_jpg": ("text.jpg", lambda p: pathlib.Path(p).write_text("not an image\n" * 20)),
    "mat_file": ("junk.mat", write_mat),
}


def write_defects(directory, prefix: str = "") -> dict[str, pathlib.Path]:
    """Writes every file of `USABLE` and `BROKEN` into `directory`; returns name -> path."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (filename, writer) in {**USABLE, **BROKEN}.items():
        path = directory / f"{prefix}{filename}"
        writer(path)
        out[name] = path
    return out


def write_class_folders(root, counts: dict[str, int], *, size=SIZE) -> pathlib.Path:
    """Writes `counts[class]` plain JPEGs into `root/<class>/`, each class its own colours."""
    root = pathlib.Path(root)
    for c, (name, n) in enumerate(counts.items()):
        for i in range(n):
            left = (20 * c % 256, 100, (7 * i) % 256)
            write_jpeg(root / name / f"{name}_{i}.jpg", size=size, left=left)
    return root


def write_pets_layout(
    root,
    breeds: dict[str, tuple[int, int, int]],
    *,
    trainval: bool = True,
    test: bool = True,
    size=SIZE,
) -> pathlib.Path:
    """Writes an Oxford-IIIT Pet layout.

    Args:
        root: the folder to write `images/` and `annotations/` into.
        breeds: breed name -> (class id, trainval count, test count). Names starting with a
            capital letter are cats (species 1), as in the real dataset.
        trainval: write `annotations/trainval.txt`.
        test: write `annotations/test.txt`.
    """
    root = pathlib.Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rows = {"trainval": [], "test": []}
    for breed, (class_id, n_trainval, n_test) in breeds.items():
        species = 1 if breed[0].isupper() else 2
        for i in range(1, n_trainval + n_test + 1):
            image = f"{breed}_{i}"
            write_jpeg(root / "images" / f"{image}.jpg", size=size, left=(class_id * 6, 90, i % 256))
            split = "trainval" if i <= n_trainval else "test"
            rows[split].append(f"{image} {class_id} {species} {i}")
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n"
    (root / "annotations" / "list.txt").write_text(
        header + "\n".join(rows["trainval"] + rows["test"]) + "\n"
    )
    if trainval:
        (root / "annotations" / "trainval.txt").write_text("\n".join(rows["trainval"]) + "\n")
    if test:
        (root / "annotations" / "test.txt").write_text("\n".join(rows["test"]) + "\n")
    return root
