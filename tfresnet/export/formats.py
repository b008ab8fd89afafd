"""The single-file exports, TFLite and ONNX, and the table of every export format.

Both take uint8 images ``[N, H, W, C]`` and return ``probabilities`` (float32) and ``class_id``
(int64), without the SavedModel's class names. TFLite conversion uses `tf.lite.TFLiteConverter`
(still in TensorFlow 2.21) and runs the result with LiteRT's interpreter (``ai-edge-litert``)
when it is installed, falling back to the deprecated `tf.lite.Interpreter`. ONNX needs the
optional ``tf2onnx`` and ``onnx`` packages (and ``onnxruntime`` to check the result); without
them `export_onnx` says why it is unavailable. Each file is written through
`tfresnet.files.write_atomic`: whole or not at all, with the umask's permissions.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np

from tfresnet.export.inputs import image_geometry
from tfresnet.export.savedmodel import SERVING_DEFAULT, classify
from tfresnet.files import WriteError, write_atomic

__all__ = ["DEFAULT_PATHS", "FORMATS", "export_onnx", "export_tflite", "onnx_unavailable_reason",
           "onnxruntime_missing", "run_onnx", "run_tflite", "tflite_interpreter"]

# format -> default location under RUN_DIR/export/
DEFAULT_PATHS = {"saved_model": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
FORMATS = tuple(DEFAULT_PATHS)


def _inference_endpoint(model, image_size=None):
    """A tf.function uint8 images -> {probabilities, class_id} whose variables Keras tracks.

    Going through `ExportArchive` matters: a plain tf.function over a Keras 3 model converts to
    a TFLite file without its weights (NaN outputs in TF 2.21).
    """
    import keras
    import tensorflow as tf

    height, width, channels = image_geometry(model, image_size)

    def outputs(images):
        probabilities, class_id = classify(model, images)
        return {"probabilities": probabilities, "class_id": class_id}

    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec([None, height, width, channels], tf.uint8, name="images")
    return archive, archive.add_endpoint(SERVING_DEFAULT, outputs, input_signature=[spec]), spec


# --------------------------------------------------------------------------- TFLite


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
        tfresnet.files.WriteError: when the disk refuses the write (a previous file stays).
    """
    import tensorflow as tf

    archive, _, _ = _inference_endpoint(model, image_size)
    with tempfile.TemporaryDirectory() as tmp:
        # SavedModel -> converter is the conversion path TensorFlow documents for Keras 3.
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SERVING_DEFAULT])
        flatbuffer = converter.convert()
    write_atomic(os.fspath(path), flatbuffer)
    return os.fspath(path)


def tflite_interpreter(path: str):
    """A TFLite interpreter for `path`: LiteRT's, else TensorFlow's (deprecated)."""
    try:  # LiteRT is where the interpreter lives now; tf.lite.Interpreter is deprecated.
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return Interpreter(model_path=os.fspath(path))


def run_tflite(path: str, images: np.ndarray) -> dict[str, np.ndarray]:
    """Runs a ``.tflite`` export's ``serving_default`` on a uint8 batch; returns its outputs by name."""
    runner = tflite_interpreter(path).get_signature_runner(SERVING_DEFAULT)
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


def onnxruntime_missing() -> bool:
    """True when ``onnxruntime`` does not import, so an ONNX export cannot be verified here."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return True
    return False


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
        tfresnet.files.WriteError: when the disk refuses the write (a previous file stays).
    """
    reason = onnx_unavailable_reason()
    if reason:
        raise RuntimeError(f"ONNX export unavailable: {reason}")
    import tf2onnx

    _, endpoint, spec = _inference_endpoint(model, image_size)

    def convert(partial):
        tf2onnx.convert.from_function(endpoint, input_signature=[spec], opset=opset, output_path=partial)

    try:
        write_atomic(os.fspath(path), convert)
    except WriteError:
        raise
    except Exception as err:
        raise RuntimeError(f"ONNX export failed: {type(err).__name__}: {err}") from err
    return os.fspath(path)


def run_onnx(path: str, images: np.ndarray) -> dict[str, np.ndarray]:
    """Runs an ``.onnx`` export on a uint8 batch with onnxruntime; returns its outputs by name."""
    try:
        import onnxruntime
    except ImportError as err:
        raise RuntimeError(f"Checking an ONNX export needs onnxruntime: {err}") from err
    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(None, {session.get_inputs()[0].name: images})
    # tf2onnx names outputs after the signature's keys, sometimes with a ":0" suffix.
    return {name.split(":")[0]: value for name, value in zip(names, values)}
