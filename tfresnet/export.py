"""Export a trained classifier for serving: SavedModel, TFLite and ONNX.

Every export takes **raw uint8 pixels** ``[N, H, W, C]`` and returns float32 ``probabilities``
``[N, K]`` and the top ``class_id`` ``[N]``: the input scaling is the model's own
`tfresnet.models.layers.Preprocess` layer, so a client never re-implements it. (A model trained
with ``output="sigmoid"`` gives each class its own unit's probability; those need not sum to 1.)

The SavedModel (`export_saved_model`) carries two signatures, built with Keras 3's
`keras.export.ExportArchive` (the documented way to give a Keras 3 model custom endpoints):

- ``serving_default``: ``images`` uint8 ``[None, H, W, C]`` -> ``probabilities``, ``class_id``
  and ``class_name`` (looked up in ``assets/class_names.txt``, one name per line);
- ``serving_bytes``: ``image_bytes`` string ``[None]`` of encoded JPEG/PNG/GIF/BMP files, decoded
  and resized the way the training pipeline does it (`tfresnet.data.pipeline`), then the same
  outputs. Images over ``max_pixels`` (set at export, stored in the SavedModel) are refused,
  from the header before decoding for JPEG, PNG and GIF; one bad image fails the whole call.

Exports are written beside their destination and renamed into place, so a failed or killed
export never leaves a half-written one where the previous export was.

`load_exported` wraps a SavedModel in a predictor that checks numpy input before TensorFlow sees
it; `export_run` and ``tfresnet export RUN_DIR`` export a training run directory and check the
result against the Keras model on a random batch.

TFLite conversion uses `tf.lite.TFLiteConverter` (still in TensorFlow 2.21) and runs the result
with LiteRT's interpreter (``ai-edge-litert``) when it is installed, falling back to the deprecated
`tf.lite.Interpreter`. ONNX needs the optional ``tf2onnx`` and ``onnx`` packages (and
``onnxruntime`` to check the result); without them `export_onnx` says why it is unavailable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from typing import Any

import numpy as np

__all__ = [
    "read_run",
    "CLASS_NAMES_ASSET",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PATHS",
    "FORMATS",
    "RESIZE_MODES",
    "SERVING_BYTES",
    "SERVING_DEFAULT",
    "TOLERANCES",
    "ExportedClassifier",
    "add_arguments",
    "decode_images",
    "export_onnx",
    "export_run",
    "export_saved_model",
    "export_tflite",
    "load_exported",
    "onnx_unavailable_reason",
    "run",
    "verify_export",
]

# Kept equal to tfresnet.data.RESIZE_MODES; not imported from there so that exporting does not
# pull in the data package (tensorflow-datasets and friends).
RESIZE_MODES = ("resize", "crop", "pad")
SERVING_DEFAULT = "serving_default"
SERVING_BYTES = "serving_bytes"
CLASS_NAMES_ASSET = "class_names.txt"
# Largest image `serving_bytes` decodes, height x width: a 40-megapixel photo is 120 MB as
# decoded RGB uint8. Set per export (`max_pixels=`, `tfresnet export --max-pixels`).
DEFAULT_MAX_PIXELS = 40_000_000

# format -> default location under RUN_DIR/export/
DEFAULT_PATHS = {"saved_model": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
FORMATS = tuple(DEFAULT_PATHS)

# Largest acceptable max |p_export - p_keras| per format when `export_run` checks its output.
# The SavedModel runs the same TF kernels as Keras; TFLite and ONNX Runtime use their own
# kernels (different summation order in convolutions), hence the looser bound.
TOLERANCES = {"saved_model": 1e-5, "tflite": 1e-4, "onnx": 1e-4}

_RUN_FILES = ("model.keras", "class_names.json", "config.json")
_VERIFY_BATCH = 8


# --------------------------------------------------------------------------- input geometry


def _image_geometry(model, image_size=None) -> tuple[int, int, int]:
    """(height, width, channels) the exports take, from the model's input shape."""
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


def _check_class_names(class_names, num_classes) -> list[str]:
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


# --------------------------------------------------------------------------- decoding


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

    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES}. Received resize_mode={resize_mode!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3. Received channels={channels}")
    max_pixels = _check_max_pixels(DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
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


def _check_max_pixels(max_pixels) -> int:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int. Received max_pixels={max_pixels!r}")
    return int(max_pixels)


# --------------------------------------------------------------------------- SavedModel


def _classify(model, images):
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


@contextlib.contextmanager
def _replacing(path: str):
    """Yields a fresh sibling of `path` to write into; once written, it takes `path`'s place.

    The new export is complete before it gets the name, and the previous one keeps the name
    until then: an export that fails leaves the previous one as it was (and removes its own
    folder); one killed while writing leaves it too, beside a ``NAME.partial-*`` folder (safe to
    delete). Only a kill in the instant between the two final renames leaves the previous
    export under ``NAME.partial-*-previous`` instead of its name.
    """
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    staged = tempfile.mkdtemp(prefix=f"{name}.partial-", dir=parent)
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    previous = f"{staged}-previous"
    # Two renames, not one: a directory cannot replace a non-empty one in a single os.replace.
    if os.path.lexists(path):
        os.replace(path, previous)
    try:
        os.replace(staged, path)
    except BaseException:
        if os.path.lexists(previous):
            os.replace(previous, path)
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if os.path.isdir(previous):
        shutil.rmtree(previous, ignore_errors=True)
    elif os.path.lexists(previous):
        os.remove(previous)


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
    failed or killed export leaves an earlier export at `export_dir` intact and loadable.

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
    """
    import keras
    import tensorflow as tf

    height, width, channels = _image_geometry(model, image_size)
    names = _check_class_names(class_names, model.output_shape[-1])
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES}. Received resize_mode={resize_mode!r}")
    max_pixels = _check_max_pixels(max_pixels)
    export_dir = os.fspath(export_dir)
    _check_replaceable(export_dir)

    with tempfile.TemporaryDirectory() as tmp, _replacing(export_dir) as staged:
        # The file only has to exist while saving: the initializer wraps the path in a
        # tf.saved_model.Asset, which tf.saved_model.save copies into assets/.
        names_path = os.path.join(tmp, CLASS_NAMES_ASSET)
        with open(names_path, "w", encoding="utf-8") as f:
            f.write("".join(n + "\n" for n in names))
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                names_path,
                key_dtype=tf.int64,
                key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                value_dtype=tf.string,
                value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="",
        )

        def outputs(images):
            probabilities, class_id = _classify(model, images)
            return {"probabilities": probabilities, "class_id": class_id, "class_name": table.lookup(class_id)}

        def serve_images(images):
            # A loaded signature checks only the dtype of its input; without this, a batch of the
            # wrong size or channel count either runs (a 1-channel model on 2 channels, any size
            # after global pooling) or fails deep inside a convolution.
            return outputs(tf.ensure_shape(images, [None, height, width, channels], name="check_images_shape"))

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
        archive.write_out(staged, verbose=False)
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


# --------------------------------------------------------------------------- TFLite


def _inference_endpoint(model, image_size=None):
    """A tf.function uint8 images -> {probabilities, class_id} whose variables Keras tracks.

    Going through `ExportArchive` matters: a plain tf.function over a Keras 3 model converts to
    a TFLite file without its weights (NaN outputs in TF 2.21).
    """
    import keras
    import tensorflow as tf

    height, width, channels = _image_geometry(model, image_size)

    def outputs(images):
        probabilities, class_id = _classify(model, images)
        return {"probabilities": probabilities, "class_id": class_id}

    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec([None, height, width, channels], tf.uint8, name="images")
    return archive, archive.add_endpoint(SERVING_DEFAULT, outputs, input_signature=[spec]), spec


def export_tflite(model, path: str, *, image_size=None) -> str:
    """Converts `model` to a TFLite flatbuffer taking uint8 images ``[N, H, W, C]``.

    The file's ``serving_default`` signature returns ``probabilities`` (float32) and
    ``class_id`` (int64), with only TFLite built-in ops, so any LiteRT runtime can run it.
    Class names are not embedded; ship ``class_names.json`` beside it.

    Args:
        model: a Keras classifier taking raw [0, 255] pixels.
        path: the ``.tflite`` file to write.
        image_size: (height, width), needed only for a model whose input size is not fixed.

    Returns:
        `path`.

    Raises:
        ValueError: for a model that does not take one 1- or 3-channel image input.
    """
    import tensorflow as tf

    archive, _, _ = _inference_endpoint(model, image_size)
    with tempfile.TemporaryDirectory() as tmp:
        # SavedModel -> converter is the conversion path TensorFlow documents for Keras 3.
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SERVING_DEFAULT])
        flatbuffer = converter.convert()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Through a sibling file: a failed or killed export never leaves half a model at `path`.
    fd, staged = tempfile.mkstemp(prefix=os.path.basename(path) + ".partial-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(flatbuffer)
        os.replace(staged, path)
    except BaseException:
        if os.path.exists(staged):
            os.remove(staged)
        raise
    return os.fspath(path)


def _tflite_interpreter(path: str):
    try:  # LiteRT is where the interpreter lives now; tf.lite.Interpreter is deprecated.
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return Interpreter(model_path=os.fspath(path))


def _run_tflite(path: str, images: np.ndarray) -> dict[str, np.ndarray]:
    runner = _tflite_interpreter(path).get_signature_runner(SERVING_DEFAULT)
    return runner(images=images)


# --------------------------------------------------------------------------- ONNX


def onnx_unavailable_reason() -> str | None:
    """Returns why ONNX export cannot run here, or None when ``tf2onnx`` and ``onnx`` import."""
    try:
        import onnx  # noqa: F401
        import tf2onnx  # noqa: F401
    # Against an unsupported TF/numpy/protobuf, tf2onnx fails at import in more ways than ImportError.
    except (ImportError, AttributeError, TypeError, ValueError, RuntimeError) as err:
        return (
            f"{type(err).__name__}: {err}. Install the optional packages with "
            "`pip install tf2onnx onnx onnxruntime` (tf2onnx 1.17.0 works with TensorFlow 2.21)."
        )
    return None


def export_onnx(model, path: str, *, image_size=None, opset: int | None = None) -> str:
    """Converts `model` to ONNX with tf2onnx; input ``images`` uint8 ``[N, H, W, C]``.

    Outputs ``probabilities`` (float32 ``[N, K]``) and ``class_id`` (int64 ``[N]``).

    Args:
        model: a Keras classifier taking raw [0, 255] pixels.
        path: the ``.onnx`` file to write.
        image_size: (height, width), needed only for a model whose input size is not fixed.
        opset: ONNX opset; tf2onnx's default when None.

    Returns:
        `path`.

    Raises:
        RuntimeError: ``"ONNX export unavailable: ..."`` when tf2onnx cannot be used here, or
            ``"ONNX export failed: ..."`` when the conversion itself fails.
    """
    reason = onnx_unavailable_reason()
    if reason:
        raise RuntimeError(f"ONNX export unavailable: {reason}")
    import tf2onnx

    _, endpoint, spec = _inference_endpoint(model, image_size)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        tf2onnx.convert.from_function(endpoint, input_signature=[spec], opset=opset, output_path=os.fspath(path))
    except Exception as err:
        raise RuntimeError(f"ONNX export failed: {type(err).__name__}: {err}") from err
    return os.fspath(path)


def _run_onnx(path: str, images: np.ndarray) -> dict[str, np.ndarray]:
    try:
        import onnxruntime
    except ImportError as err:
        raise RuntimeError(f"Checking an ONNX export needs onnxruntime: {err}") from err
    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(None, {session.get_inputs()[0].name: images})
    # tf2onnx names outputs after the signature's keys, sometimes with a ":0" suffix.
    return {name.split(":")[0]: value for name, value in zip(names, values)}


# --------------------------------------------------------------------------- checking


def _format_of(path: str) -> str:
    if os.path.isdir(path):
        return "saved_model"
    ext = os.path.splitext(path)[1].lower()
    formats = {".tflite": "tflite", ".onnx": "onnx"}
    if ext not in formats:
        raise ValueError(f"Cannot tell the export format of {path}: expected a SavedModel folder, .tflite or .onnx.")
    return formats[ext]


def verify_export(path: str, model, images=None, *, image_size=None, seed: int = 0) -> dict[str, Any]:
    """Runs an export and the Keras model on the same uint8 batch and compares them.

    Args:
        path: a SavedModel folder, ``.tflite`` or ``.onnx`` file written by this module.
        model: the Keras model it was exported from.
        images: uint8 ``[N, H, W, C]``; a seeded random batch of 8 when None.
        image_size: (height, width) of that batch, needed only for a model whose input size is not fixed.
        seed: seed of the random batch.

    Returns:
        ``{"format", "max_abs_diff", "class_id_agree", "n"}``: the largest absolute difference of
        the probabilities, and on how many of the `n` images the top classes agree.
    """
    import keras

    fmt = _format_of(os.fspath(path))
    if images is None:
        height, width, channels = _image_geometry(model, image_size)
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, (_VERIFY_BATCH, height, width, channels), dtype=np.uint8)
    # A direct call rather than model.predict: no tf.function per model to trace (and warn about).
    expected = np.asarray(keras.ops.convert_to_numpy(model(images, training=False)), dtype=np.float32)
    if fmt == "saved_model":
        got = load_exported(path).predict(images)
    elif fmt == "tflite":
        got = _run_tflite(path, images)
    else:
        got = _run_onnx(path, images)
    probabilities = np.asarray(got["probabilities"], dtype=np.float32)
    return {
        "format": fmt,
        "max_abs_diff": float(np.max(np.abs(probabilities - expected))),
        "class_id_agree": int(np.sum(np.asarray(got["class_id"]) == expected.argmax(-1))),
        "n": len(images),
    }


# --------------------------------------------------------------------------- run directories


def read_run(run_dir: str):
    """A finished run's ``(model, class_names, config)``: `model.keras` loaded with safe_mode on.

    Raises:
        FileNotFoundError: for a missing directory or a run without its files (listed).
        ValueError: for invalid JSON in the run's files.
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"Run directory {run_dir} does not exist.")
    missing = [name for name in _RUN_FILES if not os.path.isfile(os.path.join(run_dir, name))]
    if missing:
        raise FileNotFoundError(
            f"{run_dir} is not a complete training run: missing {', '.join(missing)} "
            f"(a run directory holds {', '.join(_RUN_FILES)})."
        )
    try:
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        with open(os.path.join(run_dir, "class_names.json"), encoding="utf-8") as f:
            class_names = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"Invalid JSON in {run_dir}: {err}") from err
    if not isinstance(config, dict):
        raise TypeError(f"{os.path.join(run_dir, 'config.json')} must hold a JSON object. Received {config!r}")
    if not isinstance(class_names, list):
        raise TypeError(
            f"{os.path.join(run_dir, 'class_names.json')} must hold a JSON list of strings. Received {class_names!r}"
        )

    import keras

    import tfresnet.models  # noqa: F401  (registers the custom layers safe_mode needs)

    # compile=False: serving needs neither the optimizer nor the loss, and the trainer's are
    # custom objects (e.g. its learning-rate schedule) that only `tfresnet.training` registers.
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"), safe_mode=True, compile=False)
    return model, class_names, config


def _require_tensorflow_backend() -> None:
    """Every format is written from a TensorFlow graph (SavedModel, TFLite, tf2onnx)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"tfresnet export needs TensorFlow: run it with KERAS_BACKEND=tensorflow (the backend "
            f"is {keras.backend.backend()!r}); a run trained on any backend exports there.")


def export_run(
    run_dir: str,
    format: str = "saved_model",
    out: str | None = None,
    *,
    verify: bool = True,
    verbose: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> str:
    """Exports a training run directory (``model.keras``, ``class_names.json``, ``config.json``).

    Args:
        run_dir: the run directory the trainer wrote.
        format: one of `FORMATS`.
        out: where to write; by default ``RUN_DIR/export/saved_model``, ``RUN_DIR/export/model.tflite``
            or ``RUN_DIR/export/model.onnx``.
        verify: run the export and the Keras model on a random uint8 batch and fail if the
            probabilities differ by more than `TOLERANCES[format]` or a top class differs.
        verbose: print where the export went and the check's result.
        max_pixels: the SavedModel's limit on images `serving_bytes` decodes (height x width).

    Returns:
        The path written.

    Raises:
        FileNotFoundError: if `run_dir` or one of its files is missing (the message names it).
        ValueError: for an unknown format or an invalid run directory.
        RuntimeError: if ONNX export is unavailable, or the check fails.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Received format={format!r}")
    _require_tensorflow_backend()
    if format == "onnx" and (reason := onnx_unavailable_reason()):
        raise RuntimeError(f"ONNX export unavailable: {reason}")  # before the slow model load
    run_dir = os.fspath(run_dir)
    model, class_names, config = read_run(run_dir)
    path = out or os.path.join(run_dir, "export", DEFAULT_PATHS[format])
    # The model's own input size rules; the config's is only needed for a size-agnostic model.
    image_size = config.get("image_size") if None in tuple(model.input_shape)[1:3] else None
    if format == "saved_model":
        export_saved_model(
            model, path, class_names, resize_mode=config.get("resize_mode") or "resize", image_size=image_size,
            max_pixels=max_pixels,
        )
    elif format == "tflite":
        export_tflite(model, path, image_size=image_size)
    else:
        export_onnx(model, path, image_size=image_size)
    if verbose:
        print(f"Wrote {format} export of {run_dir} to {path}")
    if verify:
        if format == "onnx" and _onnxruntime_missing():
            if verbose:
                print("Not checked: onnxruntime is not installed.")
            return path
        check = verify_export(path, model, image_size=image_size)
        ok = check["max_abs_diff"] <= TOLERANCES[format] and check["class_id_agree"] == check["n"]
        line = (
            f"max |p_{format} - p_keras| = {check['max_abs_diff']:.2e} on {check['n']} random uint8 images "
            f"(tolerance {TOLERANCES[format]:.0e}); top class agrees on {check['class_id_agree']}/{check['n']}"
        )
        if not ok:
            raise RuntimeError(f"Export check failed for {path}: {line}")
        if verbose:
            print(f"Checked: {line}")
    return path


def _onnxruntime_missing() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return True
    return False


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``tfresnet export`` arguments."""
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="training run directory (model.keras, class_names.json, config.json)")
    parser.add_argument("--format", choices=FORMATS, default="saved_model", help="export format (default: saved_model)")
    parser.add_argument("--out", default=None,
                        help="output path (default: RUN_DIR/export/saved_model, model.tflite or model.onnx)")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the comparison with the Keras model")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"largest image (height x width) the SavedModel's serving_bytes decodes "
                             f"(default: {DEFAULT_MAX_PIXELS:,})")


def run(args: argparse.Namespace) -> int:
    """Runs ``tfresnet export``; returns the exit status.

    A bad run directory or option raises (`tfresnet.cli.run_command` makes it one line and exit
    code 2); an export that fails or fails its check is one line and exit code 1.
    """
    try:
        export_run(args.run_dir, args.format, args.out, verify=args.verify,
                   max_pixels=getattr(args, "max_pixels", DEFAULT_MAX_PIXELS))
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
