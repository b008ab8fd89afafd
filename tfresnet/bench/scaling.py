"""How cost grows: batch size, dataset size, and what a second worker buys.

Four parts (`PARTS`), each a list of points saved to the results file as it finishes:

- ``batch``: training examples/s against batch size (`BATCH_SIZES`, 8 to 256) for resnet20 and
  resnet50, timed by the throughput suite's own steps (`tfresnet.bench.throughput`: the trainer's
  build and input path over synthetic images, warm-up excluded; `batch_point`). On a CPU, a batch
  whose activations would not fit in the memory available is skipped with the estimate;
- ``dataset``: seconds per epoch of the same model (resnet20) on the MNIST sample shipped in the
  package (6,000 training digits) and on full MNIST (60,000; ``mnist.npz`` in ``--data-dir``),
  fed as in-memory arrays on every backend, so the figure is the model's and not the input
  pipeline's (that is ``benchmarks/input_pipeline.py``). Epoch 1 includes tracing;
- ``tuning``: trials per hour of a tiny search (`TUNE_RECIPE`, ConvNet trials only) with
  ``tfresnet tune --workers 1`` and ``--workers 2`` (`tfresnet.tuning.distributed`'s local workers);
- ``training``: one process against ``tfresnet train --workers 2``
  (`tfresnet.training.multiworker`'s loopback workers), same recipe, data and global batch.

The last two start ``tfresnet`` processes and need TensorFlow (KerasTuner's trials read tf.data,
workers are tf.distribute): with another backend they are recorded as skipped, with the reason.

Resumable: a point already in the results file from the same machine (backend, device, cores)
and mode (smoke or not) is kept and not measured again; a point the process died in (killed,
out of memory) is recorded so and not retried. Delete the file to measure everything again.

    tfresnet bench --suite scaling --data-dir ../shared/data     # ~15 minutes on 2 CPU cores
    tfresnet bench --suite scaling --parts batch --models resnet20 --batch-sizes 8 64 256
    tfresnet bench --suite scaling --smoke                       # seconds: batch and dataset, tiny
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources

import keras
import numpy as np

from tfresnet.bench.common import accelerator, cpu_features, machine_info, read_result, write_result

__all__ = ["PARTS", "BATCH_SIZES", "cpu_features", "batch_point", "epoch_times", "run", "format_tables",
           "draw_figures"]

PARTS = ("batch", "dataset", "tuning", "training")
NEEDS_TENSORFLOW = {
    "tuning": "KerasTuner's trials train through tf.data, which needs TensorFlow",
    "training": "loopback workers are tf.distribute's MultiWorkerMirroredStrategy",
}
BATCH_MODELS = ("resnet20", "resnet50")
BATCH_SIZES = (8, 16, 32, 64, 128, 256)
# (warm-up, timed steps, rounds) on a CPU: resnet50 at batch 256 takes ~40 s a step
# on 2 cores, so one round of 2 timed steps; None lets the throughput suite size its rounds.
CPU_STEPS = {"resnet20": None, "resnet50": (2, 2, 1)}
DATASET_MODEL = "resnet20"
DATASET_EPOCHS = 2  # the first traces and compiles, the second is the steady cost
WORKER_COUNTS = (1, 2)
TUNE_RECIPE = os.path.join("recipes", "tune_mnist.py")
# ConvNet trials only, so that every trial costs about the same and a rate per hour means something.
TUNE_SETS = ("tune.model=null", "model=convnet", "export=false")
TUNE_TRIALS = 6  # 3 a worker with 2 workers
TRAIN_RECIPE = os.path.join("recipes", "mnist_fast.py")
TRAIN_SETS = ("epochs=1", "export=false", "verbose=0", "tensorboard=false")
COMMAND_TIMEOUT_S = 1800
# Smoke: two small batches of resnet20, a few hundred digits, no processes unless asked for.
# The smallest registry model stands in for both parts' models, so a smoke run traces in a second.
SMOKE = {"models": ("sigmoid_mlp_30x1",), "batch_sizes": (8, 32), "steps": (2, 1, 1), "dataset": (128, 512),
         "dataset_batch": 64, "dataset_model": "sigmoid_mlp_30x1", "parts": ("batch", "dataset")}
def _available_bytes() -> int | None:
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/meminfo") as f:
            line = next(line for line in f if line.startswith("MemAvailable:"))
        return int(line.split()[1]) * 1024
    return None


def _training_bytes(name: str, batch_size: int) -> int:
    """A floor on a training step's memory: every layer's float32 output kept for the backward
    pass, plus weights, gradients and Adam's two moments."""
    from tfresnet import create_model
    from tfresnet.bench.throughput import BENCH_MODELS

    spec = BENCH_MODELS[name]
    model = create_model(name, input_shape=spec.input_shape, num_classes=spec.num_classes)
    outputs = sum(int(np.prod(t.shape[1:])) for layer in model.layers for t in keras.tree.flatten(layer.output))
    params = model.count_params()
    del model
    keras.backend.clear_session()
    return 4 * (outputs * batch_size + 4 * params)


def _memory_reason(name: str, batch_size: int) -> str | None:
    from tfresnet.bench.throughput import BENCH_MODELS

    if accelerator() != "cpu" or name not in BENCH_MODELS:
        return None
    available = _available_bytes()
    if available is None:
        return None
    need = _training_bytes(name, batch_size)
    if need > 0.8 * available:  # a floor, not the whole of it: the rest is the margin
        return (f"needs at least {need / 2**30:.1f} GiB (activations kept for the backward pass); "
                f"{available / 2**30:.1f} GiB available")
    return None


def _smoke_spec():
    from tfresnet.bench.throughput import BenchModel

    return BenchModel((28, 28, 1), 10, {"cpu": 8, "gpu": 8}, None, "-")


def batch_point(name: str, batch_size: int, *, steps=None, overrides=None, spec=None) -> dict:
    """Examples/s of tfresnet's training step for one model at one batch.

    The throughput suite's tfresnet side, step for step (`tfresnet.bench.throughput`: the
    trainer's build and compile, its input path over synthetic images, warm-up excluded, the
    median of rounds); the plain-Keras side is that suite's business.

    Args:
        name: a registry model; `spec` describes its input (default `BENCH_MODELS[name]`).
        steps: (warm-up, timed steps, rounds) exactly; default the throughput suite's, with
            rounds of `ROUND_SECONDS`.
    """
    from tfresnet.bench import throughput
    from tfresnet.bench.common import alternate
    from tfresnet.training.config import TrainConfig, apply_overrides
    from tfresnet.training.session import precision_policy

    spec = spec or throughput.BENCH_MODELS[name]
    warmup, fewest, rounds = steps or throughput.STEPS[accelerator()]
    seconds = 0.0 if steps else throughput.ROUND_SECONDS[accelerator()]
    keras.utils.set_random_seed(0)
    config = apply_overrides(TrainConfig(model=name, batch_size=batch_size), list(overrides or []))
    with precision_policy(config):
        # The throughput suite's own steps (same package), so both suites time alike.
        model, fit = throughput._tfresnet_side(config, spec, batch_size)
        timed = throughput._steps_per_round(fit, warmup, fewest, seconds)
        rates = alternate({"tfresnet": lambda: throughput._rate(fit, timed, batch_size)}, rounds)["tfresnet"]
    params = int(model.count_params())
    del model
    keras.backend.clear_session()
    return {"input": "x".join(map(str, spec.input_shape)), "params": params, "examples_per_s": rates["median"],
            "rounds": rates["rounds"], "steps": {"warmup": warmup, "timed": timed, "rounds": rounds},
            "mixed_precision": config.mixed_precision}


def epoch_times(images: np.ndarray, labels: np.ndarray, *, model: str = DATASET_MODEL, batch_size: int,
                epochs: int = DATASET_EPOCHS, seed: int = 0) -> dict:
    """Trains a fresh `model` on in-memory arrays for `epochs`; returns each epoch's seconds.

    The trainer's own steps build and compile the model (`session.build_model`, `compile_model`)
    and its `EpochClock` times the epochs, after each epoch's last loss is fetched (asynchronous
    backends return before the work is done).
    """
    from tfresnet.training.callbacks import EpochClock
    from tfresnet.training.config import TrainConfig
    from tfresnet.training.session import build_model, compile_model

    config = TrainConfig(model=model, batch_size=batch_size, seed=seed)
    keras.utils.set_random_seed(seed)
    net = build_model(config, images.shape[1:], 10)
    steps = -(-len(images) // batch_size)
    compile_model(net, config, steps, epochs=epochs, peak=config.lr)
    clock, seconds = EpochClock(len(images)), []
    wait = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: float(logs["loss"]))
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seconds.append(
        clock.seconds - sum(seconds)))
    x = images.astype("float32")
    y = keras.utils.to_categorical(labels, 10)
    net.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[wait, clock, record])
    del net
    keras.backend.clear_session()
    later = seconds[1:] or seconds
    return {"model": model, "batch_size": batch_size, "train_examples": len(images), "epoch_seconds": seconds,
            "first_epoch_seconds": seconds[0], "steady_epoch_seconds": float(np.mean(later)),
            "steady_examples_per_s": len(images) / float(np.mean(later))}


def _mnist(data_dir: str | None, which: str) -> tuple[np.ndarray, np.ndarray]:
    if which == "mnist-sample":
        file = resources.files("tfresnet").joinpath("data", "mnist_sample.npz")
        with resources.as_file(file) as path, np.load(path) as f:
            return f["x_train"][..., None], f["y_train"]
    path = os.path.join(data_dir or "", "mnist.npz")
    if not data_dir or not os.path.isfile(path):
        raise FileNotFoundError(f"full MNIST needs mnist.npz in --data-dir (or $TFRESNET_DATA_DIR). "
                                f"Received data_dir={data_dir!r}")
    with np.load(path) as f:
        return f["x_train"][..., None], f["y_train"]


def _dataset_point(which: str, *, data_dir: str | None, smoke: bool) -> dict:
    from tfresnet.bench.throughput import BENCH_MODELS

    if smoke:  # the sample, cut to a few hundred digits: the machinery, not the figure
        images, labels = _mnist(None, "mnist-sample")
        size = SMOKE["dataset"][which == "mnist"]
        images, labels, batch_size = images[:size], labels[:size], SMOKE["dataset_batch"]
        model, which = SMOKE["dataset_model"], f"mnist-sample[:{size}]"
    else:
        images, labels = _mnist(data_dir, which)
        batch_size, model = BENCH_MODELS[DATASET_MODEL].batch_size[accelerator()], DATASET_MODEL
    return {"data": which, **epoch_times(images, labels, model=model, batch_size=batch_size)}


def _clean_env() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for name in ("TF_CONFIG", "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(name, None)
    return env


def _timed(command: list[str], log_path: str) -> float:
    """Runs `command` with its output in `log_path`; returns its wall seconds.

    Raises:
        RuntimeError: when it fails or runs past `COMMAND_TIMEOUT_S`, with its log's last lines.
    """
    started = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=_clean_env(),
                                  timeout=COMMAND_TIMEOUT_S, check=False)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    seconds = time.perf_counter() - started
    if code != 0:
        with open(log_path) as f:
            tail = "".join(f.readlines()[-8:]).strip()
        raise RuntimeError(f"`{' '.join(command[2:])}` ended with {code} after {seconds:.0f} s: {tail}")
    return seconds


def tune_command(workers: int, run_dir: str, *, smoke: bool) -> list[str]:
    """The ``tfresnet tune`` command of the tuning part."""
    sets = [*TUNE_SETS, *(["smoke=true"] if smoke else [])]
    return [sys.executable, "-m", "tfresnet", "tune", TUNE_RECIPE, "--max-trials", str(2 if smoke else TUNE_TRIALS),
            "--run-dir", run_dir, "--workers", str(workers), "--timeout", str(COMMAND_TIMEOUT_S - 60),
            *(f"--set={s}" for s in sets)]


def _tuning_point(workers: int, *, smoke: bool, **_) -> dict:
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="tfresnet-scaling-") as tmp:
        run_dir = os.path.join(tmp, "search")
        seconds = _timed(tune_command(workers, run_dir, smoke=smoke), os.path.join(tmp, "tune.log"))
        trials = pd.read_csv(os.path.join(run_dir, "results.csv"))
    completed = trials[trials["status"] == "COMPLETED"]
    return {"workers": workers, "trials": len(completed), "wall_seconds": seconds,
            "trials_per_hour": 3600 * len(completed) / seconds,
            "median_trial_seconds": float(completed["wall_seconds"].median()) if len(completed) else None}


def train_command(workers: int, run_dir: str, *, data_dir: str | None, smoke: bool) -> list[str]:
    """The ``tfresnet train`` command of the training part: one process, or N loopback workers."""
    full = not smoke and data_dir and os.path.isfile(os.path.join(data_dir, "mnist.npz"))
    data = ["data=mnist", f"data_dir={data_dir}"] if full else ["data=mnist-sample"]
    sets = [*TRAIN_SETS, *data, *(["smoke=true"] if smoke else [])]
    command = [sys.executable, "-m", "tfresnet", "train", TRAIN_RECIPE, "--run-dir", run_dir,
               *(f"--set={s}" for s in sets)]
    return command + (["--workers", str(workers)] if workers > 1 else [])


def _training_point(workers: int, *, data_dir: str | None, smoke: bool) -> dict:
    from tfresnet.runs import RunDir

    with tempfile.TemporaryDirectory(prefix="tfresnet-scaling-") as tmp:
        run_dir = os.path.join(tmp, "run")
        command = train_command(workers, run_dir, data_dir=data_dir, smoke=smoke)
        seconds = _timed(command, os.path.join(tmp, "train.log"))
        run = RunDir(run_dir)
        metrics, config = run.metrics or {}, run.config
    return {"workers": workers, "data": config.data, "batch_size": config.batch_size,
            "epochs": metrics.get("epochs_run"), "train_seconds": metrics.get("train_seconds"),
            "examples_per_s": metrics.get("examples_per_second"), "wall_seconds": seconds,
            "accuracy": metrics.get("accuracy"), "split": metrics.get("split")}


def _plan(parts, models, batch_sizes, smoke: bool, overrides) -> list[tuple[str, str, Callable[..., dict]]]:
    """(key, part, measure) for every point asked for, in the order they run."""
    from tfresnet.bench.throughput import BENCH_MODELS

    plan = []
    for name in models:
        steps = SMOKE["steps"] if smoke else (CPU_STEPS.get(name) if accelerator() == "cpu" else None)
        spec = None if name in BENCH_MODELS else _smoke_spec()
        for b in batch_sizes:
            plan.append((f"batch/{name}/{b}", "batch", lambda name=name, b=b, steps=steps, spec=spec, **_: {
                "model": name, "batch_size": b, **batch_point(name, b, steps=steps, overrides=overrides, spec=spec)}))
    for which in ("mnist-sample", "mnist"):
        plan.append((f"dataset/{which}", "dataset", lambda which=which, **o: _dataset_point(which, **o)))
    for part, measure in (("tuning", _tuning_point), ("training", _training_point)):
        for workers in WORKER_COUNTS:
            plan.append((f"{part}/{workers}", part,
                         lambda workers=workers, measure=measure, **o: measure(workers, **o)))
    return [entry for entry in plan if entry[1] in parts]


def _skip_reason(key: str, part: str, *, asked, smoke: bool, data_dir) -> str | None:
    if part in NEEDS_TENSORFLOW and keras.backend.backend() != "tensorflow":
        return f"{NEEDS_TENSORFLOW[part]} (KERAS_BACKEND={keras.backend.backend()!r})"
    if smoke and part not in SMOKE["parts"] and not asked:
        return f"--smoke leaves {part} out (it starts 2-3 TensorFlow processes, minutes); ask with --parts {part}"
    if part in NEEDS_TENSORFLOW and not os.path.isfile(TUNE_RECIPE if part == "tuning" else TRAIN_RECIPE):
        return f"no {TUNE_RECIPE if part == 'tuning' else TRAIN_RECIPE} here (run from the repository root)"
    if key == "dataset/mnist" and not smoke and not (data_dir and os.path.isfile(os.path.join(data_dir, "mnist.npz"))):
        return f"no mnist.npz in --data-dir (or $TFRESNET_DATA_DIR); received {data_dir!r}"
    if part == "batch":
        _, name, b = key.split("/")
        return _memory_reason(name, int(b))
    return None


def _same_machine(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in ("backend", "accelerator", "device", "cpus"))


def _previous(out_path: str | None, smoke: bool, log) -> dict[str, dict]:
    """The points a run on this machine and in this mode left in `out_path`; a point still
    ``running`` there is one its process died in."""
    if not out_path or not os.path.exists(out_path):
        return {}
    previous = read_result(out_path)
    if previous.get("benchmark") != "scaling" or previous.get("smoke") != smoke:
        return {}
    if not _same_machine(previous.get("machine", {}), machine_info()):
        log(f"note: {out_path} was measured on another machine or backend; measuring again")
        return {}
    points = {}
    for saved in previous.get("points", []):
        point = saved if saved["status"] != "running" else dict(
            saved, status="died", reason="the process ended while measuring it (killed, or out of memory); "
                                         "not tried again")
        if point["status"] in ("done", "died"):
            points[point["key"]] = point
    return points


def _measure(key: str, part: str, measure, options: dict, skip: str | None, save, log) -> dict:
    if skip:
        log(f"{key}: skipped: {skip}")
        return {"key": key, "part": part, "status": "skipped", "reason": skip}
    save({"key": key, "part": part, "status": "running"})  # marks a point a killed process dies in
    log(f"{key} ...")
    started = time.perf_counter()
    try:
        point = {"key": key, "part": part, "status": "done", **measure(**options)}
    except Exception as err:  # out of memory, a failed command: one point failing leaves the rest to run
        point = {"key": key, "part": part, "status": "failed", "reason": f"{type(err).__name__}: {err}"[-600:]}
    point["seconds"] = round(time.perf_counter() - started, 1)
    log(f"  {key}: {point['status']}" + (f" ({point['reason']})" if "reason" in point else ""))
    return point


def run(*, parts=None, models=None, batch_sizes=None, data_dir: str | None = None, overrides=None,
        smoke: bool = False, out_path: str | None = None, log: Callable[[str], None] = print) -> dict:
    """The scaling suite: every point of `parts`, each saved to `out_path` as it finishes.

    Args:
        parts: some of `PARTS`; default all (smoke: batch and dataset; a part named here runs
            in smoke mode too, tiny).
        models: for the batch part; default resnet20 and resnet50 (smoke: resnet20).
        batch_sizes: for the batch part; default `BATCH_SIZES` (smoke: 8 and 32).
        data_dir: the folder of full MNIST's ``mnist.npz`` (default $TFRESNET_DATA_DIR).
        overrides: ``key=value`` TrainConfig edits for the batch part's tfresnet side.
        out_path: the results file (JSON), read first to resume; None keeps nothing.

    Raises:
        ValueError: for an unknown part or model, or a batch size < 1.
    """
    from tfresnet.bench.throughput import BENCH_MODELS

    asked = set(parts or ())
    parts = list(parts or PARTS)
    models = list(models or (SMOKE["models"] if smoke else BATCH_MODELS))
    batch_sizes = list(batch_sizes or (SMOKE["batch_sizes"] if smoke else BATCH_SIZES))
    for name, values, known in (("part", parts, PARTS), ("model", models, [*BENCH_MODELS, *SMOKE["models"]])):
        if unknown := [v for v in values if v not in known]:
            raise ValueError(f"No scaling {name} {unknown}; choose from {', '.join(known)}.")
    if bad := [b for b in batch_sizes if b < 1]:
        raise ValueError(f"--batch-sizes must be >= 1. Received {bad}")
    data_dir = data_dir or os.environ.get("TFRESNET_DATA_DIR")
    done = _previous(out_path, smoke, log)
    result = {"smoke": smoke, "cpu": cpu_features(), "points": list(done.values()), "figures": []}

    def save(point=None):
        if point is not None:
            result["points"] = [p for p in result["points"] if p["key"] != point["key"]] + [point]
        if out_path:
            write_result(out_path, "scaling", result)

    for key, part, measure in _plan(parts, models, batch_sizes, smoke, overrides):
        if key in done:
            log(f"{key}: kept from {out_path} ({done[key]['status']})")
            continue
        skip = _skip_reason(key, part, asked=part in asked, smoke=smoke, data_dir=data_dir)
        save(_measure(key, part, measure, {"data_dir": data_dir, "smoke": smoke}, skip, save, log))
    from tfresnet.bench.scaling_report import draw_figures

    result["figures"] = draw_figures(result, os.path.dirname(out_path) if out_path else tempfile.mkdtemp())
    save()
    return result


def format_tables(result: dict) -> str:
    """The suite's Markdown tables (`tfresnet.bench.scaling_report`)."""
    from tfresnet.bench.scaling_report import format_tables as tables

    return tables(result)


def draw_figures(result: dict, folder: str) -> list[str]:
    """The suite's PNG figures in `folder` (`tfresnet.bench.scaling_report`); returns their paths."""
    from tfresnet.bench.scaling_report import draw_figures as draw

    return draw(result, folder)
