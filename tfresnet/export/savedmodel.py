"""The SavedModel a server loads, and `ExportedClassifier`, the predictor that loads it back.

Built with Keras 3's `keras.export.ExportArchive` (the documented way to give a Keras 3 model
custom endpoints), with two signatures:

- ``serving_default``: ``images`` uint8 ``[None, H, W, C]`` -> ``probabilities``, ``class_id``
  and ``class_name`` (looked up in ``assets/class_names.txt``, one name per line);
- ``serving_bytes``: ``image_bytes`` string ``[None]`` of encoded JPEG/PNG/GIF/BMP files, decoded
  and resized as the training pipeline does it (`tfresnet.export.inputs.decode_images`), then the
  same outputs. Images over ``max_pixels`` (set at export, stored in the SavedModel) are refused.

The folder is written beside its destination and renamed into place
(`tfresnet.files.replace_dir_atomic`), so a failed or killed export never leaves a half-written
one where the previous export was.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from tfresnet.export.inputs import (
    DEFAULT_MAX_PIXELS,
    check_class_names,
    check_max_pixels,
    check_resize_mode,
    decode_images,
    image_geometry,
)
from tfresnet.files import replace_dir_atomic

__all__ = ["CLASS_NAMES_ASSET", "SERVING_BYTES", "SERVING_DEFAULT", "ExportedClassifier", "classify",
           "export_saved_model", "load_exported"]

SERVING_DEFAULT = "serving_default"
SERVING_BYTES = "serving_bytes"
CLASS_NAMES_ASSET = "class_names.txt"


def classify(model, images):
    """Runs `model` in inference mode on uint8 images; float32 probabilities even under mixed precision."""
    import tensorflow as tf

    probabilities = tf.cast(model(images, training=False), tf.float32)
    return probabilities, tf.argmax(probabilities, axis=-1, output_type=tf.int64)


def _check_replaceable(export_dir: str) -> None:
    # Replace an earlier export, but never a folder that is not one.
    if os.path.isdir(export_dir) and os.listdir(export_dir):
        if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
            raise FileExistsError(
                f"{export_dir} exists and is not a SavedModel; refusing to overwrite it."
            )
    elif os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise FileExistsError(f"{export_dir} exists and is a file; refusing to overwrite it.")


def _class_name_table(names_path: str):
    import tensorflow as tf

    return tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            names_path,
            key_dtype=tf.int64,
            key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            value_dtype=tf.string,
            value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        ),
        default_value="",
    )


def _serving_archive(model, names_path: str, geometry, resize_mode: str, max_pixels: int):
    """The `ExportArchive` with both signatures; `names_path` must exist until it is written."""
    import keras
    import tensorflow as tf

    height, width, channels = geometry
    table = _class_name_table(names_path)

    def serve_images(images):
        # A loaded signature checks only the dtype of its input; without this, a batch of the
        # wrong size or channel count either runs (a 1-channel model on 2 channels, any size
        # after global pooling) or fails deep inside a convolution.
        images = tf.ensure_shape(images, [None, height, width, channels], name="check_images_shape")
        probabilities, class_id = classify(model, images)
        return {"probabilities": probabilities, "class_id": class_id, "class_name": table.lookup(class_id)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(table)  # lookup tables are not found through the endpoints alone
    serve_default = archive.add_endpoint(
        SERVING_DEFAULT,
        serve_images,
        input_signature=[tf.TensorSpec([None, height, width, channels], tf.uint8, name="images")],
    )

    def serve_bytes(image_bytes):
        # Calls the traced serving_default rather than the model: one copy of the network
        # in the SavedModel, and one trace instead of two.
        return serve_default(decode_images(image_bytes, (height, width), channels, resize_mode, max_pixels))

    archive.add_endpoint(
        SERVING_BYTES,
        serve_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    # Readable after loading (`loaded.max_pixels[0]`); the graph holds the same constant.
    archive.add_variable_collection(
        "max_pixels", [tf.Variable(max_pixels, dtype=tf.int64, trainable=False, name="max_pixels")]
    )
    return archive


def export_saved_model(
    model,
    export_dir: str,
    class_names,
    *,
    resize_mode: str = "resize",
    image_size=None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> str:
    """Writes a SavedModel that serves raw uint8 images and encoded image bytes.

    Signatures:
        ``serving_default(images: uint8 [None, H, W, C])`` and
        ``serving_bytes(image_bytes: string [None])``, both returning ``probabilities``
        (float32 ``[None, K]``), ``class_id`` (int64 ``[None]``) and ``class_name``
        (string ``[None]``). The class names are the asset ``assets/class_names.txt``; the
        SavedModel's ``max_pixels`` variable holds the limit `serving_bytes` enforces.
        `serving_bytes` is all or nothing: one image that is corrupt, of an unsupported format
        or over `max_pixels` fails the whole call with ``InvalidArgumentError`` (see
        `decode_images`); send one image per call to isolate a bad one.

    The SavedModel is written into a sibling folder that then takes `export_dir`'s name, so a
    failed or killed export leaves an earlier export at `export_dir` intact and loadable. Its
    files get the modes the umask gives any new file.

    Args:
        model: a Keras classifier that takes raw [0, 255] pixels (its first layer a
            `tfresnet.models.layers.Preprocess`) and outputs probabilities.
        export_dir: folder to write; an earlier SavedModel there is replaced.
        class_names: one name per model output.
        resize_mode: how `serving_bytes` fits images to H x W; one of `RESIZE_MODES`, as trained.
        image_size: (height, width), needed only for a model whose input size is not fixed.
        max_pixels: largest height x width `serving_bytes` decodes; bigger images are refused
            before decoding where their header gives the size (JPEG, PNG, GIF).

    Returns:
        `export_dir`.

    Raises:
        ValueError: for a model that does not take one 1- or 3-channel image input, class names
            that do not match its outputs (or contain line breaks), an unknown `resize_mode` or
            a `max_pixels` below 1.
        TypeError: for class names that are not strings.
        FileExistsError: if `export_dir` is a non-empty folder that is not a SavedModel.
        tfresnet.files.WriteError: when the disk refuses the write (the previous export stays).
    """
    geometry = image_geometry(model, image_size)
    names = check_class_names(class_names, model.output_shape[-1])
    check_resize_mode(resize_mode)
    max_pixels = check_max_pixels(max_pixels)
    export_dir = os.fspath(export_dir)
    _check_replaceable(export_dir)

    with tempfile.TemporaryDirectory() as tmp:
        # The file only has to exist while saving: the initializer wraps the path in a
        # tf.saved_model.Asset, which tf.saved_model.save copies into assets/.
        names_path = os.path.join(tmp, CLASS_NAMES_ASSET)
        with open(names_path, "w", encoding="utf-8") as f:
            f.write("".join(n + "\n" for n in names))
        archive = _serving_archive(model, names_path, geometry, resize_mode, max_pixels)
        replace_dir_atomic(export_dir, lambda staged: archive.write_out(staged, verbose=False))
    return export_dir


class ExportedClassifier:
    """A loaded SavedModel from `export_saved_model` that checks its input before running.

    Attributes:
        export_dir: the SavedModel folder.
        image_size: (height, width) the ``serving_default`` signature takes.
        channels: 1 or 3.
        class_names: the names in the SavedModel's class-name asset.
        max_pixels: the largest image ``serving_bytes`` decodes (None for exports older than
            the limit).
        signatures: the loaded signatures, by name.
    """

    def __init__(self, export_dir: str):
        import tensorflow as tf

        self.export_dir = os.fspath(export_dir)
        self._loaded = tf.saved_model.load(self.export_dir)
        self.signatures = dict(self._loaded.signatures)
        missing = [s for s in (SERVING_DEFAULT, SERVING_BYTES) if s not in self.signatures]
        if missing:
            raise ValueError(
                f"{self.export_dir} is not a tfresnet export: it lacks signature(s) {missing}; "
                f"it has {sorted(self.signatures)}."
            )
        spec = self.signatures[SERVING_DEFAULT].structured_input_signature[1]["images"]
        _, height, width, channels = spec.shape.as_list()
        self.image_size = (height, width)
        limit = getattr(self._loaded, "max_pixels", None)
        self.max_pixels = int(limit[0].numpy()) if limit else None
        self.channels = channels
        with open(os.path.join(self.export_dir, "assets", CLASS_NAMES_ASSET), encoding="utf-8") as f:
            self.class_names = f.read().splitlines()

    def check_images(self, images) -> np.ndarray:
        """Returns `images` as a numpy array after checking it fits ``serving_default``.

        Raises:
            ValueError: naming the bad dtype, rank, size or channel count and the expected one.
        """
        images = np.asarray(images)
        expected = f"[N, {self.image_size[0]}, {self.image_size[1]}, {self.channels}]"
        if images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 raw pixels in [0, 255], shape {expected}. "
                f"Received dtype={images.dtype} (convert with np.clip(x, 0, 255).astype(np.uint8))."
            )
        if images.ndim != 4:
            hint = " (add a batch axis: images[None])" if images.ndim == 3 else ""
            raise ValueError(f"images must have shape {expected}{hint}. Received shape={images.shape}")
        if tuple(images.shape[1:3]) != tuple(self.image_size):
            raise ValueError(
                f"images must be {self.image_size[0]}x{self.image_size[1]}, shape {expected}; resize them, "
                f"or send encoded files to predict_bytes(). Received shape={images.shape}"
            )
        if images.shape[3] != self.channels:
            raise ValueError(
                f"images must have {self.channels} channel(s), shape {expected}. Received shape={images.shape}"
            )
        return images

    @staticmethod
    def _to_numpy(outputs) -> dict[str, Any]:
        result = {k: v.numpy() for k, v in outputs.items()}
        if "class_name" in result:
            result["class_name"] = [n.decode("utf-8") for n in result["class_name"]]
        return result

    def predict(self, images) -> dict[str, Any]:
        """Classifies a batch of raw uint8 images ``[N, H, W, C]``.

        Returns:
            ``{"probabilities": float32 [N, K], "class_id": int64 [N], "class_name": list of N str}``.

        Raises:
            ValueError: if `images` is not a uint8 array of the signature's shape.
        """
        images = self.check_images(images)
        return self._to_numpy(self.signatures[SERVING_DEFAULT](images=images))

    def predict_bytes(self, image_bytes) -> dict[str, Any]:
        """Classifies encoded JPEG/PNG/GIF/BMP files (a list of `bytes`); returns as `predict`.

        Raises:
            TypeError: for a single `bytes` object instead of a list.
            tf.errors.InvalidArgumentError: when any file is corrupt, not a supported image, or
                larger than `max_pixels`: the whole batch fails (see `decode_images`).
        """
        if isinstance(image_bytes, (bytes, str)):
            raise TypeError("image_bytes must be a list of encoded files; wrap a single file as [data].")
        import tensorflow as tf

        return self._to_numpy(self.signatures[SERVING_BYTES](image_bytes=tf.constant(list(image_bytes), tf.string)))


def load_exported(export_dir: str) -> ExportedClassifier:
    """Loads a SavedModel written by `export_saved_model` as an `ExportedClassifier`.

    Raises:
        ValueError: if the SavedModel lacks the tfresnet signatures.
    """
    return ExportedClassifier(export_dir)
