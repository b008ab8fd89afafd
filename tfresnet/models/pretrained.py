"""Where published ImageNet weights live: the keras.applications files, as data.

keras.applications publishes one `.h5` file per architecture (and, for MobileNets, per width and
input resolution), with and without its 1000-class classifier. This module knows their names,
so `weights="imagenet"` can look for the exact file offline before it downloads it, and a width
or resolution that was never published fails at once naming the ones that were (timm's
`default_cfgs` and keras-hub's presets keep pretrained metadata beside the variants the same way).

Lookup order for a file: ``$TFRESNET_WEIGHTS_DIR``, then keras' own cache (``$KERAS_HOME/models``,
else ``~/.keras/models``, where ``keras.applications`` and ``keras.utils.get_file`` keep what they
download), then a download through ``keras.utils.get_file`` with a socket timeout, so a machine
without network fails within seconds with a message saying where to put the file.

The names and hashes are keras.applications' (checked against Keras 3.15.1,
``keras/src/applications/*.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
from collections.abc import Callable

__all__ = [
    "WeightsFile",
    "PublishedWeights",
    "PUBLISHED",
    "WEIGHTS_DIR_ENV",
    "imagenet_files",
    "find_weights_file",
    "resolve_imagenet_file",
    "imagenet_class_names",
    "ImageNetWeightsNotFound",
]

WEIGHTS_DIR_ENV = "TFRESNET_WEIGHTS_DIR"
_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
# Bounds a download that a dead network would otherwise let hang.
DOWNLOAD_TIMEOUT_S = 20
IMAGENET_CLASSES = 1000


class ImageNetWeightsNotFound(FileNotFoundError):
    """The ImageNet file is nowhere on this machine and could not be downloaded."""


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """One published weights file: its name, where it is downloaded from, its hash."""

    file_name: str
    origin: str
    file_hash: str | None = None
    include_top: bool = False


@dataclasses.dataclass(frozen=True)
class PublishedWeights:
    """The ImageNet files keras.applications publishes for one constructor.

    Attributes:
        folder: the sub-folder of keras-applications' storage.
        name: ``name(arch, top, size) -> file name``; `arch` is the architecture arguments
            (``alpha``, ``minimalistic``) with the defaults filled in.
        alphas: the published widths, or None for a fixed-width architecture.
        top_sizes: input sizes of the with-classifier files (None: any size; the classifier
            follows global pooling).
        no_top_sizes: input sizes of the no-classifier files (None: one file for any size).
        default_size: the size keras falls back to when a size was not published.
        hashes: file name -> the hash keras checks (md5 or sha256), where keras pins one.
        check: ``check(arch) -> error text or None`` for other architecture limits.
    """

    folder: str
    name: Callable[[dict, bool, int], str]
    alphas: tuple | None = None
    top_sizes: tuple | None = None
    no_top_sizes: tuple | None = None
    default_size: int = 224
    hashes: dict = dataclasses.field(default_factory=dict)
    check: Callable[[dict], str | None] | None = None


def _top(top: bool, no_top: str) -> str:
    return "" if top else no_top


_V1_ALPHA_TEXT = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}


def _v1_check(arch: dict) -> str | None:
    if arch.get("depth_multiplier", 1) != 1:
        return (f"ImageNet weights of MobileNet exist only for depth_multiplier=1. "
                f"Received depth_multiplier={arch['depth_multiplier']!r}")
    return None


def _v3_check(arch: dict) -> str | None:
    if arch.get("minimalistic") and float(arch.get("alpha", 1.0)) != 1.0:
        return (f"ImageNet weights of the minimalistic MobileNetV3 exist only for alpha=1.0. "
                f"Received alpha={arch['alpha']!r}")
    return None


def _v3_name(variant: str) -> Callable[[dict, bool, int], str]:
    def name(arch, top, size):
        minimal = "_minimalistic" if arch.get("minimalistic") else ""
        return (f"weights_mobilenet_v3_{variant}{minimal}_224_{float(arch['alpha'])}_float"
                f"{_top(top, '_no_top_v2')}.h5")
    return name


def _keras_named(stem: str) -> Callable[[dict, bool, int], str]:
    return lambda arch, top, size: f"{stem}_weights_tf_dim_ordering_tf_kernels{_top(top, '_notop')}.h5"


# ResNets' pinned md5s, (top, no top), as in keras' resnet.py / resnet_v2.py.
_RESNET_HASHES = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
}
_V3_HASHES = {
    "large_224_0.75": ("765b44a33ad4005b3ac83185abf1d0eb", "40af19a13ebea4e2ee0c676887f69a2e"),
    "large_224_1.0": ("59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389"),
    "large_minimalistic_224_1.0": ("675e7b876c45c57e9e63e6d90a36599c", "ec5221f64a2f6d1ef965a614bdae7973"),
    "small_224_0.75": ("cb65d4e5be93758266aa0a7f2c6708b7", "ebdb5cc8e0b497cd13a7c275d475c819"),
    "small_224_1.0": ("8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "small_minimalistic_224_1.0": ("99cd97fb2fcdad2bf028eb838de69e37", "cde8136e733e811080d9fcd8a252f7e4"),
}


def _hash_table(pairs: dict, name: Callable[[dict, bool, int], str], arch_of) -> dict:
    table = {}
    for key, (top_hash, no_top_hash) in pairs.items():
        arch = arch_of(key)
        table[name(arch, True, 224)] = top_hash
        table[name(arch, False, 224)] = no_top_hash
    return table


def _v3_arch(key: str) -> dict:
    return {"minimalistic": "minimalistic" in key, "alpha": float(key.rsplit("_", 1)[1])}


# keras.applications constructor -> what it publishes. One row per constructor.
PUBLISHED: dict[str, PublishedWeights] = {
    "MobileNet": PublishedWeights(
        folder="mobilenet",
        name=lambda arch, top, size: (f"mobilenet_{_V1_ALPHA_TEXT[float(arch['alpha'])]}_{size}_tf"
                                      f"{_top(top, '_no_top')}.h5"),
        alphas=(0.25, 0.5, 0.75, 1.0), top_sizes=(128, 160, 192, 224),
        no_top_sizes=(128, 160, 192, 224), check=_v1_check,
        # sha256 of the two alpha-0.25 files, as Keras publishes them (shared/data's README).
        hashes={
            "mobilenet_2_5_128_tf.h5": "fe295db7f78635f1403127e3ba8cdc6237f83262bdb745063a67c1d81190c7f8",
            "mobilenet_2_5_224_tf_no_top.h5": "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf",
        },
    ),
    "MobileNetV2": PublishedWeights(
        folder="mobilenet_v2",
        name=lambda arch, top, size: (f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_"
                                      f"{float(arch['alpha'])}_{size}{_top(top, '_no_top')}.h5"),
        alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4), top_sizes=(96, 128, 160, 192, 224),
        no_top_sizes=(96, 128, 160, 192, 224),
    ),
    **{
        f"MobileNetV3{variant.title()}": PublishedWeights(
            folder="mobilenet_v3", name=_v3_name(variant), alphas=(0.75, 1.0), check=_v3_check,
            hashes=_hash_table({k: v for k, v in _V3_HASHES.items() if k.startswith(variant)},
                               _v3_name(variant), _v3_arch),
        )
        for variant in ("small", "large")
    },
    **{
        constructor: PublishedWeights(
            folder="resnet", name=_keras_named(stem),
            hashes=_hash_table({stem: _RESNET_HASHES[stem]}, _keras_named(stem), lambda _: {}),
        )
        for constructor, stem in (("ResNet50", "resnet50"), ("ResNet101", "resnet101"),
                                  ("ResNet152", "resnet152"), ("ResNet50V2", "resnet50v2"),
                                  ("ResNet101V2", "resnet101v2"), ("ResNet152V2", "resnet152v2"))
    },
    # VGG's classifier starts with a Flatten, so its with-top file fits 224 x 224 only.
    "VGG16": PublishedWeights(
        folder="vgg16", name=_keras_named("vgg16"), top_sizes=(224,),
        hashes={"vgg16_weights_tf_dim_ordering_tf_kernels.h5": "64373286793e3c8b2b4e3219cbf3544b",
                "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5": "6d6bbae143d832006294945121d1f1fc"},
    ),
    "VGG19": PublishedWeights(
        folder="vgg19", name=_keras_named("vgg19"), top_sizes=(224,),
        hashes={"vgg19_weights_tf_dim_ordering_tf_kernels.h5": "cbe5617147190e668d6c5d5026f83318",
                "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5": "253f8cb515780f3b799900260a226db6"},
    ),
}

_CLASS_INDEX = WeightsFile(
    "imagenet_class_index.json",
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json",
    "c2c37ea517e94d9795004a39431a14cb",
)


def _weights_file(published: PublishedWeights, arch: dict, top: bool, size: int) -> WeightsFile:
    name = published.name(arch, top, size)
    return WeightsFile(name, f"{_BASE_URL}{published.folder}/{name}", published.hashes.get(name), top)


def imagenet_files(application: str, arch: dict, *, include_top: bool, image_size: int | None) -> list[WeightsFile]:
    """The published files that fit a model, best first; no file system or network access.

    A model without the ImageNet classifier also takes a with-classifier file (its backbone is
    the same; the classifier is left out), so those come after the no-classifier files. Without a
    published file at the model's own input size, a no-classifier model falls back to the
    224-pixel file, as keras.applications does (convolution weights do not depend on the size).

    Args:
        application: the keras.applications constructor name (``"MobileNetV2"``).
        arch: the architecture arguments (``alpha``, ``depth_multiplier``, ``minimalistic``).
        include_top: whether the model keeps the 1000-class ImageNet classifier.
        image_size: the model's input height (= width), or None for any.

    Raises:
        ValueError: for a constructor without ImageNet weights, a width that was never published,
            or a classifier at a resolution that was never published; naming the published ones.
    """
    published = PUBLISHED.get(application)
    if published is None:
        raise ValueError(
            f"keras.applications publishes no ImageNet weights for {application!r}; those with "
            f"weights: {', '.join(PUBLISHED)}."
        )
    arch = {"alpha": 1.0, **arch}
    if published.alphas is not None:
        alpha = arch["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or float(alpha) not in published.alphas:
            raise ValueError(
                f"No ImageNet weights of keras.applications.{application} are published for "
                f"alpha={alpha!r}; published widths: {', '.join(map(str, published.alphas))}."
            )
    problem = published.check(arch) if published.check else None
    if problem:
        raise ValueError(problem)
    if include_top:
        sizes = published.top_sizes
        if sizes is not None and image_size not in sizes:
            raise ValueError(
                f"The ImageNet classifier of keras.applications.{application} "
                f"{_arch_text(arch, published)}is published for inputs of "
                f"{', '.join(f'{s}x{s}' for s in sizes)} only. Received image size {image_size}; "
                f"use one of those, or build the model without the 1000-class classifier."
            )
        return [_weights_file(published, arch, True, image_size or published.default_size)]
    files = []
    sizes = published.no_top_sizes
    for size in ([image_size] if sizes is None or image_size in sizes else []) + [published.default_size]:
        for top in (False, True):
            if top and published.top_sizes is not None and size not in published.top_sizes:
                continue
            candidate = _weights_file(published, arch, top, size)
            if candidate not in files:
                files.append(candidate)
    return files


def _arch_text(arch: dict, published: PublishedWeights) -> str:
    return f"alpha={arch['alpha']} " if published.alphas is not None else ""


def _keras_cache() -> str:
    # keras.utils.get_file's documented default: $KERAS_HOME, else ~/.keras.
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def search_folders() -> list[str]:
    """Where local copies are looked for, in order: $TFRESNET_WEIGHTS_DIR, keras' cache."""
    folders = [os.environ[WEIGHTS_DIR_ENV]] if os.environ.get(WEIGHTS_DIR_ENV) else []
    return [*folders, _keras_cache()]


def find_weights_file(file_name: str) -> str | None:
    """The path of a local copy of `file_name` (see `search_folders`), or None."""
    for folder in search_folders():
        path = os.path.join(folder, file_name)
        if os.path.isfile(path):
            return path
    return None


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download(wanted: WeightsFile, what: str) -> str:
    import keras

    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return keras.utils.get_file(wanted.file_name, wanted.origin, cache_subdir="models",
                                        file_hash=wanted.file_hash)
    except Exception as err:  # keras raises a bare Exception on URL failures
        if "fetch failure" not in str(err) and not isinstance(err, OSError):
            raise
        folders = search_folders()
        reason = str(err).rsplit(" -- ", 1)[-1]  # keras repeats the URL before the cause
        raise ImageNetWeightsNotFound(
            f"{what} needs {wanted.file_name}, which is not in {' or '.join(folders)} and could "
            f"not be downloaded from {wanted.origin} ({reason}). Without "
            f"network access, copy that file from a machine that has it into a folder and set "
            f"${WEIGHTS_DIR_ENV} to it (or put it in {_keras_cache()}), or pass weights=PATH."
        ) from None


def resolve_imagenet_file(candidates: list[WeightsFile], what: str) -> WeightsFile | str:
    """The first candidate found locally as a path, else the first one downloaded.

    Raises:
        ImageNetWeightsNotFound: when none is local and the download fails, naming the file and
            where to put it.
    """
    for candidate in candidates:
        path = find_weights_file(candidate.file_name)
        if path is not None:
            return path
    return _download(candidates[0], what)


_CLASS_NAMES: list[str] | None = None


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names, by class id (``[..., "tabby", ...]``, 281 is ``tabby``).

    Read from ``imagenet_class_index.json`` (keras' `decode_predictions` data) in
    $TFRESNET_WEIGHTS_DIR or keras' cache, else downloaded there.

    Raises:
        ImageNetWeightsNotFound: (a FileNotFoundError) offline with no local copy, saying where to
            put it.
    """
    global _CLASS_NAMES
    if _CLASS_NAMES is None:
        path = find_weights_file(_CLASS_INDEX.file_name) or _download(_CLASS_INDEX, "ImageNet class names")
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
        names = [index[str(i)][1] for i in range(IMAGENET_CLASSES)]
        _CLASS_NAMES = names
    return list(_CLASS_NAMES)
