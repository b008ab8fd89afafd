"""The matrix-kernel ceiling of a training step: each convolution and dense layer's three kernels
(forward, input gradient, weight gradient) timed alone, at the model's batch and precision.

A profile says where a step's time goes; this says how fast the step could be at best. If every
op but the matrix kernels were free, one step would take the sum of its kernels' times, so

    ceiling examples/s = batch / sum over layers of (forward + input gradient + weight gradient)

and the ceiling's fraction of the dense matmul peak bounds what any change above the kernels
(fusion, layout, batch norm, the input pipeline) can reach. A goal above the ceiling needs faster
kernels, not a faster framework around them.

Layers of the same shape (ResNet-50's 53 convolutions have 20 distinct shapes) are
timed once and counted as many times as they occur. A layer that only the input reaches (the
stem) gets no input gradient in training, so none is counted for it. Each kernel's time is the
best of a few repeats, as for the peak (`tfresnet.bench.common.measure_peak_flops`): interference
only slows a kernel down, so the best is the kernel's own speed. Each kernel is one compiled call,
so its time includes one call's dispatch (tens of microseconds on a CPU): negligible for
ResNet-50's millisecond kernels, a pessimistic ceiling for a small model at a small batch.

The kernels are compiled with the backend's own autodiff (``tf.GradientTape`` in a
``tf.function``, ``jax.vjp`` under ``jax.jit``); each gradient is computed alone, without the
forward pass it would follow in training. A 1x1 `TunedConv2D`'s weight gradient is the kernel its
training step runs (`tfresnet.models.pointwise`: TensorFlow's or one matmul, whichever is faster).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import keras
import numpy as np

from tfresnet.bench.common import block_until_ready, markdown_table
from tfresnet.models import pointwise
from tfresnet.models.common import iter_layers
from tfresnet.models.layers import TunedConv2D
from tfresnet.models.profile import layer_macs

__all__ = ["PASSES", "kernel_ceiling", "format_ceiling"]

PASSES = ("forward", "input_grad", "weight_grad")
_WRT = {"forward": None, "input_grad": 0, "weight_grad": 1}


def _op(layer) -> Callable | None:
    """The layer's matrix product as a function of (input, kernel), or None for other layers."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return lambda x, k: keras.ops.depthwise_conv(x, k, strides=layer.strides, padding=layer.padding,
                                                     dilation_rate=layer.dilation_rate)
    if isinstance(layer, TunedConv2D) and layer.tunes_weight_gradient():  # the kernel its training step runs
        return lambda x, k: pointwise.conv2d(x, k, layer.strides[0], layer.weight_grad)
    if isinstance(layer, keras.layers.Conv2D):
        return lambda x, k: keras.ops.conv(x, k, strides=layer.strides, padding=layer.padding,
                                           dilation_rate=layer.dilation_rate)
    if isinstance(layer, keras.layers.Dense):
        return keras.ops.matmul
    return None


def _compiled(fn: Callable, wrt: int | None) -> Callable:
    """`fn(x, k)` compiled, or with `wrt` its pullback ``(x, k, dy) -> d(x or k)`` alone."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        if wrt is None:
            return jax.jit(fn)

        def jax_pullback(x, k, dy):
            args = [x, k]
            return jax.vjp(lambda v: fn(*(v, k) if wrt == 0 else (x, v)), args[wrt])[1](dy)[0]

        return jax.jit(jax_pullback)
    if backend == "tensorflow":
        import tensorflow as tf

        if wrt is None:
            return tf.function(fn, autograph=False)  # a product has no Python control flow

        @tf.function(autograph=False)
        def tf_pullback(x, k, dy):
            args = [x, k]
            with tf.GradientTape() as tape:
                tape.watch(args[wrt])
                y = fn(x, k)
            # The forward product is not returned, so the function runtime prunes it: only the
            # gradient kernel runs.
            return tape.gradient(y, args[wrt], output_gradients=dy)

        return tf_pullback
    raise NotImplementedError(f"kernel_ceiling runs on the tensorflow and jax backends; KERAS_BACKEND is {backend!r}.")


def _best_seconds(fn: Callable, args: tuple, *, seconds: float, repeats: int) -> float:
    block_until_ready(fn(*args))  # compiles
    start = time.perf_counter()
    block_until_ready(fn(*args))
    calls = max(1, math.ceil(seconds / max(time.perf_counter() - start, 1e-9)))
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def _needs_input_grad(model: keras.Model, layer) -> bool:
    """Whether training back-propagates into this layer's input: some trainable weight lies
    between the model's input and it."""
    try:
        return bool(keras.Model(model.inputs, layer.input).trainable_weights)
    except (ValueError, TypeError, AttributeError):  # a layer inside a nested model: assume so
        return True


def _distinct_layers(model: keras.Model) -> dict[tuple, dict]:
    groups: dict[tuple, dict] = {}
    for layer in iter_layers(model):
        op = _op(layer)
        if op is None:
            continue
        needs_dx = _needs_input_grad(model, layer)
        key = (type(layer).__name__, tuple(layer.input.shape[1:]), tuple(layer.kernel.shape),
               tuple(getattr(layer, "strides", ())), getattr(layer, "padding", ""),
               tuple(getattr(layer, "dilation_rate", ())), needs_dx)
        group = groups.setdefault(key, {"layer": layer.name, "kind": key[0], "op": op, "count": 0,
                                        "input": key[1], "kernel": key[2], "strides": key[3],
                                        "needs_input_grad": needs_dx, "macs": layer_macs(layer),
                                        "output": tuple(layer.output.shape[1:])})
        group["count"] += 1
    return groups


def kernel_ceiling(model: keras.Model, batch_size: int, *, dtype: str = "float32", seconds: float = 0.2,
                   repeats: int = 3) -> dict:
    """Times every distinct convolution and dense layer of `model` alone and sums them up.

    Args:
        model: a built functional model with a fixed input size.
        batch_size: the batch each kernel runs at (the training step's).
        dtype: the precision the matrix work runs in (``"bfloat16"`` under ``mixed_bfloat16``).
        seconds: how long each timed repeat of one kernel lasts at least.
        repeats: timed repeats per kernel; the best is kept.

    Returns:
        ``{"batch_size", "dtype", "layers": [...], "seconds": {pass: s per step}, "step_seconds",
        "ceiling_examples_per_s", "macs"}``; each layer row holds its shapes, count, multiply-adds
        per example and each pass's seconds (of one occurrence) and FLOP/s.
    """
    rng = np.random.default_rng(0)
    rows, totals = [], dict.fromkeys(PASSES, 0.0)
    for group in _distinct_layers(model).values():
        x = keras.ops.convert_to_tensor(rng.standard_normal((batch_size, *group["input"]), "float32"), dtype)
        k = keras.ops.convert_to_tensor(rng.standard_normal(group["kernel"], "float32") * 0.05, dtype)
        dy = keras.ops.convert_to_tensor(rng.standard_normal((batch_size, *group["output"]), "float32"), dtype)
        flops = 2 * group["macs"] * batch_size
        row = {key: value for key, value in group.items() if key != "op"}
        for name in PASSES:
            if name == "input_grad" and not group["needs_input_grad"]:
                row[f"{name}_seconds"] = row[f"{name}_flops_per_s"] = None
                continue
            args = (x, k) if name == "forward" else (x, k, dy)
            took = _best_seconds(_compiled(group["op"], _WRT[name]), args, seconds=seconds, repeats=repeats)
            row[f"{name}_seconds"], row[f"{name}_flops_per_s"] = took, flops / took
            totals[name] += took * group["count"]
        rows.append(row)
    step = sum(totals.values())
    return {"batch_size": batch_size, "dtype": dtype, "layers": rows, "seconds": totals, "step_seconds": step,
            "ceiling_examples_per_s": batch_size / step if step else None,
            "macs": sum(r["macs"] * r["count"] for r in rows)}


def format_ceiling(ceiling: dict, *, top: int = 10) -> str:
    """A line of totals, then the `top` layers by time a step (count x their three kernels)."""
    totals = ceiling["seconds"]
    text = (f"matrix kernels alone ({ceiling['dtype']}, batch {ceiling['batch_size']}): "
            f"{ceiling['step_seconds']:.3f} s a step (forward {totals['forward']:.3f}, input gradient "
            f"{totals['input_grad']:.3f}, weight gradient {totals['weight_grad']:.3f}); ceiling "
            f"{ceiling['ceiling_examples_per_s']:,.1f} examples/s\n\n")

    def per_step(row):
        return row["count"] * sum(row[f"{p}_seconds"] or 0.0 for p in PASSES)

    def table_row(row):
        stride = row["strides"][0] if row["strides"] else 1
        shape = f"{'x'.join(map(str, row['input']))} * {'x'.join(map(str, row['kernel']))}"
        gflops = {f"{p}_g": row[f"{p}_flops_per_s"] and row[f"{p}_flops_per_s"] / 1e9 for p in PASSES}
        return dict(row, shape=shape + (f" /{stride}" if stride > 1 else ""), step_ms=1e3 * per_step(row), **gflops)

    rows = [table_row(r) for r in sorted(ceiling["layers"], key=per_step, reverse=True)[:top]]
    return text + markdown_table(rows, [
        ("layer", "first layer"), ("shape", "input * kernel / stride"), ("count", "count"),
        ("step_ms", "ms a step"), ("forward_g", "forward GFLOP/s"), ("input_grad_g", "input grad GFLOP/s"),
        ("weight_grad_g", "weight grad GFLOP/s"),
    ])
