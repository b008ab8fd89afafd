"""Exporting a training run directory: `export_run` and ``tfresnet export RUN_DIR``."""

from __future__ import annotations

import argparse
import sys

from tfresnet.export.formats import (
    DEFAULT_PATHS,
    FORMATS,
    QUANTIZATIONS,
    export_onnx,
    export_tflite,
    onnx_unavailable_reason,
    onnxruntime_missing,
)
from tfresnet.export.inputs import DEFAULT_MAX_PIXELS
from tfresnet.export.quantize import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_REPRESENTATIVE_IMAGES,
    QuantizeOptions,
    export_quantized,
    quantize_options,
)
from tfresnet.export.savedmodel import export_saved_model
from tfresnet.export.verify import check_export
from tfresnet.files import WriteError
from tfresnet.runs import RunDir

__all__ = ["add_arguments", "export_run", "run"]


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
    quantize: QuantizeOptions | str | None = None,
    weights: str | None = None,
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
        quantize: (TFLite) a `QuantizeOptions`, or a mode name with the default budget: the
            file (default ``RUN_DIR/export/model_MODE.tflite``) is then checked on the run's
            held-out images against ``min_agreement`` instead of `TOLERANCES`
            (`tfresnet.export.quantize`).
        weights: for a run trained with ``ema``, the set to export, ``"averaged"`` or ``"raw"``
            (`RunDir.load_model`); the set ``model.keras`` does not hold goes by default to
            ``RUN_DIR/export/SET/``. None: ``model.keras``' own.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: if `run_dir` or one of its files is missing (the message names it).
        ValueError: for an unknown format or an invalid run directory.
        RuntimeError: if ONNX export is unavailable, or the check fails.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Received format={format!r}")
    quantize = quantize_options(quantize)
    if quantize is not None and format != "tflite":
        raise ValueError(f"--quantize applies to --format tflite only. Received --format {format}")
    _require_tensorflow_backend()
    if format == "onnx" and (reason := onnx_unavailable_reason()):
        raise RuntimeError(f"ONNX export unavailable: {reason}")  # before the slow model load
    run = RunDir(run_dir).require_finished()
    config, class_names = run.config, run.class_names
    # compile=False: serving needs neither the optimizer nor the loss.
    model = run.load_model(weights=weights)
    other = () if weights in (None, config.ema_weights) else (weights,)  # not over the kept set's export
    path = out or run.file(RunDir.EXPORT, *other, quantize.file_name if quantize else DEFAULT_PATHS[format])
    # The model's own input size rules; the config's is only needed for a size-agnostic model.
    image_size = config.image_size if None in tuple(model.input_shape)[1:3] else None
    if format == "saved_model":
        export_saved_model(model, path, class_names, resize_mode=config.resize_mode, image_size=image_size,
                           max_pixels=max_pixels)
    elif quantize is not None:  # checked before it is written, against its own budget
        export_quantized(run, model, path, quantize, image_size=image_size, verify=verify, verbose=verbose)
        return path
    elif format == "tflite":
        export_tflite(model, path, image_size=image_size)
    else:
        export_onnx(model, path, image_size=image_size)
    if verbose:
        print(f"Wrote {format} export of {run.path} to {path}")
    if not verify:
        return path
    if format == "onnx" and onnxruntime_missing():
        if verbose:
            print("Not checked: onnxruntime is not installed.")
        return path
    line = check_export(path, model, image_size=image_size)
    if verbose:
        print(f"Checked: {line}")
    return path


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
    parser.add_argument("--weights", choices=("averaged", "raw"), default=None,
                        help="for a run trained with ema: the weights to export (default: the run's "
                             "ema_weights, those model.keras holds)")
    quantized = parser.add_argument_group("quantized TFLite (--format tflite)")
    quantized.add_argument("--quantize", choices=tuple(QUANTIZATIONS), default=None,
                           help="post-training quantization: " + "; ".join(
                               f"{q.name}: {q.summary}" for q in QUANTIZATIONS.values()))
    quantized.add_argument("--representative-images", type=int, default=None, metavar="N",
                           help="training images int8 calibrates on "
                                f"(default: {DEFAULT_REPRESENTATIVE_IMAGES})")
    quantized.add_argument("--min-agreement", type=float, default=None, metavar="SHARE",
                           help="fail, writing nothing, when the quantized file keeps the Keras model's top "
                                f"class on fewer of the held-out images (default: {DEFAULT_MIN_AGREEMENT})")
    quantized.add_argument("--uint8-io", action="store_true",
                           help="int8 only: a quantized uint8 input (raw pixels) and uint8 probabilities "
                                "(read through their scale): no float op left, for integer-only accelerators")


def _quantize_of(args: argparse.Namespace) -> QuantizeOptions | None:
    """The command line's quantization options; checked here, before the run is loaded."""
    given = {key: getattr(args, key, None) for key in ("representative_images", "min_agreement", "uint8_io")}
    given = {key: value for key, value in given.items() if value is not None and value is not False}
    if getattr(args, "quantize", None) is None:
        if given:
            raise ValueError(f"--{next(iter(given)).replace('_', '-')} applies to quantized exports only: "
                             "add --quantize int8|float16|dynamic (with --format tflite).")
        return None
    return QuantizeOptions(args.quantize, **given)


def run(args: argparse.Namespace) -> int:
    """Runs ``tfresnet export``; returns the exit status.

    A bad run directory or option raises (`tfresnet.cli.run_command` makes it one line and exit
    code 2); an export that fails, fails its check or cannot be written is one line and exit code 1.
    """
    try:
        export_run(args.run_dir, args.format, args.out, verify=args.verify,
                   max_pixels=getattr(args, "max_pixels", DEFAULT_MAX_PIXELS), quantize=_quantize_of(args),
                   weights=getattr(args, "weights", None))
    except (RuntimeError, WriteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
