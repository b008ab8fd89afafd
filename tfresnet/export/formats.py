"""The single-file exports, TFLite and ONNX, and the table of every export format.

Both take uint8 images ``[N, H, W, C]`` and return ``probabilities`` (float32) and ``class_id``
(int64), without the SavedModel's class names. TFLite conversion uses `tf.lite.TFLiteConverter`
(still in TensorFlow 2.21) and runs the result with LiteRT's interpreter (``ai-edge-litert``)
when it is installed, falling back to the deprecated `tf.lite.Interpreter`. ONNX needs the
optional ``tf2onnx`` and ``onnx`` packages (and ``onnxruntime`` to check the result); without
them `export_onnx` says why it is unavailable. Each file is written through
`tfresnet.files.write_atomic`: whole or not at all, with the umask's permissions.

`convert_tflite` also quantizes after training (`QUANTIZATIONS`, TensorFlow's post-training
quantization): ``dynamic`` and ``float16`` store the weights in 8 or 16 bits, ``int8`` computes
in 8-bit integers, calibrated on representative images (float only at the uint8 input's cast and
the probabilities, or nowhere with ``uint8_io``); `run_tflite` quantizes its
uint8 input and dequantizes 8-bit outputs by each tensor's scale and zero point, so every
``.tflite`` export reads the same way. `tfresnet.export.quantize` checks such a file against an
accuracy budget before it is written.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Callable

import numpy as np

from tfresnet.export.inputs import image_geometry
from tfresnet.export.savedmodel import SERVING_DEFAULT, classify
from tfresnet.files import WriteError, write_atomic

__all__ = ["DEFAULT_PATHS", "FORMATS", "QUANTIZATIONS", "Quantization", "convert_tflite", "export_onnx",
           "export_tflite", "onnx_unavailable_reason", "onnxruntime_missing", "run_onnx", "run_tflite",
           "tflite_interpreter"]

# format -> default location under RUN_DIR/export/
DEFAULT_PATHS = {"saved_model": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
FORMATS = tuple(DEFAULT_PATHS)


def _inference_endpoint(model, image_size=None, input_dtype: str = "uint8"):
    """A tf.function uint8 images -> {probabilities, class_id} whose variables Keras tracks.

    Going through `ExportArchive` matters: a plain tf.function over a Keras 3 model converts to
    a TFLite file without its weights (NaN outputs in TF 2.21). `input_dtype` ``"float32"``
    (pixel values still in [0, 255]) is for the converter alone: it then quantizes the input
    itself, as uint8 with the calibrated scale, so no float op is left.
    """
    import keras
    import tensorflow as tf

    height, width, channels = image_geometry(model, image_size)

    def outputs(images):
        probabilities, class_id = classify(model, images)
        return {"probabilities": probabilities, "class_id": class_id}

    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec([None, height, width, channels], tf.as_dtype(input_dtype), name="images")
    return archive, archive.add_endpoint(SERVING_DEFAULT, outputs, input_signature=[spec]), spec


# --------------------------------------------------------------------------- TFLite


@dataclasses.dataclass(frozen=True)
class Quantization:
    """One ``--quantize`` choice: what the file stores and how it sets up the converter.

    Attributes:
        name: the choice, a key of `QUANTIZATIONS`.
        summary: what the file holds, for the help text and the export's report.
        calibrated: whether it needs representative images (to fix the activations' ranges).
        configure: ``configure(converter, tf)`` sets the options of a `tf.lite.TFLiteConverter`.
    """

    name: str
    summary: str
    calibrated: bool
    configure: Callable


def _dynamic(converter, tf) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _float16(converter, tf) -> None:
    _dynamic(converter, tf)
    converter.target_spec.supported_types = [tf.float16]


def _int8(converter, tf) -> None:
    _dynamic(converter, tf)
    # Built-in int8 kernels only: an op that has none fails the conversion rather than
    # staying float unnoticed, so the file runs on integer-only accelerators.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


# The post-training quantizations of TensorFlow's guide, one row each (`--quantize`).
QUANTIZATIONS = {q.name: q for q in (
    Quantization("dynamic", "weights int8, activations float (quantized on the fly)", False, _dynamic),
    Quantization("float16", "weights float16, computed in float32", False, _float16),
    Quantization("int8", "weights and activations int8, calibrated on representative images", True, _int8),
)}


def _quantization(quantize: str | None, representative, uint8_io: bool) -> Quantization | None:
    """The `QUANTIZATIONS` row for `quantize`, its other arguments checked against it."""
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be None or one of {tuple(QUANTIZATIONS)}. Received quantize={quantize!r}")
    mode = QUANTIZATIONS.get(quantize)
    calibrated = mode is not None and mode.calibrated
    if uint8_io and not calibrated:
        raise ValueError(f"uint8 inputs and outputs need full-integer quantization (quantize='int8'). "
                         f"Received quantize={quantize!r}")
    if calibrated and (representative is None or len(representative) == 0):
        raise ValueError("quantize='int8' needs representative images (uint8 [N, H, W, C], N >= 1) to "
                         "calibrate the activations' ranges.")
    return mode


def convert_tflite(model, *, image_size=None, quantize: str | None = None, representative=None,
                   uint8_io: bool = False) -> bytes:
    """The TFLite flatbuffer of `model` (see `export_tflite`), quantized or not.

    Args:
        model: a Keras classifier taking raw [0, 255] pixels.
        image_size: (height, width), needed only for a model whose input size is not fixed.
        quantize: None for float32, else a key of `QUANTIZATIONS`.
        representative: uint8 images ``[N, H, W, C]`` at the model's size, as serving gets them;
            ``int8`` calibrates on them, one at a time.
        uint8_io: (``int8`` only) the input is quantized uint8 and ``probabilities`` are uint8
            too, each read through its scale and zero point, so that no float op is left (for
            integer-only accelerators). The input's scale is 1 and zero point 0 (raw pixels)
            when the representative images span 0 to 255, as photos and digits do.

    Raises:
        ValueError: for an unknown `quantize`, `uint8_io` without ``int8``, or ``int8`` without
            representative images.
    """
    import tensorflow as tf

    mode = _quantization(quantize, representative, uint8_io)
    input_dtype = "float32" if uint8_io else "uint8"
    archive, _, _ = _inference_endpoint(model, image_size, input_dtype)
    with tempfile.TemporaryDirectory() as tmp:
        # SavedModel -> converter is the conversion path TensorFlow documents for Keras 3.
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SERVING_DEFAULT])
        if mode is not None:
            mode.configure(converter, tf)
        if mode is not None and mode.calibrated:
            images = np.asarray(representative, dtype=np.uint8).astype(input_dtype)
            converter.representative_dataset = lambda: ({"images": image[None]} for image in images)
        if uint8_io:
            converter.inference_input_type = converter.inference_output_type = tf.uint8
        with warnings.catch_warnings():  # the calibration runs TensorFlow's own (deprecated) interpreter
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            return converter.convert()


def export_tflite(model, path: str, *, image_size=None, quantize: str | None = None, representative=None,
                  uint8_io: bool = False) -> str:
    """Converts `model` to a TFLite flatbuffer taking uint8 images ``[N, H, W, C]``.

    The file's ``serving_default`` signature returns ``probabilities`` (float32; uint8 with
    `uint8_io`) and ``class_id`` (int64), with only TFLite built-in ops, so any LiteRT runtime
    can run it. Class names are not embedded; ship ``class_names.json`` beside it. Quantized
    files are not checked here: `tfresnet.export.quantize` holds them to an accuracy budget.

    Args:
        model: a Keras classifier taking raw [0, 255] pixels.
        path: the ``.tflite`` file to write.
        image_size: (height, width), needed only for a model whose input size is not fixed.
        quantize: None for float32, else a key of `QUANTIZATIONS` (see `convert_tflite`).
        representative: uint8 calibration images for ``quantize="int8"``.
        uint8_io: uint8 outputs as well as inputs (``quantize="int8"`` only).

    Returns:
        `path`.

    Raises:
        ValueError: for a model that does not take one 1- or 3-channel image input, or
            quantization arguments that do not fit (see `convert_tflite`).
        tfresnet.files.WriteError: when the disk refuses the write (a previous file stays).
    """
    flatbuffer = convert_tflite(model, image_size=image_size, quantize=quantize, representative=representative,
                                uint8_io=uint8_io)
    write_atomic(os.fspath(path), flatbuffer)
    return os.fspath(path)


def tflite_interpreter(path: str, *, num_threads: int | None = None):
    """A TFLite interpreter for `path`: LiteRT's, else TensorFlow's (deprecated).

    Args:
        path: the ``.tflite`` file.
        num_threads: the interpreter's threads; None for the runtime's default.
    """
    try:  # LiteRT is where the interpreter lives now; tf.lite.Interpreter is deprecated.
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return Interpreter(model_path=os.fspath(path), num_threads=num_threads)


def _scale_of(details) -> tuple[float, int] | None:
    """(scale, zero point) of a quantized 8-bit tensor; None for a float or plain integer one."""
    scale, zero_point = details.get("quantization", (0.0, 0))
    if details["dtype"] in (np.uint8, np.int8) and scale:
        return float(scale), int(zero_point)
    return None


def _quantize_input(images: np.ndarray, details) -> np.ndarray:
    # An input quantized with (scale 1, zero point 0) is raw pixels; any other maps them.
    params = _scale_of(details)
    if params is None or params == (1.0, 0):
        return images
    scale, zero_point = params
    info = np.iinfo(details["dtype"])
    return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(details["dtype"])


def run_tflite(path: str, images: np.ndarray) -> dict[str, np.ndarray]:
    """Runs a ``.tflite`` export's ``serving_default`` on a uint8 batch; returns its outputs by name.

    Quantized 8-bit outputs (``probabilities`` of a uint8-IO int8 file) come back dequantized to
    float32, so every export's ``probabilities`` read the same.
    """
    runner = tflite_interpreter(path).get_signature_runner(SERVING_DEFAULT)
    images = _quantize_input(np.asarray(images), runner.get_input_details()["images"])
    outputs = runner(images=images)
    details = runner.get_output_details()
    result = {}
    for name, value in outputs.items():
        params = _scale_of(details[name])
        result[name] = value if params is None else ((value.astype(np.float32) - params[1]) * params[0])
    return result


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
