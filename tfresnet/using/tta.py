"""Test-time augmentation: a model's softmax probabilities averaged over views of each image.

``tfresnet evaluate RUN_DIR --tta flip|flip+crops`` and ``tfresnet predict ... --tta ...``.

A view is data (`VIEWS`): the fraction of each side kept, where the crop sits in the spare margin
(0 top or left, 1 bottom or right, as fastai v1's ``row_pct``/``col_pct``) and whether it is
mirrored; a crop is resized back to the model's input size (bilinear). A mode is a row of views
(`TTA_MODES`); every view counts the same in the mean.

- ``flip``: the image and its horizontal mirror (timm's and fastai's first augmentation).
- ``flip+crops``: those two, plus the four corner crops keeping 87.5% of each side, each also
  mirrored: ten views. That is the ten-crop of Krizhevsky et al. (2012), also He et al.'s (2016)
  "standard 10-crop testing" (224 of 256 pixels is 87.5%, timm's default ``crop_pct``), with the
  whole image in place of the centre crop, since tfresnet's images are already fitted to the input.
  fastai v1's ``TTA`` takes the same corners and mirrors (zoomed 1.35x, 74% of each side) and
  blends their mean with the plain prediction (weight 0.4); here the plain image is one view of ten.

A mirror changes the class of some images (digits: a mirrored 2 is no digit), so a mode with a
mirror is refused for a dataset whose registry entry says ``flips_keep_class=False``
(`tfresnet.data.registry.DatasetSpec`); where nothing is known (a folder, a bare ``.keras`` file)
it runs, with a note saying so.

The views and their mean are `keras.ops`, so they run on any backend; each view is one batched
call of the model. Keras is imported when a view is made, so the tables cost nothing to import.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["CROP_FRACTION", "TTA_MODES", "VIEWS", "check_tta", "describe", "make_views", "tta_model",
           "tta_probabilities"]

CROP_FRACTION = 0.875  # 224 of 256: the ten-crop's crop

# name -> (fraction of each side kept, row position, column position, mirrored)
VIEWS: dict[str, tuple[float, float, float, bool]] = {
    "original": (1.0, 0.5, 0.5, False),
    "mirror": (1.0, 0.5, 0.5, True),
    "top-left": (CROP_FRACTION, 0.0, 0.0, False),
    "top-right": (CROP_FRACTION, 0.0, 1.0, False),
    "bottom-left": (CROP_FRACTION, 1.0, 0.0, False),
    "bottom-right": (CROP_FRACTION, 1.0, 1.0, False),
    "top-left mirror": (CROP_FRACTION, 0.0, 0.0, True),
    "top-right mirror": (CROP_FRACTION, 0.0, 1.0, True),
    "bottom-left mirror": (CROP_FRACTION, 1.0, 0.0, True),
    "bottom-right mirror": (CROP_FRACTION, 1.0, 1.0, True),
}
_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")

# mode -> the views averaged
TTA_MODES: dict[str, tuple[str, ...]] = {
    "none": ("original",),
    "flip": ("original", "mirror"),
    "flip+crops": ("original", "mirror", *_CORNERS, *(f"{c} mirror" for c in _CORNERS)),
}


def _flips(mode: str) -> bool:
    return any(VIEWS[name][3] for name in TTA_MODES[mode])


def check_tta(mode: str, data: str | None) -> list[str]:
    """Checks a TTA mode against what the registry knows of the data the model classifies.

    Args:
        mode: a key of `TTA_MODES`.
        data: the dataset's registry name (``mnist``, ``folder:PATH``), or None when unknown.

    Returns:
        Notes for the user (empty when all is known and allowed).

    Raises:
        ValueError: for an unknown mode, or a mode with a mirror on data whose class a mirror
            changes (MNIST's digits).
    """
    if mode not in TTA_MODES:
        raise ValueError(f"Unknown TTA mode {mode!r}; choose one of {', '.join(TTA_MODES)}.")
    if not _flips(mode):
        return []
    if data is None:
        return [f"--tta {mode} mirrors images, and nothing is known of this model's data: check that a "
                f"mirrored image keeps its class"]
    from tfresnet.data.registry import get_dataset_spec

    try:
        spec, _ = get_dataset_spec(data)
    except ValueError:
        return [f"--tta {mode} mirrors images, and {data!r} is no registered dataset: check that a mirrored "
                f"image keeps its class"]
    if spec.flips_keep_class is False:
        raise ValueError(
            f"--tta {mode} is refused for {data!r}: it averages over mirrored images, and a mirror changes "
            f"the class of {spec.name}'s images (a mirrored 2, 3 or 7 is no digit); use --tta none."
        )
    if spec.flips_keep_class is None:
        return [f"--tta {mode} mirrors images; whether a mirror keeps the class of {data!r} is unknown: "
                f"check it for these images"]
    return []


def describe(mode: str) -> dict:
    """What ``metrics.json`` records of a TTA mode: its name and its views."""
    return {"mode": mode, "views": list(TTA_MODES[mode])}


def _view(images, name: str):
    import keras

    fraction, row, col, mirrored = VIEWS[name]
    height, width = int(images.shape[1]), int(images.shape[2])
    out = images
    if fraction < 1:
        crop_h, crop_w = max(1, round(height * fraction)), max(1, round(width * fraction))
        top, left = round((height - crop_h) * row), round((width - crop_w) * col)
        out = keras.ops.image.resize(out[:, top:top + crop_h, left:left + crop_w, :], (height, width),
                                     interpolation="bilinear")
    if mirrored:
        out = keras.ops.flip(out, axis=2)
    return out


def make_views(images, mode: str) -> list:
    """The views of a batch of images ``[N, H, W, C]``, float32, in `TTA_MODES[mode]` order.

    The plain image and its mirror are exact (no resampling); crops are resized back bilinearly.
    """
    import keras  # here, not at the top: ``tfresnet evaluate --help`` should not start Keras

    images = keras.ops.cast(keras.ops.convert_to_tensor(np.asarray(images)), "float32")
    return [_view(images, name) for name in TTA_MODES[mode]]


def tta_probabilities(probabilities: Callable, images, mode: str) -> np.ndarray:
    """The mean of ``probabilities(view)`` over the views of `images`.

    Args:
        probabilities: a batch of images -> a batch of softmax probabilities ``[N, K]``.
        images: ``[N, H, W, C]``; uint8 images get uint8 views (rounded, as the input pipeline
            rounds resized images), so a SavedModel taking raw uint8 takes them too.
        mode: a key of `TTA_MODES`.

    Returns:
        float32 ``[N, K]``.
    """
    import keras

    as_uint8 = np.asarray(images).dtype == np.uint8
    outputs = []
    for view in make_views(images, mode):
        batch = (keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.clip(keras.ops.round(view), 0, 255), "uint8"))
                 if as_uint8 else view)
        outputs.append(keras.ops.cast(probabilities(batch), "float32"))
    return keras.ops.convert_to_numpy(keras.ops.mean(keras.ops.stack(outputs), axis=0))


def tta_model(model, mode: str) -> Callable:
    """`model` seen through TTA: ``(images, training=False) -> averaged probabilities``, as
    `tfresnet.training.report.evaluate` calls a model."""

    def call(images, training=False):
        return tta_probabilities(lambda view: model(view, training=training), images, mode)

    return call
