"""Where a training step's time goes: TensorFlow profiler traces, summed per op type and per layer.

`profile_steps` traces a few already-warm training steps with ``tf.profiler.experimental`` (the
trace TensorBoard's Profile tab and ``keras.callbacks.TensorBoard(profile_batch=...)`` show),
then reads the trace's XSpace file and adds up the time of every TensorFlow op the executor ran,
two ways:

- by **op type** (``_MklNativeConv2DBackpropFilter``, ``Mul``, ...);
- by the **kind of layer** the op belongs to (``Conv2D``, ``BatchNormalization``, ...), read
  from the op's name scope, which holds the layer's name in the forward and the backward pass
  (``functional/conv1_bn/moments/mean``, ``gradient_tape/functional/conv1_bn/...``); the
  optimizer's updates under its own name; the rest as ``other``.

The times are op wall times on the executor's threads: ops that run side by side on two
inter-op threads both count, so the sum can exceed the traced wall time. Shares of the sum say
what limits a step: `MATRIX_OPS` (convolutions and matmuls) are the work a dense matmul peak
measures; everything else runs at memory speed.

The XSpace protobuf schema is TensorFlow's own, read through `tfresnet.tf_compat`.
"""

from __future__ import annotations

import glob
import os
import re
import time
from collections import Counter
from collections.abc import Callable

__all__ = ["MATRIX_OPS", "profile_steps", "summarise_trace", "layer_kind", "format_profile"]

# Op types doing dense matrix work (oneDNN's `_MklNative…`/`_Fused…` kernels included).
MATRIX_OPS = re.compile(r"Conv|MatMul|Einsum")
# Ops that only call a function whose own ops are traced too: counting them would count twice.
CALL_OPS = re.compile(r"^__inference|PartitionedCall$")
# Keras makes a traced layer's name scope unique with a suffix: layer `conv1_bn` runs as `conv1_bn_1`.
_SCOPE_SUFFIX = re.compile(r"_\d+$")
OTHER = "other"


def layer_kind(op_name: str, kinds: dict[str, str], optimizer: str | None = None) -> str:
    """The kind (class name) of the layer in `op_name`'s scope, ``"optimizer"`` or ``"other"``.

    Args:
        op_name: a TensorFlow op name, ``"StatefulPartitionedCall/functional/conv1/Conv2D"``.
        kinds: layer name -> layer class name, for the traced model's layers.
        optimizer: the optimizer's name scope (``"adam"``).
    """
    for part in op_name.split("/"):
        for name in (part, _SCOPE_SUFFIX.sub("", part)):
            if name in kinds:
                return kinds[name]
            if optimizer and name == optimizer:
                return "optimizer"
    return OTHER


def _latest_xspace(logdir: str) -> str:
    paths = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
    if not paths:
        raise FileNotFoundError(f"the profiler wrote no trace under {logdir}")
    return max(paths, key=os.path.getmtime)


def summarise_trace(xspace_path: str, kinds: dict[str, str], optimizer: str | None = None) -> dict:
    """Seconds per op type and per layer kind in an ``.xplane.pb`` trace, and the matrix ops' share."""
    from tfresnet.tf_compat import read_xspace, tf_op_events

    by_type: Counter = Counter()
    by_kind: Counter = Counter()
    for op_name, op_type, picoseconds in tf_op_events(read_xspace(xspace_path)):
        if CALL_OPS.search(op_type):
            continue
        by_type[op_type] += picoseconds / 1e12
        by_kind[layer_kind(op_name, kinds, optimizer)] += picoseconds / 1e12
    matrix = sum(s for t, s in by_type.items() if MATRIX_OPS.search(t))
    return {"op_seconds": dict(by_type.most_common()), "layer_seconds": dict(by_kind.most_common()),
            "matrix_seconds": matrix, "total_seconds": sum(by_type.values())}


def profile_steps(run: Callable[[], object], logdir: str, *, model, steps: int) -> dict:
    """Traces `run` (which trains `model` for `steps` warm steps) and sums its op time.

    Returns:
        `summarise_trace`'s sums with ``logdir`` (opens in TensorBoard's Profile tab), ``steps``,
        ``wall_seconds`` and ``cpus``.
    """
    import tensorflow as tf

    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    optimizer = getattr(getattr(model, "optimizer", None), "name", None)
    os.makedirs(logdir, exist_ok=True)
    tf.profiler.experimental.start(logdir)
    started = time.perf_counter()
    try:
        run()
    finally:
        wall = time.perf_counter() - started
        tf.profiler.experimental.stop()
    summary = summarise_trace(_latest_xspace(logdir), kinds, optimizer)
    return {"logdir": logdir, "steps": steps, "wall_seconds": wall, "cpus": os.cpu_count(), **summary}


def _rows(seconds: dict, per_step: float, total: float, top: int) -> list[str]:
    return [f"| {name} | {s * per_step:,.0f} | {100 * s / total:.1f}% |" for name, s in list(seconds.items())[:top]]


def format_profile(profile: dict, *, top: int = 8) -> str:
    """Markdown: op time per layer kind and the largest op types, in ms a step and as shares."""
    total = profile["total_seconds"] or 1.0
    per_step = 1000 / max(profile["steps"], 1)
    head = (f"{profile['steps']} steps traced in {profile['wall_seconds']:.1f} s; {total:.1f} s of op time "
            f"(ops on parallel threads add up). Matrix ops (conv, matmul): "
            f"{100 * profile['matrix_seconds'] / total:.0f}% of it.")
    return "\n".join([
        head, "", "| layer kind | ms of op time / step | share |", "| --- | --- | --- |",
        *_rows(profile["layer_seconds"], per_step, total, top),
        "", "| op type | ms / step | share |", "| --- | --- | --- |",
        *_rows(profile["op_seconds"], per_step, total, top),
    ])
