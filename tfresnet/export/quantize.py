"""Quantized TFLite exports of a run, checked against an accuracy budget before they are written.

    tfresnet export RUN_DIR --format tflite --quantize int8|float16|dynamic \\
        [--representative-images 100] [--min-agreement 0.95] [--uint8-io]

The representative images ``int8`` calibrates on are drawn from the run's own training split
(its dataset, folder, options and seed from ``config.json``, shuffled by the run's seed,
unaugmented), as serving gets them: uint8, at the model's input size, resized the way the run
was. The check runs the file and the Keras model on the run's held-out images (the test split,
else the validation split; never the representative ones): top-1 agreement and the accuracy of
each. Below `QuantizeOptions.min_agreement` the export fails and writes nothing; otherwise the
file and its report (``model_int8.json`` beside ``model_int8.tflite``: sizes, tensor types, the
check) are each written whole (`tfresnet.files.write_atomic`).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import tempfile
from typing import Any

import numpy as np

from tfresnet.export.formats import QUANTIZATIONS, convert_tflite, tflite_interpreter
from tfresnet.export.savedmodel import SERVING_DEFAULT
from tfresnet.export.verify import agreement, check_agreement
from tfresnet.files import write_atomic, write_json_atomic
from tfresnet.runs import RunDir

__all__ = ["DEFAULT_MIN_AGREEMENT", "DEFAULT_REPRESENTATIVE_IMAGES", "HELD_OUT_SPLITS", "QuantizeOptions",
           "export_quantized", "quantize_options", "run_images", "signature_io", "tensor_types"]

DEFAULT_REPRESENTATIVE_IMAGES = 100
# A quantized file that changes the top class of more than 1 image in 20 is a different model.
DEFAULT_MIN_AGREEMENT = 0.95
DEFAULT_CHECK_IMAGES = 1000  # held-out images compared at most (the first ones of the split)
# Where the check's images come from, in order of preference: images that chose nothing first.
HELD_OUT_SPLITS = ("test", "validation")


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    """How to quantize a run's TFLite export and how closely it must follow the Keras model.

    Attributes:
        mode: a key of `tfresnet.export.formats.QUANTIZATIONS` (``dynamic``, ``float16``, ``int8``).
        representative_images: training images ``int8`` calibrates on (>= 1).
        min_agreement: smallest top-1 agreement with the Keras model on held-out images, in [0, 1].
        uint8_io: uint8 outputs as well as inputs, for integer-only deployment (``int8`` only).
        check_images: held-out images the check compares at most (>= 1).

    Raises:
        ValueError: at construction, for a value out of range, naming it.
    """

    mode: str
    representative_images: int = DEFAULT_REPRESENTATIVE_IMAGES
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    uint8_io: bool = False
    check_images: int = DEFAULT_CHECK_IMAGES

    def __post_init__(self):
        if self.mode not in QUANTIZATIONS:
            raise ValueError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}. Received {self.mode!r}")
        for key in ("representative_images", "check_images"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be an integer >= 1. Received {value!r}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError("--min-agreement is a share of images, in [0, 1] (1 asks every top class to be "
                             f"kept). Received {self.min_agreement!r}")
        if self.uint8_io and not QUANTIZATIONS[self.mode].calibrated:
            raise ValueError(f"--uint8-io needs full-integer quantization (--quantize int8). Received "
                             f"--quantize {self.mode}")

    @property
    def file_name(self) -> str:
        """The default file name under ``RUN_DIR/export/``: ``model_int8.tflite``, ``model_int8_uint8io.tflite``..."""
        return f"model_{self.mode}{'_uint8io' if self.uint8_io else ''}.tflite"


def quantize_options(quantize) -> QuantizeOptions | None:
    """`quantize` as checked `QuantizeOptions`: None, a mode name, or options already."""
    if quantize is None or isinstance(quantize, QuantizeOptions):
        return quantize
    return QuantizeOptions(quantize)


def tensor_types(path: str) -> dict[str, int]:
    """How many tensors of each type (``int8``, ``float32``...) a ``.tflite`` file holds."""
    details = tflite_interpreter(path).get_tensor_details()
    return dict(collections.Counter(np.dtype(d["dtype"]).name for d in details))


def signature_io(path: str) -> dict[str, dict[str, Any]]:
    """The ``serving_default`` inputs and outputs of a ``.tflite`` file: type, and scale and
    zero point where quantized (a value is ``scale * (q - zero_point)``)."""
    runner = tflite_interpreter(path).get_signature_runner(SERVING_DEFAULT)
    io = {}
    for details in (runner.get_input_details(), runner.get_output_details()):
        for name, detail in details.items():
            scale, zero_point = detail["quantization"]
            io[name] = {"dtype": np.dtype(detail["dtype"]).name,
                        **({"scale": float(scale), "zero_point": int(zero_point)} if scale else {})}
    return io


def _bundle(run: RunDir, model, image_size):
    """The run's own dataset again: its splits, at the model's input size, unaugmented."""
    from tfresnet import data

    config = run.config
    size = tuple(model.input_shape[1:3])
    bundle = data.load(config.data, **{
        **config.split_args(), "image_size": size if None not in size else (image_size or config.image_size),
        "resize": config.resize_mode, "drop_empty_classes": config.drop_empty_classes, "batch_size": 32,
        "augment": None, "cache": None, "shuffle": True, "deterministic": True, "verbose": 0})
    if bundle.input_shape[-1] != model.input_shape[-1]:
        raise ValueError(f"The run's model takes {model.input_shape[-1]}-channel images; its data "
                         f"{config.data!r} gives {bundle.input_shape[-1]}-channel ones.")
    return bundle


def _take(dataset, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` examples of a batched split as serving gets them: uint8 images, int labels."""
    images, labels, count = [], [], 0
    for batch_images, batch_labels in dataset:
        ids = batch_labels.numpy()
        images.append(np.clip(np.round(batch_images.numpy()), 0, 255).astype(np.uint8))
        labels.append(ids.argmax(-1) if ids.ndim == 2 else ids)
        count += len(ids)
        if count >= limit:
            break
    return np.concatenate(images)[:limit], np.concatenate(labels)[:limit].astype(np.int64)


def run_images(run: RunDir, model, *, train: int = 0, held_out: int = 0, image_size=None) -> dict[str, Any]:
    """Images of a run's own data, uint8 at the model's size: some training ones, some held-out.

    Args:
        run: the run directory.
        model: its model (for the input size and channels).
        train: how many images of the (shuffled) training split; 0 for none.
        held_out: how many images of the first split of `HELD_OUT_SPLITS` the data has; 0 for none.
        image_size: (height, width), needed only for a model whose input size is not fixed.

    Returns:
        ``{"train": images}`` and ``{"held_out": (images, labels), "split": name}``, as asked.

    Raises:
        ValueError: when training images are asked of data without a training split, or held-out
            ones of data with neither a test nor a validation split.
    """
    bundle = _bundle(run, model, image_size)
    result: dict[str, Any] = {}
    if train:
        if bundle.train is None:
            raise ValueError(f"{run.path}'s data has no training split to draw representative images from.")
        result["train"] = _take(bundle.train, train)[0]
    if held_out:
        split = next((name for name in HELD_OUT_SPLITS if bundle.splits.get(name) is not None), None)
        if split is None:
            raise ValueError(f"{run.path}'s data has neither a test nor a validation split to check the "
                             "quantized export on (set data_args.test_split, or export with --no-verify).")
        result["held_out"], result["split"] = _take(bundle.splits[split], held_out), split
    return result


def export_quantized(run: RunDir, model, path: str, options: QuantizeOptions, *, image_size=None,
                     verify: bool = True, verbose: bool = True) -> dict[str, Any]:
    """Writes a quantized TFLite export of a run, and its report, once it passes the check.

    Args:
        run: the finished run directory.
        model: its model, loaded.
        path: the ``.tflite`` file to write; the report goes beside it (``.json``).
        options: the quantization and the budget.
        image_size: (height, width), needed only for a model whose input size is not fixed.
        verify: check the file on the run's held-out images against ``options.min_agreement``.
        verbose: print what was written and the check's line.

    Returns:
        The report written beside the file.

    Raises:
        RuntimeError: when the top-1 agreement is below ``options.min_agreement`` (nothing is
            written then; a previous file at `path` stays).
        tfresnet.files.WriteError: when the disk refuses the write.
    """
    mode = QUANTIZATIONS[options.mode]
    images = run_images(run, model, train=options.representative_images if mode.calibrated else 0,
                        held_out=options.check_images if verify else 0, image_size=image_size)
    flatbuffer = convert_tflite(model, image_size=image_size, quantize=mode.name, representative=images.get("train"),
                                uint8_io=options.uint8_io)
    report: dict[str, Any] = {
        "run_dir": run.path, "file": os.path.basename(path), "bytes": len(flatbuffer), "quantize": mode.name,
        "summary": mode.summary, "io": "uint8 in, uint8 out" if options.uint8_io else "uint8 in, float32 out",
        "representative_images": len(images["train"]) if mode.calibrated else 0,
        "representative_split": "train" if mode.calibrated else None, "min_agreement": options.min_agreement,
    }
    line = None
    with tempfile.TemporaryDirectory() as tmp:
        staged = os.path.join(tmp, "model.tflite")  # checked here; only a file that passes is written
        write_atomic(staged, flatbuffer)
        report["tensor_types"], report["signature"] = tensor_types(staged), signature_io(staged)
        if verify:
            (held_out, labels), split = images["held_out"], images["split"]
            check = agreement(staged, model, held_out, labels)
            report["check"] = {"split": split, **check}
            try:
                line = check_agreement(check, options.min_agreement, what=f"{split} images")
            except RuntimeError as err:
                raise RuntimeError(
                    f"Quantized export failed its check, nothing written to {path}: {err}. Calibrate on more "
                    "images (--representative-images), use --quantize float16 or dynamic, or lower "
                    "--min-agreement.") from None
    write_atomic(os.fspath(path), flatbuffer)
    write_json_atomic(os.path.splitext(os.fspath(path))[0] + ".json", report, indent=2)
    if verbose:
        print(f"Wrote tflite export ({mode.name}: {mode.summary}; {report['io']}) of {run.path} to {path}, "
              f"{len(flatbuffer) / 1e6:.2f} MB")
        print(f"Checked: {line}" if line else "Not checked (--no-verify).")
    return report
