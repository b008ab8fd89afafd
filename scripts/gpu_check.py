"""The GPU check: throughput, time to accuracy and a 2-GPU data-parallel run, one JSON file.

Run (a machine with an NVIDIA GPU and TensorFlow or JAX; see benchmarks/README.md for the
lent GPU machines, which have JAX but no TensorFlow):

    KERAS_BACKEND=jax python scripts/gpu_check.py --data-dir DIR_WITH_MNIST_NPZ --out gpu_check.json
    python scripts/gpu_check.py --smoke --data-dir ../shared/data   # the same path on a CPU, ~1 min

It runs, within about 8 minutes on one GPU:

1. the throughput suite (`tfresnet.bench.throughput`) for resnet50 and mobilenetv2 with mixed
   precision (``mixed_bfloat16``) and XLA (``jit_compile=true``);
2. time to accuracy: `mnist_fast`'s model and settings on full MNIST (``mnist.npz``), fed as NumPy
   arrays (so it needs no tf.data, and no TensorFlow), probed every 10,000 examples until 99% and
   99.5% test accuracy or `--max-seconds`;
3. where there are 2+ GPUs, resnet50's throughput again on all of them (TensorFlow:
   ``strategy=mirrored``; JAX: `keras.distribution.DataParallel`), else a note saying why not.

Nothing here was measured on a GPU yet: the machine this was written on has none.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

GPU_MODELS = ("resnet50", "mobilenetv2")
FAST_PATH = ("mixed_precision=mixed_bfloat16", "jit_compile=true")


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


def time_to_accuracy(data_dir: str, *, smoke: bool, max_seconds: float) -> dict:
    """`mnist_fast`'s model and optimiser on MNIST arrays, clocked to 99% and 99.5%."""
    import keras
    import numpy as np

    from tfresnet.bench.time_to_accuracy import AccuracyProbe
    from tfresnet.training.cli import load_recipe
    from tfresnet.training.session import build_model, compile_model

    recipe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes", "mnist_fast.py")
    _, get_config = load_recipe(recipe)
    config = get_config()
    x, y, x_test, y_test = _load_mnist(data_dir, 2048 if smoke else None)
    epochs = 1 if smoke else config.epochs
    steps = int(np.ceil(len(x) / config.batch_size))
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, (28, 28, 1), 10)
    compile_model(model, config.__class__(**{**config.__dict__, "jit_compile": True}), steps,
                  epochs=epochs, peak=config.lr)
    targets = (0.5,) if smoke else (0.99, 0.995)
    probe = AccuracyProbe(x_test, y_test, targets=targets, every=1024 if smoke else 10_000,
                          batch_size=config.batch_size, max_seconds=max_seconds)
    labels = keras.utils.to_categorical(y, 10)
    model.fit(x, labels, batch_size=config.batch_size, epochs=epochs, shuffle=True,
              callbacks=[probe], verbose=0)
    return {"model": config.model, "batch_size": config.batch_size, "epochs": epochs,
            "train_examples": len(x), "probes": probe.probes, "stopped_by": probe.stopped_by,
            "seconds_to": {str(t): r["seconds"] for t, r in probe.reached.items()}}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TFRESNET_DATA_DIR", "../shared/data"),
                        help="folder with mnist.npz (default $TFRESNET_DATA_DIR, else ../shared/data)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "gpu_check.json"))
    parser.add_argument("--smoke", action="store_true",
                        help="seconds on a CPU: tiny throughput, 2,048 digits, one epoch")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="cap on the time-to-accuracy training (default 120)")
    args = parser.parse_args(argv)

    import keras

    from tfresnet.bench import throughput
    from tfresnet.bench.common import accelerator, write_result

    started = time.perf_counter()
    kind = accelerator()
    if kind != "gpu" and not args.smoke:
        print(f"error: no GPU found by {keras.backend.backend()} (accelerator: {kind}); use --smoke "
              f"to try the check on a CPU.", file=sys.stderr)
        return 2
    gpus = _gpus()
    result = {"backend": keras.backend.backend(), "gpus": gpus, "smoke": args.smoke,
              "tensorflow_importable": _tensorflow_importable()}
    print(f"backend {result['backend']}, {gpus} GPU(s)", flush=True)
    # Smoke: resnet20 alone in float32 (bfloat16 convolutions are slow or missing on CPUs).
    result["throughput"] = throughput.run(
        models=None if args.smoke else list(GPU_MODELS),
        overrides=[] if args.smoke else list(FAST_PATH), smoke=args.smoke)
    result["time_to_accuracy"] = time_to_accuracy(args.data_dir, smoke=args.smoke,
                                                  max_seconds=args.max_seconds)
    print(f"time to accuracy: {result['time_to_accuracy']['seconds_to']}", flush=True)
    result["data_parallel"] = data_parallel(gpus, smoke=args.smoke)
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
