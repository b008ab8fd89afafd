"""Encoded image -> uint8 pixels at the model's size: one function for training and serving.

`tfresnet.data.pipeline` decodes the files and tensorflow-datasets records it trains on with
`decode_image`, and the SavedModel's ``serving_bytes`` signature (`tfresnet.export.decode_images`)
decodes a client's images with it too, so serving sees the pixels training saw.

Resizing follows `keras.layers.Resizing` (its crop and pad boxes, bilinear, no antialiasing,
rounded and clipped to uint8) but is written with TensorFlow ops on uint8 images: the layer casts
its input to float32 first (a full-size float copy of every photo), and ``keras.ops.image.resize``
runs the Keras backend's ops, which inside a tf.data map must be TensorFlow's whatever
``KERAS_BACKEND`` is. `tf.image.resize` reads uint8 directly, so the only float32 copy is the
output at the target size.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["RESIZE_MODES", "decode_image", "resize_image"]

# "resize" stretches, "crop" centre-crops and "pad" pads with black to the target aspect ratio.
RESIZE_MODES = ("resize", "crop", "pad")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _header_pixels(data):
    """Pixels an encoded image declares in its header (JPEG, PNG, GIF), read without decoding.

    0 for other formats (BMP: uncompressed, so the encoded size bounds it), which are checked
    after decoding instead.
    """
    # The first 24 bytes, zero-padded: short or odd files must fail in the decoder, not here.
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 24), b"\0" * 24]), 0, 24)
    b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

    def be32(i):
        return ((b[i] * 256 + b[i + 1]) * 256 + b[i + 2]) * 256 + b[i + 3]

    def le16(i):
        return b[i] + b[i + 1] * 256

    def jpeg():
        return tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64))

    png = tf.equal(tf.strings.substr(head, 0, 8), _PNG_SIGNATURE)
    gif = tf.equal(tf.strings.substr(head, 0, 4), b"GIF8")
    return tf.cond(
        tf.io.is_jpeg(data),
        jpeg,
        lambda: tf.cond(
            png,
            lambda: be32(16) * be32(20),  # IHDR, always the first chunk: width, height
            lambda: tf.cond(gif, lambda: le16(6) * le16(8), lambda: tf.constant(0, tf.int64)),
        ),
    )


def _fit(image, height: int, width: int, resize: str):
    """Crops or pads a uint8 image to the target aspect ratio and resizes it: float32 [h, w, C].

    The boxes are `keras.layers.Resizing`'s (``crop_to_aspect_ratio``, ``pad_to_aspect_ratio``),
    computed the way Keras computes them, so the pixels agree with the layer's.
    """
    shape = tf.shape(image)
    h, w = shape[0], shape[1]

    def scaled(n, num, den):  # Keras' int32(float32(n * num) / den)
        return tf.cast(tf.cast(n * num, tf.float32) / den, tf.int32)

    if resize == "crop":
        crop_h = tf.maximum(tf.minimum(h, scaled(w, height, width)), 1)
        crop_w = tf.maximum(tf.minimum(w, scaled(h, width, height)), 1)
        top = tf.cast(tf.cast(h - crop_h, tf.float32) / 2, tf.int32)
        left = tf.cast(tf.cast(w - crop_w, tf.float32) / 2, tf.int32)
        image = image[top : top + crop_h, left : left + crop_w, :]
    elif resize == "pad":
        top = tf.cast(tf.cast(tf.maximum(h, scaled(w, height, width)) - h, tf.float32) / 2, tf.int32)
        left = tf.cast(tf.cast(tf.maximum(w, scaled(h, width, height)) - w, tf.float32) / 2, tf.int32)
        image = tf.pad(image, [[top, top], [left, left], [0, 0]])  # black bars, both sides alike
    return tf.image.resize(image, (height, width), method="bilinear", antialias=False)


def _to_uint8(pixels):
    return tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, 255.0), tf.uint8)


def resize_image(image, image_size, resize: str = "resize"):
    """Resizes one uint8 image ``[h, w, C]`` to ``[height, width, C]`` uint8, as `decode_image` does.

    Args:
        image: uint8 pixels.
        image_size: (height, width) of the output.
        resize: one of `RESIZE_MODES`.
    """
    height, width = (int(s) for s in image_size)
    return _to_uint8(_fit(image, height, width, resize))


def _size_check(image, height: int, width: int, resize: str, max_pixels: int, message: str):
    """`image` itself, once its pixel count (with ``"pad"``, the padded one's) is within bounds."""
    shape = tf.cast(tf.shape(image), tf.int64)
    h, w = shape[0], shape[1]
    if resize == "pad":  # the padded image is what gets allocated
        h, w = (tf.maximum(h, tf.cast(tf.cast(w * height, tf.float32) / width, tf.int64)),
                tf.maximum(w, tf.cast(tf.cast(h * width, tf.float32) / height, tf.int64)))
    check = tf.debugging.assert_less_equal(h * w, tf.constant(max_pixels, tf.int64),
                                           message=message, name="check_image_size")
    with tf.control_dependencies([check]):
        return tf.identity(image)


def decode_image(data, image_size, channels: int, resize: str = "resize", *,
                 max_pixels: int | None = None, too_large: str = "image over max_pixels"):
    """Decodes one encoded image to uint8 pixels ``[height, width, channels]``.

    The image is decoded (`tf.io.decode_image`, first frame of a GIF), brought to `channels`,
    cropped or padded to the target aspect ratio and resized (`RESIZE_MODES`), then rounded and
    clipped to uint8. Gray output: PNG and JPEG decode straight to gray; GIF and BMP decoders only
    give colour, so those are converted with the ITU-R 601 luma weights after resizing (both
    steps are linear, so their order does not change the result).

    Args:
        data: a scalar string tensor: a JPEG, PNG, GIF or BMP file.
        image_size: (height, width) of the output.
        channels: 1 or 3.
        resize: one of `RESIZE_MODES`.
        max_pixels: largest height x width decoded (with ``"pad"``, of the padded image): JPEG,
            PNG and GIF sizes are read from the header and checked before decoding, others right
            after. None checks nothing.
        too_large: the message of the error an image over `max_pixels` raises.

    Returns:
        A uint8 tensor ``[height, width, channels]``.

    Raises:
        tf.errors.InvalidArgumentError: (when run) for bytes that are not a supported image, or
            an image over `max_pixels`.
    """
    height, width = (int(s) for s in image_size)

    def decode(depth):
        checks = []
        if max_pixels is not None:
            # Before decoding where the header tells the size: a small file can declare a huge
            # image (a decompression bomb), and decoding would allocate it first.
            checks.append(tf.debugging.assert_less_equal(
                _header_pixels(data), tf.constant(max_pixels, tf.int64), message=too_large,
                name="check_header_size"))
        with tf.control_dependencies(checks):
            image = tf.io.decode_image(data, channels=depth, expand_animations=False, dtype=tf.uint8)
        image.set_shape([None, None, depth])
        if max_pixels is not None:
            image = _size_check(image, height, width, resize, max_pixels, too_large)
        return _fit(image, height, width, resize)

    if channels == 1:
        png = tf.equal(tf.strings.substr(data, 0, 8), _PNG_SIGNATURE)
        resized = tf.cond(tf.logical_or(tf.io.is_jpeg(data), png),
                          lambda: decode(1), lambda: tf.image.rgb_to_grayscale(decode(3)))
    else:
        resized = decode(channels)
    return _to_uint8(resized)
