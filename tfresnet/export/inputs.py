"""What every export takes: the input geometry, the class names, and encoded images decoded as training does.

`decode_images` is the SavedModel's ``serving_bytes`` front end and `tfresnet predict`'s
decoder: one copy of "encoded file -> uint8 pixels at the model's size", through the data
layer's own `tfresnet.data.decode.decode_image`.
"""

from __future__ import annotations

import typing

import numpy as np

from tfresnet.checks import number
from tfresnet.training.config import TrainConfig

__all__ = ["DEFAULT_MAX_PIXELS", "RESIZE_MODES", "check_class_names", "check_max_pixels", "check_resize_mode",
           "decode_images", "image_geometry"]

# The choices of the config key `resize_mode`, read from its Literal hint: the one list, and
# `tfresnet.training.config` imports only the standard library (not the data package).
RESIZE_MODES = typing.get_args(typing.get_type_hints(TrainConfig)["resize_mode"])
# Largest image `serving_bytes` decodes, height x width: a 40-megapixel photo is 120 MB as
# decoded RGB uint8. Set per export (`max_pixels=`, `tfresnet export --max-pixels`).
DEFAULT_MAX_PIXELS = 40_000_000


def image_geometry(model, image_size=None) -> tuple[int, int, int]:
    """(height, width, channels) the exports take, from the model's input shape.

    Args:
        model: a Keras model with one image input.
        image_size: (height, width) or a side, needed only when the model's size is not fixed.

    Raises:
        ValueError: for a model without one 1- or 3-channel image input, or an `image_size`
            that disagrees with the model's fixed one (or is missing for a size-agnostic model).
    """
    shape = tuple(model.input_shape) if hasattr(model, "input_shape") else None
    if not shape or isinstance(shape[0], (tuple, list)) or len(shape) != 4:
        raise ValueError(
            "Export needs a model with one image input of shape (batch, height, width, channels). "
            f"Received input_shape={shape}"
        )
    height, width, channels = shape[1:]
    if channels not in (1, 3):
        raise ValueError(f"Export supports 1 or 3 input channels. Received input_shape={shape}")
    if image_size is not None:
        size = (int(image_size), int(image_size)) if np.ndim(image_size) == 0 else tuple(map(int, image_size))
        if any(fixed is not None and fixed != wanted for fixed, wanted in zip((height, width), size)):
            raise ValueError(
                f"image_size={image_size} disagrees with the model's input_shape={shape}; "
                "leave image_size unset for a model with a fixed input size."
            )
        height, width = size
    if height is None or width is None:
        raise ValueError(
            "The model takes images of any size, so the export needs image_size=(height, width) "
            f"to fix the serving input and the size encoded images are resized to. Received input_shape={shape}"
        )
    return int(height), int(width), int(channels)


def check_class_names(class_names, num_classes) -> list[str]:
    """`class_names` as a list, checked against the model's `num_classes` outputs.

    Raises:
        TypeError: for names that are not strings.
        ValueError: for the wrong number of names, or a name with a line break.
    """
    names = list(class_names)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"class_names must be strings. Received class_names={names!r}")
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(
            f"The model has {num_classes} outputs but {len(names)} class names were given. "
            f"Received class_names={names!r}"
        )
    # The asset is a one-name-per-line text file read by a line-number lookup table.
    bad = [n for n in names if "\n" in n or "\r" in n]
    if bad:
        raise ValueError(f"Class names cannot contain line breaks. Received {bad!r}")
    return names


def check_resize_mode(resize_mode: str) -> str:
    """Returns `resize_mode` if it is one of `RESIZE_MODES`, else raises ValueError naming it."""
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES}. Received resize_mode={resize_mode!r}")
    return resize_mode


def check_max_pixels(max_pixels) -> int:
    """`max_pixels` as an int >= 1 (numpy integers too); ValueError echoing it otherwise."""
    return number(max_pixels, "max_pixels", integer=True)


def decode_images(image_bytes, image_size, channels: int, resize_mode: str = "resize",
                  max_pixels: int | None = None):
    """Decodes a batch of encoded images to uint8 pixels the way the training pipeline does.

    Each image goes through `tfresnet.data.decode.decode_image`, the function the training
    pipeline decodes with: decoded (`tf.io.decode_image`, first frame of a GIF), brought to
    `channels`, cropped or padded to the target aspect ratio and resized (``"resize"`` stretches,
    ``"crop"`` centre-crops, ``"pad"`` pads with black: `keras.layers.Resizing`'s boxes and
    bilinear resize), rounded and clipped to uint8, so serving sees the pixels training saw.

    Memory stays bounded by `max_pixels`: JPEG, PNG and GIF sizes are read from the header and
    checked before anything is decoded (other formats right after decoding), and images stay
    uint8 until they are resized, so no float copy of a full-size image is ever made.

    A batch succeeds or fails as a whole: one image that is not a supported format, is corrupt
    or is larger than `max_pixels` fails the call with `tf.errors.InvalidArgumentError`, whose
    message says which check failed (for the size, the limit and the image's pixel count).

    Args:
        image_bytes: string tensor ``[N]`` of JPEG, PNG, GIF or BMP files.
        image_size: (height, width) of the output.
        channels: 1 or 3.
        resize_mode: one of `RESIZE_MODES`.
        max_pixels: largest height x width accepted (with ``"pad"``, of the padded image);
            `DEFAULT_MAX_PIXELS` when None.

    Returns:
        A uint8 tensor ``[N, height, width, channels]``.

    Raises:
        ValueError: for an unknown `resize_mode` or `channels`, or a `max_pixels` below 1.
        tf.errors.InvalidArgumentError: (when run) for bytes that are not a supported image, or
            an image over `max_pixels`; the whole batch fails.
    """
    import tensorflow as tf

    from tfresnet.data.decode import decode_image

    check_resize_mode(resize_mode)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3. Received channels={channels}")
    max_pixels = check_max_pixels(DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
    height, width = (int(s) for s in image_size)
    too_large = (
        f"serving_bytes: an image has more pixels (x, height * width) than max_pixels={max_pixels:,} "
        f"(y), the limit set at export time. Downscale it before sending it, or export again "
        f"with a larger max_pixels."
    )
    return tf.map_fn(
        lambda data: decode_image(data, (height, width), channels, resize_mode, max_pixels=max_pixels,
                                  too_large=too_large),
        tf.convert_to_tensor(image_bytes, tf.string),
        fn_output_signature=tf.TensorSpec([height, width, channels], tf.uint8),
    )
