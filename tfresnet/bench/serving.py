"""Serving throughput: the exported SavedModel's signature against Keras `predict`.

For each model, a SavedModel is written with `tfresnet.export.export_saved_model` (random
weights: speed does not depend on them) and loaded back with `tf.saved_model.load`, as a
server would. Then, at each batch size, in alternating rounds of about `seconds` each:

- ``signature``: ``serving_default(images=uint8 batch)`` of the loaded SavedModel (input
  scaling, the network, the class-name lookup);
- ``predict``: ``model.predict(batch)`` of the Keras model, what notebooks and scripts call;
- ``predict_on_batch``: ``model.predict_on_batch(batch)``, Keras' call for one ready batch.

Figures are images/second (median of the rounds) and the median latency of one call.
Needs TensorFlow (SavedModels are TensorFlow's format).
"""

from __future__ import annotations

import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import keras
import numpy as np

from tfresnet.bench.common import alternate, markdown_table

__all__ = ["SERVING_MODELS", "bench_serving", "run", "format_tables"]

# model name -> input shape: the MNIST demo model and the transfer-learning default.
SERVING_MODELS = {"resnet20": (28, 28, 1), "mobilenetv2": (224, 224, 3)}
DEFAULT_BATCH_SIZES = (1, 64)


def _timed_calls(call: Callable[[], None], seconds: float, min_calls: int = 3) -> tuple[float, list[float]]:
    """Calls `call` for about `seconds` (at least `min_calls` times); returns (total s, latencies)."""
    latencies = []
    start = time.perf_counter()
    while len(latencies) < min_calls or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    return sum(latencies), latencies


def _time_batch(model, signature, images, *, seconds: float, rounds: int) -> dict:
    """One row: each way of classifying `images` timed in alternating rounds."""
    import tensorflow as tf

    batch_size = len(images)
    as_float, tensor = images.astype("float32"), tf.constant(images)
    calls = {
        "signature": lambda: signature(images=tensor)["probabilities"].numpy(),  # noqa: PLW0108 (calls anew)
        "predict": lambda: model.predict(as_float, batch_size=batch_size, verbose=0),
        "predict_on_batch": lambda: model.predict_on_batch(as_float),
    }
    for call in calls.values():  # tracing and first-call allocation
        call()
    latencies = {way: [] for way in calls}

    def rate(way):
        total, lat = _timed_calls(calls[way], seconds)
        latencies[way].extend(lat)
        return batch_size * len(lat) / total

    result = alternate({way: functools.partial(rate, way) for way in calls}, rounds)
    row = {"batch_size": batch_size}
    for way in calls:
        row[f"{way}_images_per_s"] = result[way]["median"]
        row[f"{way}_latency_ms"] = 1000 * statistics.median(latencies[way])
    row["signature_vs_predict"] = row["signature_images_per_s"] / row["predict_images_per_s"]
    row["signature_vs_predict_on_batch"] = row["signature_images_per_s"] / row["predict_on_batch_images_per_s"]
    return row


def bench_serving(name: str, input_shape, *, batch_sizes=DEFAULT_BATCH_SIZES, seconds: float = 1.0,
                  rounds: int = 3, num_classes: int = 10) -> list[dict]:
    """Times the three ways of classifying a batch for one registry model; one row per batch size."""
    import tensorflow as tf

    from tfresnet.export import SERVING_DEFAULT, export_saved_model
    from tfresnet.models.registry import create_model

    keras.utils.set_random_seed(0)
    model = create_model(name, input_shape=tuple(input_shape), num_classes=num_classes, preprocessing="auto")
    class_names = [f"class_{i}" for i in range(num_classes)]
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        export_dir = export_saved_model(model, os.path.join(tmp, "saved_model"), class_names)
        signature = tf.saved_model.load(export_dir).signatures[SERVING_DEFAULT]
        for batch_size in batch_sizes:
            images = rng.integers(0, 256, size=(batch_size, *input_shape), dtype=np.uint8)
            row = _time_batch(model, signature, images, seconds=seconds, rounds=rounds)
            rows.append({"model": name, "input": "x".join(map(str, input_shape)), **row})
    keras.backend.clear_session()
    return rows


def run(*, models=None, batch_sizes=DEFAULT_BATCH_SIZES, seconds: float = 1.0, rounds: int = 3,
        smoke: bool = False, log: Callable[[str], None] = print) -> dict:
    """The serving suite; `smoke` times ResNet-20 alone for a fraction of a second per way."""
    if smoke:
        models, seconds, rounds = models or ["resnet20"], 0.2, 1
    models = models or list(SERVING_MODELS)
    unknown = [m for m in models if m not in SERVING_MODELS]
    if unknown:
        raise ValueError(f"No serving benchmark model {unknown}; choose from {', '.join(SERVING_MODELS)}.")
    rows = []
    for name in models:
        log(f"exporting and timing {name} ...")
        for row in bench_serving(name, SERVING_MODELS[name], batch_sizes=batch_sizes, seconds=seconds,
                                 rounds=rounds):
            log(f"  batch {row['batch_size']}: signature {row['signature_images_per_s']:,.0f} images/s, "
                f"predict {row['predict_images_per_s']:,.0f} images/s")
            rows.append(row)
    return {"seconds_per_round": seconds, "rounds": rounds, "smoke": smoke, "rows": rows}


def format_tables(result: dict) -> str:
    """The suite's Markdown table."""
    table = markdown_table(result["rows"], [
        ("model", "model"), ("input", "input"), ("batch_size", "batch"),
        ("signature_images_per_s", "SavedModel signature img/s"), ("predict_images_per_s", "predict img/s"),
        ("predict_on_batch_images_per_s", "predict_on_batch img/s"),
        ("signature_vs_predict", "signature / predict"),
        ("signature_latency_ms", "signature ms/call"), ("predict_latency_ms", "predict ms/call"),
    ])
    return f"### Serving (images/s, median of alternating rounds)\n\n{table}"
