"""Export a trained classifier for serving: SavedModel, TFLite and ONNX.

Every export takes **raw uint8 pixels** ``[N, H, W, C]`` and returns float32 ``probabilities``
``[N, K]`` and the top ``class_id`` ``[N]``: the input scaling is the model's own
`tfresnet.models.layers.Preprocess` layer, so a client never re-implements it. (A model trained
with ``output="sigmoid"`` gives each class its own unit's probability; those need not sum to 1.)

One module per job, the imports flowing one way:

- `inputs`: the input geometry, the class-name checks and `decode_images`;
- `savedmodel`: `export_saved_model` (signatures ``serving_default`` for uint8 images and
  ``serving_bytes`` for encoded files) and `ExportedClassifier` / `load_exported`;
- `formats`: `export_tflite` and `export_onnx`, and the table of formats;
- `verify`: `verify_export`, an export against its Keras model on one batch, and
  `agreement`, a quantized one against its accuracy budget;
- `quantize`: `export_quantized`, a run's int8 / float16 / dynamic TFLite export, calibrated on
  its training images and checked on its held-out ones before it is written;
- `cli`: `export_run` and ``tfresnet export RUN_DIR``, reading the run through `tfresnet.runs.RunDir`.

Every export is written beside its destination and renamed into place (`tfresnet.files`), with
the permissions the umask gives any new file, so a failed or killed export never leaves a
half-written one where the previous export was.
"""

from __future__ import annotations

import os  # noqa: F401  (tests patch `tfresnet.export.os.replace`)

from tfresnet.export.cli import add_arguments, export_run, run
from tfresnet.export.formats import (
    DEFAULT_PATHS,
    FORMATS,
    QUANTIZATIONS,
    export_onnx,
    export_tflite,
    onnx_unavailable_reason,
)
from tfresnet.export.formats import tflite_interpreter as _tflite_interpreter  # noqa: F401
from tfresnet.export.inputs import DEFAULT_MAX_PIXELS, RESIZE_MODES, decode_images
from tfresnet.export.quantize import QuantizeOptions, export_quantized
from tfresnet.export.savedmodel import (
    CLASS_NAMES_ASSET,
    SERVING_BYTES,
    SERVING_DEFAULT,
    ExportedClassifier,
    export_saved_model,
    load_exported,
)
from tfresnet.export.verify import TOLERANCES, verify_export
from tfresnet.files import replacing_dir as _replacing  # noqa: F401  (the name tests/test_export.py uses)

__all__ = [
    "CLASS_NAMES_ASSET",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PATHS",
    "FORMATS",
    "QUANTIZATIONS",
    "RESIZE_MODES",
    "SERVING_BYTES",
    "SERVING_DEFAULT",
    "TOLERANCES",
    "ExportedClassifier",
    "QuantizeOptions",
    "add_arguments",
    "decode_images",
    "export_onnx",
    "export_quantized",
    "export_run",
    "export_saved_model",
    "export_tflite",
    "load_exported",
    "onnx_unavailable_reason",
    "run",
    "verify_export",
]
