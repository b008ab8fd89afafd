"""Quantized TFLite measured: the pets MobileNet as float32, float16, dynamic-range and int8 files.

Trains (or reuses) the `pets_transfer` recipe's MobileNetV2 0.35 on the shared three-breed pets
sample from the shared ImageNet weights, with the fixed 20% of the trainval list held out as test
(``data_args.test_split=0.2``, stratified, seed 0, as `benchmarks/transfer.py` does: those images
choose nothing). Then exports it with ``tfresnet.export.export_run`` in each of `MODES` and
reports, per file:

- its size;
- its accuracy on the held-out test images and its top-1 agreement with the Keras model there
  (the export's own check, `tfresnet.export.quantize`; int8 calibrates on 100 training images);
- its latency on one image through LiteRT's interpreter (``ai_edge_litert``, its signature
  runner), at each of `--threads`: the median and 90th percentile of `--rounds` x `--calls`
  calls, each on the next held-out image, the files taking turns round by round so that a busy
  spell of a shared CPU falls on all of them.

    nice -n 10 python benchmarks/quantize.py            # ~4 minutes on 2 shared CPU cores
    python benchmarks/quantize.py --run-dir runs/pets-mobilenet   # reuse a finished run

Prints a Markdown table and saves everything to the JSON (default benchmarks/results/quantize.json).
Times are wall-clock on whatever CPU runs it; nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfresnet.bench.common import markdown_table, write_result
from tfresnet.export import SERVING_DEFAULT, export_run, formats, quantize, verify
from tfresnet.runs import RunDir
from tfresnet.training import train
from tfresnet.training.cli import load_recipe
from tfresnet.training.config import apply_overrides

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared", "data")
DEFAULT_OUT = os.path.join(REPO, "benchmarks", "results", "quantize.json")
WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
# row name -> the export's QuantizeOptions arguments (None: the float32 file)
MODES = {
    "float32": None,
    "float16": {"mode": "float16"},
    "dynamic": {"mode": "dynamic"},
    "int8": {"mode": "int8"},
    "int8, uint8 IO": {"mode": "int8", "uint8_io": True},
}
WARMUP = 5


def _train(run_dir: str, weights_dir: str, data_dir: str) -> None:
    _, get_config = load_recipe("pets_transfer")
    config = apply_overrides(get_config(), [
        "model=mobilenetv2", 'model_args={"alpha": 0.35}', f"weights={os.path.join(weights_dir, WEIGHTS)}",
        f"data_dir={data_dir}", "data_args.test_split=0.2", "export=false", "tensorboard=false",
    ])
    train(config, run_dir, resume=os.path.isfile(os.path.join(run_dir, "config.json")), recipe="pets_transfer")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _latencies(paths: dict[str, str], images, threads: int, calls: int, rounds: int) -> dict[str, dict]:
    """Milliseconds per single-image call of each file, the files taking turns `rounds` times
    (so a busy spell of a shared CPU falls on all of them), each call on the next held-out image."""
    runners = {name: formats.tflite_interpreter(path, num_threads=threads).get_signature_runner(SERVING_DEFAULT)
               for name, path in paths.items()}
    times = {name: [] for name in paths}
    for runner in runners.values():
        for i in range(WARMUP):
            runner(images=images[i % len(images)][None])
    for _ in range(rounds):
        for name, runner in runners.items():
            for i in range(calls):
                image = images[i % len(images)][None]
                start = time.perf_counter()
                runner(images=image)
                times[name].append(1e3 * (time.perf_counter() - start))
    return {name: {"median_ms": statistics.median(values), "p90_ms": float(np.percentile(values, 90)),
                   "calls": len(values)} for name, values in times.items()}


def _export(run: RunDir, name: str, options, model, held_out, labels) -> dict:
    path = run.file(RunDir.EXPORT, "bench-" + name.replace(", ", "-").replace(" ", "_") + ".tflite")
    if options is None:  # the float32 file: checked within 1e-4 by export_run, then as the others
        export_run(run.path, "tflite", path, verbose=False)
        check = verify.agreement(path, model, held_out, labels)
        types = quantize.tensor_types(path)
    else:
        export_run(run.path, "tflite", path, verbose=False, quantize=quantize.QuantizeOptions(**options))
        with open(os.path.splitext(path)[0] + ".json") as f:
            report = json.load(f)
        check, types = report["check"], report["tensor_types"]
    return {"mode": name, "path": path, "bytes": os.path.getsize(path), "tensor_types": types,
            "test_images": check["n"], "keras_accuracy": check["keras_accuracy"],
            "accuracy": check["export_accuracy"], "top1_agreement": check["top1_agreement"],
            "max_abs_diff": check["max_abs_diff"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=os.path.join(REPO, "runs", "quantize-bench", "mobilenetv2-0.35"),
                        help="the pets run: trained here unless it is finished already")
    parser.add_argument("--weights-dir", default=os.path.join(SHARED, "imagenet_weights"))
    parser.add_argument("--data-dir", default=os.path.join(SHARED, "oxford_iiit_pet_sample"))
    parser.add_argument("--threads", default="1,2", help="LiteRT interpreter threads, comma-separated")
    parser.add_argument("--calls", type=int, default=20, help="timed single-image calls per file and round")
    parser.add_argument("--rounds", type=int, default=10, help="rounds in which the files take turns")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    run = RunDir(args.run_dir)
    if not run.is_finished():
        _train(run.path, args.weights_dir, args.data_dir)
    model = run.load_model()
    images = quantize.run_images(run, model, held_out=10_000)
    (held_out, labels), split = images["held_out"], images["split"]
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    for name, options in MODES.items():
        rows.append(row := _export(run, name, options, model, held_out, labels))
        print(f"{name}: {row['bytes'] / 1e6:.2f} MB, accuracy {row['accuracy']:.4f} on {row['test_images']} "
              f"{split} images, agreement {row['top1_agreement']:.4f}", flush=True)
    for count in threads:
        latency = _latencies({row["mode"]: row["path"] for row in rows}, held_out, count, args.calls, args.rounds)
        for row in rows:
            row[f"latency_{count}t"] = latency[row["mode"]]
    for row in rows:
        row["size_mb"] = row["bytes"] / 1e6
        row["size_vs_float32"] = row["bytes"] / rows[0]["bytes"]
        for count in threads:
            row[f"ms_{count}t"] = row[f"latency_{count}t"]["median_ms"]
    result = {"run_dir": run.path, "split": split, "metrics": run.metrics, "threads": threads,
              "cpu": _cpu_name(), "rows": rows}
    write_result(args.out, "quantize", result)
    columns = [("mode", "file"), ("size_mb", "MB"), ("size_vs_float32", "x float32"), ("accuracy", "test accuracy"),
               ("top1_agreement", "top-1 agreement"),
               *[(f"ms_{count}t", f"ms/image, {count} thread{'s' if count > 1 else ''}") for count in threads]]
    print(markdown_table(rows, columns))
    print(f"({rows[0]['test_images']} {split} images; Keras accuracy {rows[0]['keras_accuracy']:.4f}; "
          f"saved {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
