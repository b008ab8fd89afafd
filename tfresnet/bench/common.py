"""What every benchmark shares: the machine's description, its measured peak, step timing, output.

Benchmarks report ratios measured side by side in one run (tfresnet against plain Keras, one
recipe against another, a signature against `predict`), because the machines they run on are
shared and noisy: an absolute figure from one run says little about the next, a ratio of two
figures taken in alternation says much more.

Only Keras is imported here, so the model-side benchmarks also run with ``KERAS_BACKEND=jax`` on
machines without TensorFlow.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np

from tfresnet.files import write_json_atomic

__all__ = [
    "StepTimer",
    "CPU_FLAGS",
    "accelerator",
    "alternate",
    "block_until_ready",
    "cpu_features",
    "peak_dtypes",
    "machine_info",
    "markdown_table",
    "measure_peak_flops",
    "training_flops_per_example",
    "write_result",
]

# Square matmul sides for the peak: large enough to reach a device's dense rate, small enough
# to take well under a second per product (2 n^3 FLOPs: 17 GFLOP on a CPU, 1.1 TFLOP on a GPU).
_PEAK_SIDE = {"cpu": 2048, "gpu": 8192}


def accelerator() -> str:
    """``"gpu"`` when the Keras backend sees a GPU, else ``"cpu"``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if backend == "jax":
        import jax

        return "gpu" if any(d.platform == "gpu" for d in jax.devices()) else "cpu"
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    return "cpu"


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_features() -> dict:
    """The CPU's model, cores and the matrix-relevant instruction sets (``lscpu``'s flags).

    Reads ``lscpu`` where it exists, else ``/proc/cpuinfo``; flags it cannot read are None.
    """
    fields = {}
    if shutil.which("lscpu"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = fields.get("Flags")
    if flags is None:
        with contextlib.suppress(OSError):
            with open("/proc/cpuinfo") as f:
                lines = [line for line in f if line.startswith(("flags", "model name"))]
            flags = next((line.split(":", 1)[1] for line in lines if line.startswith("flags")), None)
            fields.setdefault("Model name", next((line.split(":", 1)[1].strip() for line in lines
                                                  if line.startswith("model name")), None))
    present = set(flags.split()) if flags is not None else None
    cores = None
    with contextlib.suppress(KeyError, ValueError):
        cores = int(fields["Core(s) per socket"]) * int(fields["Socket(s)"])
    return {
        "model": fields.get("Model name"),
        "physical_cores": cores,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "flags": {flag: None if present is None else flag in present for flag in CPU_FLAGS},
        "amx": None if present is None else any(f.startswith("amx") for f in present),
    }


def peak_dtypes() -> tuple[str, ...]:
    """The precisions whose dense matmul peak a benchmark measures here: float32 everywhere, plus
    bfloat16 and float16 on GPUs, and bfloat16 on CPUs with bf16 matrix hardware (AVX-512 BF16 or
    AMX), where ``mixed_bfloat16`` is worth comparing with its own ceiling rather than float32's."""
    if accelerator() == "gpu":
        return ("float32", "bfloat16", "float16")
    flags = cpu_features()["flags"]
    return ("float32", "bfloat16") if flags["avx512_bf16"] or flags["amx_bf16"] else ("float32",)


def _device_name() -> str:
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return str(jax.devices()[0].device_kind)
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    except Exception:  # a description is nice to have, never worth failing a benchmark for
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Where the figures were measured: backend, device, cores and library versions."""
    info = {
        "backend": keras.backend.backend(),
        "accelerator": accelerator(),
        "device": _device_name(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    if hasattr(os, "getloadavg"):  # how busy the cores were when the figures were written (POSIX only)
        info["load_average"] = [round(load, 2) for load in os.getloadavg()]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    elif keras.backend.backend() == "jax":
        import jax

        info["jax"] = jax.__version__
    return info


def block_until_ready(x) -> None:
    """Waits until the device has computed `x` (a tensor of rank 2 or more)."""
    # Asynchronous backends (JAX, TF on GPUs) return before the device has finished; fetching
    # one element waits for the whole product without copying it to the host. Cast first: numpy
    # has no bfloat16.
    keras.ops.convert_to_numpy(keras.ops.cast(x[0, 0], "float32"))


def measure_peak_flops(dtype: str = "float32", *, side: int | None = None, repeats: int = 5) -> dict:
    """The machine's dense matmul rate: FLOP/s of ``(n, n) @ (n, n)`` in `dtype`, best of `repeats`.

    This is the ceiling a network's training step is compared against: the same arithmetic
    in the shape a device does best. The best (not the mean) of a few products, each timed
    after a warm-up, because interference from other processes only ever slows it down.

    Args:
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        side: matrix side; default 2048 on CPUs, 8192 on GPUs.
        repeats: timed products.

    Returns:
        ``{"dtype", "side", "seconds", "flops_per_s"}``.
    """
    side = side or _PEAK_SIDE[accelerator()]
    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.standard_normal((side, side), dtype=np.float32), dtype=dtype)
    b = keras.ops.convert_to_tensor(rng.standard_normal((side, side), dtype=np.float32), dtype=dtype)
    block_until_ready(keras.ops.matmul(a, b))  # warm-up: kernel selection, allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block_until_ready(keras.ops.matmul(a, b))
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"dtype": dtype, "side": side, "seconds": best, "flops_per_s": 2 * side**3 / best}


def training_flops_per_example(macs: int) -> float:
    """FLOPs of one training step per example: forward 2 FLOPs per multiply-add, backward twice
    the forward (gradients with respect to activations and to weights), so 3x forward."""
    return 3 * 2 * macs


class StepTimer(keras.callbacks.Callback):
    """Times training steps inside `fit`, skipping the first `warmup` (tracing, compilation).

    Waits for each step's loss before reading the clock, so the time is that of finished work
    on asynchronous backends too.

    Attributes:
        seconds: wall time from the end of step `warmup` to the end of the last step.
        steps: the steps that time covers.
    """

    def __init__(self, warmup: int = 1):
        super().__init__()
        self.warmup = warmup
        self._start = None
        self.seconds = 0.0
        self.steps = 0

    def on_train_begin(self, logs=None):
        self._start = self._first_batch = None
        self._calls, self.seconds, self.steps = 0, 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            float(logs["loss"])
        now = time.perf_counter()
        self._calls += 1
        # With steps_per_execution=k, Keras calls this once per k steps with the last step's
        # index, so steps are counted from the indices rather than from the calls.
        if self._calls == self.warmup:
            self._start, self._first_batch = now, batch
        elif self._calls > self.warmup:
            self.seconds = now - self._start
            self.steps = batch - self._first_batch


def alternate(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, dict]:
    """Calls each of `runs` (name -> a function returning a rate) in turn, `rounds` times.

    Taking turns spreads the noise of a shared machine over every contender alike; the median
    of each one's rounds is its figure.

    Returns:
        name -> ``{"median": float, "rounds": [float, ...]}``.
    """
    results = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            results[name].append(run())
    return {name: {"median": statistics.median(values), "rounds": values}
            for name, values in results.items()}


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e4:
            return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of `rows`; `columns` are ``(key, header)`` pairs, missing keys print ``-``."""
    header = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "|" + "|".join(" --- " for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(row.get(k)) for k, _ in columns) + " |" for row in rows]
    return "\n".join([header, rule, *body])


def write_result(path: str, benchmark: str, result: dict) -> dict:
    """Writes `result` as JSON with the benchmark's name, the time and the machine; returns it."""
    document = {
        "benchmark": benchmark,
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        **result,
    }
    write_json_atomic(path, document, indent=2, default=_jsonable)  # a reader never sees half a file
    return document


def read_result(path: str) -> dict:
    """A JSON file `write_result` wrote.

    Raises:
        ValueError: naming the file when it is not one.
    """
    with open(path) as f:
        try:
            document = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not a benchmark result (JSON): {error}") from None
    if not isinstance(document, dict) or "benchmark" not in document:
        raise ValueError(f"{path} is not a benchmark result: it has no 'benchmark' key.")
    return document


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
