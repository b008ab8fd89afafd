"""Checking an export: it and the Keras model it came from on the same uint8 batch.

A float export is held to `TOLERANCES` on random images (`check_export`). A quantized one
cannot be: int8 moves probabilities by a few hundredths. `check_agreement` holds it instead to
an accuracy budget on real held-out images: the share of images whose top class it keeps
(top-1 agreement with the Keras model), with the accuracy of each beside it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tfresnet.export.formats import DEFAULT_PATHS, run_onnx, run_tflite
from tfresnet.export.inputs import image_geometry
from tfresnet.export.savedmodel import load_exported

__all__ = ["TOLERANCES", "agreement", "check_agreement", "check_export", "format_of", "verify_export"]

# Largest acceptable max |p_export - p_keras| per format when `export_run` checks its output.
# The SavedModel runs the same TF kernels as Keras; TFLite and ONNX Runtime use their own
# kernels (different summation order in convolutions), hence the looser bound.
TOLERANCES = {"saved_model": 1e-5, "tflite": 1e-4, "onnx": 1e-4}
_VERIFY_BATCH = 8
_AGREEMENT_BATCH = 32  # images per call when comparing on a whole held-out split
# file extension -> format, for the single-file formats of DEFAULT_PATHS
_EXTENSIONS = {os.path.splitext(name)[1]: fmt for fmt, name in DEFAULT_PATHS.items() if os.path.splitext(name)[1]}
_RUNNERS = {"saved_model": lambda path, images: load_exported(path).predict(images),
            "tflite": run_tflite, "onnx": run_onnx}


def format_of(path: str) -> str:
    """The export format of `path`: ``"saved_model"`` for a folder, else from the file extension."""
    if os.path.isdir(path):
        return "saved_model"
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise ValueError(f"Cannot tell the export format of {path}: expected a SavedModel folder, .tflite or .onnx.")
    return _EXTENSIONS[ext]


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

    fmt = format_of(os.fspath(path))
    if images is None:
        height, width, channels = image_geometry(model, image_size)
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, (_VERIFY_BATCH, height, width, channels), dtype=np.uint8)
    # A direct call rather than model.predict: no tf.function per model to trace (and warn about).
    expected = np.asarray(keras.ops.convert_to_numpy(model(images, training=False)), dtype=np.float32)
    got = _RUNNERS[fmt](path, images)
    probabilities = np.asarray(got["probabilities"], dtype=np.float32)
    return {
        "format": fmt,
        "max_abs_diff": float(np.max(np.abs(probabilities - expected))),
        "class_id_agree": int(np.sum(np.asarray(got["class_id"]) == expected.argmax(-1))),
        "n": len(images),
    }


def check_export(path: str, model, *, image_size=None) -> str:
    """`verify_export` on a random batch, held to `TOLERANCES`; returns the result as one line.

    Raises:
        RuntimeError: when the probabilities differ by more than the format's tolerance or a
            top class differs, the line saying by how much.
    """
    check = verify_export(path, model, image_size=image_size)
    fmt = check["format"]
    ok = check["max_abs_diff"] <= TOLERANCES[fmt] and check["class_id_agree"] == check["n"]
    line = (
        f"max |p_{fmt} - p_keras| = {check['max_abs_diff']:.2e} on {check['n']} random uint8 images "
        f"(tolerance {TOLERANCES[fmt]:.0e}); top class agrees on {check['class_id_agree']}/{check['n']}"
    )
    if not ok:
        raise RuntimeError(f"Export check failed for {path}: {line}")
    return line


def agreement(path: str, model, images: np.ndarray, labels=None) -> dict[str, Any]:
    """Top-1 agreement of an export with its Keras model on `images`, and each one's accuracy.

    Args:
        path: an export written by this package (quantized or not).
        model: the Keras model it was exported from.
        images: uint8 ``[N, H, W, C]``, ideally held-out images the export never saw.
        labels: the true class ids of `images`, for the accuracies; None to skip them.

    Returns:
        ``{"format", "n", "top1_agreement", "max_abs_diff"}``, and with `labels`
        ``"keras_accuracy"``, ``"export_accuracy"`` and ``"accuracy_drop"`` (Keras minus export).
    """
    import keras

    fmt = format_of(os.fspath(path))
    expected, got = [], []
    for start in range(0, len(images), _AGREEMENT_BATCH):
        batch = images[start:start + _AGREEMENT_BATCH]
        expected.append(np.asarray(keras.ops.convert_to_numpy(model(batch, training=False)), np.float32))
        got.append(np.asarray(_RUNNERS[fmt](path, batch)["probabilities"], np.float32))
    expected, got = np.concatenate(expected), np.concatenate(got)
    result = {"format": fmt, "n": len(images),
              "top1_agreement": float(np.mean(expected.argmax(-1) == got.argmax(-1))),
              "max_abs_diff": float(np.max(np.abs(got - expected)))}
    if labels is not None:
        labels = np.asarray(labels)
        keras_accuracy = float(np.mean(expected.argmax(-1) == labels))
        export_accuracy = float(np.mean(got.argmax(-1) == labels))
        result.update(keras_accuracy=keras_accuracy, export_accuracy=export_accuracy,
                      accuracy_drop=keras_accuracy - export_accuracy)
    return result


def check_agreement(check: dict[str, Any], min_agreement: float, *, what: str = "held-out images") -> str:
    """Holds an `agreement` result to `min_agreement`; returns it as one line.

    Args:
        check: what `agreement` returned.
        min_agreement: the smallest acceptable top-1 agreement, in [0, 1].
        what: the images it was measured on, for the line (e.g. ``"test images"``).

    Raises:
        RuntimeError: when the agreement is below `min_agreement`, the line saying by how much.
    """
    line = (f"top-1 agreement with the Keras model {check['top1_agreement']:.4f} on {check['n']:,} {what} "
            f"(min {min_agreement:g})")
    if "keras_accuracy" in check:
        line += (f"; accuracy {check['keras_accuracy']:.4f} (Keras) -> {check['export_accuracy']:.4f} "
                 f"(drop {check['accuracy_drop']:+.4f})")
    if check["top1_agreement"] < min_agreement:
        raise RuntimeError(line)
    return line
