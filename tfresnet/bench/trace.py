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

Op time alone does not say which ops the step waits for: a batch-norm gradient that runs beside a
convolution costs little wall time, one that runs while no convolution can start costs all of
its own. So `timeline` also lays the ops of every thread on one clock and splits the traced span
by how many matrix ops were running (none, one, two or more), and charges the span in which no
matrix op ran to the ops that did run then (``exposed_seconds``, shared evenly between ops
running at once): the memory-bound work the step's matrix kernels waited for.

The XSpace protobuf schema is TensorFlow's own, read through `tfresnet.tf_compat`.
"""

from __future__ import annotations

import glob
import os
import re
import time
from collections import Counter
from collections.abc import Callable

__all__ = ["MATRIX_OPS", "profile_steps", "summarise_trace", "timeline", "layer_kind", "format_profile"]

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


def timeline(events) -> dict:
    """How the span of `events` splits by the number of matrix ops running, and what ran without one.

    Args:
        events: ``(op type, start, end)`` triples, in picoseconds on one clock.

    Returns:
        ``span_seconds`` (first start to last end); ``matrix_ops_running``: seconds with ``"0"``,
        ``"1"`` and ``"2+"`` matrix ops running, ``"0"`` not counting ``idle_seconds`` (no op at
        all); ``exposed_seconds``: op type -> its share of the seconds in which ops ran but no
        matrix op did, shared evenly between the events running at once, largest first (they add up to
        ``matrix_ops_running["0"]``).
    """
    edges = sorted([(start, 1, op_type) for op_type, start, _ in events]
                   + [(end, -1, op_type) for op_type, _, end in events], key=lambda edge: (edge[0], edge[1]))
    phases = {"0": 0.0, "1": 0.0, "2+": 0.0}
    idle = 0.0
    exposed: Counter = Counter()
    running: Counter = Counter()  # op type -> events of it running now
    matrix = 0
    last = edges[0][0] if edges else 0
    for at, step, op_type in edges:
        seconds, last = (at - last) / 1e12, at
        busy = sum(running.values())
        if not busy:
            idle += seconds
        elif matrix:
            phases["1" if matrix == 1 else "2+"] += seconds
        else:
            phases["0"] += seconds
            for name, count in running.items():
                exposed[name] += seconds * count / busy
        running[op_type] += step
        matrix += step if MATRIX_OPS.search(op_type) else 0
        if not running[op_type]:
            del running[op_type]
    span = (edges[-1][0] - edges[0][0]) / 1e12 if edges else 0.0
    return {"span_seconds": span, "matrix_ops_running": phases, "idle_seconds": idle,
            "exposed_seconds": dict(exposed.most_common())}


def summarise_trace(xspace_path: str, kinds: dict[str, str], optimizer: str | None = None) -> dict:
    """Seconds per op type and per layer kind in an ``.xplane.pb`` trace, the matrix ops' share,
    and its `timeline`."""
    from tfresnet.tf_compat import read_xspace, tf_op_events

    by_type: Counter = Counter()
    by_kind: Counter = Counter()
    spans = []
    for op_name, op_type, start, picoseconds in tf_op_events(read_xspace(xspace_path)):
        if CALL_OPS.search(op_type):
            continue
        by_type[op_type] += picoseconds / 1e12
        by_kind[layer_kind(op_name, kinds, optimizer)] += picoseconds / 1e12
        spans.append((op_type, start, start + picoseconds))
    matrix = sum(s for t, s in by_type.items() if MATRIX_OPS.search(t))
    return {"op_seconds": dict(by_type.most_common()), "layer_seconds": dict(by_kind.most_common()),
            "matrix_seconds": matrix, "total_seconds": sum(by_type.values()), "timeline": timeline(spans)}


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
    """Markdown: op time per layer kind and the largest op types, in ms a step and as shares; then
    the `timeline`: how the traced span splits by matrix ops running, and the ops it waited for."""
    total = profile["total_seconds"] or 1.0
    per_step = 1000 / max(profile["steps"], 1)
    head = (f"{profile['steps']} steps traced in {profile['wall_seconds']:.1f} s; {total:.1f} s of op time "
            f"(ops on parallel threads add up). Matrix ops (conv, matmul): "
            f"{100 * profile['matrix_seconds'] / total:.0f}% of it.")
    lines = [head, "", "| layer kind | ms of op time / step | share |", "| --- | --- | --- |",
             *_rows(profile["layer_seconds"], per_step, total, top),
             "", "| op type | ms / step | share |", "| --- | --- | --- |",
             *_rows(profile["op_seconds"], per_step, total, top)]
    line = profile.get("timeline")
    if line and line["span_seconds"]:
        span = line["span_seconds"]
        phases = line["matrix_ops_running"]
        lines += ["", f"Of the {span:.2f} s from the first op to the last: two or more matrix ops running "
                      f"{100 * phases['2+'] / span:.1f}%, one {100 * phases['1'] / span:.1f}%, none "
                      f"{100 * phases['0'] / span:.1f}%, no op at all {100 * line['idle_seconds'] / span:.1f}%. "
                      "The ops that ran while no matrix op did:",
                  "", "| op type | ms / step with no matrix op running | share of the span |", "| --- | --- | --- |",
                  *_rows(line["exposed_seconds"], per_step, span, top)]
    return "\n".join(lines)
