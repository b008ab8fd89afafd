"""The GPU check: throughput, the time-to-accuracy race, the input pipeline and a 2-GPU run, one JSON file.

Run (a machine with an NVIDIA GPU and TensorFlow or JAX; see benchmarks/README.md for the
lent GPU machines, which have JAX but no TensorFlow):

    KERAS_BACKEND=jax python scripts/gpu_check.py --data-dir DIR_WITH_MNIST_NPZ --out gpu_check.json
    python scripts/gpu_check.py --smoke --data-dir ../shared/data   # the same path on a CPU, ~1 min

It runs, within 8 minutes on one GPU (`BUDGET_S`: a part that would start later is skipped,
saying so; the JSON file is written after every part):

1. the throughput suite (`tfresnet.bench.throughput`) for resnet50 and mobilenetv2 with mixed
   precision (``mixed_bfloat16``) and XLA (``jit_compile=true``);
2. the time-to-accuracy race, the suite's baseline (`mnist_convnet`) against its contender
   (`mnist_fast`) on full MNIST (``mnist.npz``) to 99% and 99.5% test accuracy, each capped at
   `--max-seconds`: with TensorFlow, the suite itself (`tfresnet.bench.time_to_accuracy.run`);
   without, each recipe's model and optimiser fed NumPy arrays and probed the suite's way;
3. the input-pipeline benchmark through its command line (``benchmarks/input_pipeline.py --out
   FILE --batch-sizes 64``, ``--smoke`` with ours); it needs TensorFlow (tf.data and its traced train step), so
   with another backend a note says so instead;
4. where there are 2+ GPUs, resnet50's throughput again on all of them (TensorFlow:
   ``strategy=mirrored``; JAX: `keras.distribution.DataParallel`), else a note saying why not.

Nothing here was measured on a GPU yet: the machine this was written on has none.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

GPU_MODELS = ("resnet50", "mobilenetv2")
FAST_PATH = ("mixed_precision=mixed_bfloat16", "jit_compile=true")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE_TARGETS = (0.5,)
# Batch 64 only: both models, both augmentation paths, inside the budget (batch 32 is the CPU's).
PIPELINE_ARGS = ("--batch-sizes", "64")
BUDGET_S = 480.0  # the whole check: parts that would start later are skipped, saying so


def _load_mnist(data_dir: str, limit: int | None):
    import numpy as np

    path = os.path.join(data_dir, "mnist.npz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No mnist.npz in {data_dir!r}; pass --data-dir (the folder holding it).")
    with np.load(path) as f:
        arrays = [f["x_train"], f["y_train"], f["x_test"], f["y_test"]]
    if limit:
        arrays = [a[:limit] for a in arrays]
    x_train, y_train, x_test, y_test = arrays
    # The models take raw 0-255 pixels (their scaling is a layer inside them).
    return (x_train[..., None].astype("float32"), y_train.astype("int64"),
            x_test[..., None].astype("float32"), y_test.astype("int64"))


def _clock_recipe(recipe: str, arrays, *, smoke: bool, max_seconds: float) -> dict:
    """A recipe's model and optimiser on MNIST arrays, clocked by the suite's `AccuracyProbe`."""
    import keras
    import numpy as np

    from tfresnet.bench.time_to_accuracy import AccuracyProbe
    from tfresnet.training.cli import load_recipe
    from tfresnet.training.session import build_model, compile_model

    name, get_config = load_recipe(recipe)
    config = get_config()
    x, y, x_test, y_test = arrays
    epochs = 1 if smoke else config.epochs
    steps = int(np.ceil(len(x) / config.batch_size))
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, (28, 28, 1), 10)
    compile_model(model, config.__class__(**{**config.__dict__, "jit_compile": True}), steps,
                  epochs=epochs, peak=config.lr)
    targets = SMOKE_TARGETS if smoke else (0.99, 0.995)
    probe = AccuracyProbe(x_test, y_test, targets=targets, every=1024 if smoke else 10_000,
                          batch_size=config.batch_size, max_seconds=max_seconds)
    model.fit(x, keras.utils.to_categorical(y, 10), batch_size=config.batch_size, epochs=epochs, shuffle=True,
              callbacks=[probe], verbose=0)
    keras.backend.clear_session()
    return {"recipe": name, "model": config.model, "batch_size": config.batch_size, "epochs": epochs,
            "train_examples": len(x), "probes": probe.probes, "stopped_by": probe.stopped_by,
            "seconds_to": {str(t): r["seconds"] for t, r in probe.reached.items()}}


def time_to_accuracy(data_dir: str, *, smoke: bool, max_seconds: float) -> dict:
    """The time-to-accuracy race: the suite's baseline against its contender (`DEFAULT_RECIPES`).

    With TensorFlow as the backend, the suite itself (`tfresnet.bench.time_to_accuracy.run`:
    the trainer, tf.data). Otherwise each recipe's model and optimiser on MNIST arrays (no
    tf.data, so no TensorFlow), probed the suite's way; the recipes' validation split and
    augmentation are not applied there: every training digit trains.
    """
    import keras

    from tfresnet.bench import time_to_accuracy as suite

    if keras.backend.backend() == "tensorflow":
        result = suite.run(data_dir=data_dir, max_seconds=max_seconds, smoke=smoke)
        return {"method": "suite (tfresnet.bench.time_to_accuracy)", **result}
    print(f"time to accuracy: on NumPy arrays (the suite's trainer needs TensorFlow; backend "
          f"{keras.backend.backend()!r})", flush=True)
    arrays = _load_mnist(data_dir, 2048 if smoke else None)
    runs = [_clock_recipe(recipe, arrays, smoke=smoke, max_seconds=max_seconds) for recipe in suite.DEFAULT_RECIPES]
    baseline, contender = runs[0], runs[-1]
    speedups = {t: baseline["seconds_to"][t] / contender["seconds_to"][t]
                for t in contender["seconds_to"] if t in baseline["seconds_to"]}
    return {"method": "arrays", "runs": runs, "speedups": speedups}


def input_pipeline(*, smoke: bool, out_dir: str) -> dict:
    """The input-pipeline benchmark through its command line (``benchmarks/input_pipeline.py
    --out FILE [--smoke]``, or the ``input-pipeline`` suite of `tfresnet bench` where there is one),
    run in this process; the JSON it wrote, or why it did not run."""
    import json
    import runpy

    import keras

    from tfresnet.bench.cli import SUITES

    if keras.backend.backend() != "tensorflow":
        return {"skipped": f"the input-pipeline benchmark runs tf.data and TensorFlow's traced train step: it needs "
                           f"KERAS_BACKEND=tensorflow (backend {keras.backend.backend()!r})"}

    out = os.path.join(out_dir, "input_pipeline.json")
    script = os.path.join(REPO, "benchmarks", "input_pipeline.py")
    if "input-pipeline" in SUITES:
        from tfresnet.bench.cli import main as bench

        code = bench(["--suite", "input-pipeline", "--out-dir", out_dir, *(["--smoke"] if smoke else [])])
        out = os.path.join(out_dir, SUITES["input-pipeline"][1])
    else:
        argv, sys.argv = sys.argv, [script, "--out", out, *(["--smoke"] if smoke else PIPELINE_ARGS)]
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        except Exception as err:  # another benchmark's failure is reported, and the check goes on
            return {"failed": f"{type(err).__name__}: {err}"}
        finally:
            sys.argv = argv
    if code not in (0, None) or not os.path.isfile(out):
        return {"failed": f"exit code {code}, {'no ' if not os.path.isfile(out) else ''}{out}"}
    with open(out) as f:
        return json.load(f)


def _gpus() -> int:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return sum(d.platform == "gpu" for d in jax.devices())
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    return 0


def data_parallel(gpus: int, *, smoke: bool) -> dict:
    """resnet50's throughput on every GPU, or why it was not run."""
    import keras

    from tfresnet.bench import throughput

    if gpus < 2:
        return {"skipped": f"{gpus} GPU(s) here; the data-parallel run needs 2 or more"}
    overrides = list(FAST_PATH)
    if keras.backend.backend() == "tensorflow":
        overrides.append("strategy=mirrored")
        return throughput.run(models=["resnet50"], overrides=overrides, smoke=smoke)
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    try:
        return throughput.run(models=["resnet50"], overrides=overrides, smoke=smoke)
    finally:
        keras.distribution.set_distribution(None)


def _parts(args, gpus: int, out_dir: str) -> list[tuple[str, object]]:
    """(name, thunk) of each part of the check, in the order they run."""
    from tfresnet.bench import throughput

    # Smoke: the throughput suite's own smoke (resnet20 in float32: bfloat16 convolutions are
    # slow or missing on CPUs).
    return [
        ("throughput", lambda: throughput.run(models=None if args.smoke else list(GPU_MODELS),
                                              overrides=[] if args.smoke else list(FAST_PATH), smoke=args.smoke)),
        ("time_to_accuracy", lambda: time_to_accuracy(args.data_dir, smoke=args.smoke,
                                                      max_seconds=args.max_seconds)),
        ("input_pipeline", lambda: input_pipeline(smoke=args.smoke, out_dir=out_dir)),
        ("data_parallel", lambda: data_parallel(gpus, smoke=args.smoke)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TFRESNET_DATA_DIR", "../shared/data"),
                        help="folder with mnist.npz (default $TFRESNET_DATA_DIR, else ../shared/data)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "gpu_check.json"))
    parser.add_argument("--smoke", action="store_true",
                        help="seconds on a CPU: tiny throughput, 2,048 digits, one epoch")
    parser.add_argument("--max-seconds", type=float, default=90.0,
                        help="cap on each time-to-accuracy recipe's training (default 90)")
    parser.add_argument("--budget-seconds", type=float, default=BUDGET_S,
                        help=f"a part that would start after this is skipped (default {BUDGET_S:.0f})")
    args = parser.parse_args(argv)

    import keras

    from tfresnet.bench.common import accelerator, write_result

    started = time.perf_counter()
    kind = accelerator()
    if kind != "gpu" and not args.smoke:
        print(f"error: no GPU found by {keras.backend.backend()} (accelerator: {kind}); use --smoke "
              f"to try the check on a CPU.", file=sys.stderr)
        return 2
    gpus = _gpus()
    result = {"backend": keras.backend.backend(), "gpus": gpus, "smoke": args.smoke,
              "tensorflow_importable": _tensorflow_importable(), "part_seconds": {}}
    print(f"backend {result['backend']}, {gpus} GPU(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as out_dir:
        for name, part in _parts(args, gpus, out_dir):
            elapsed = time.perf_counter() - started
            if elapsed > args.budget_seconds:
                result[name] = {"skipped": f"{elapsed:.0f} s spent of the {args.budget_seconds:.0f} s budget"}
            else:
                print(f"== {name}", flush=True)
                result[name] = part()
                result["part_seconds"][name] = round(time.perf_counter() - started - elapsed, 1)
            for reason in (result[name].get(k) for k in ("skipped", "failed")):
                if reason:
                    print(f"{name}: {reason}", flush=True)
            write_result(args.out, "gpu_check", result)  # what ran so far survives a later crash
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_result(args.out, "gpu_check", result)
    print(f"wrote {args.out} ({result['wall_seconds']} s)")
    return 0


def _tensorflow_importable() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(main())
