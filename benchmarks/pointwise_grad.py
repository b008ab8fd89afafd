"""What the tuned 1x1 weight gradient buys: each 1x1 convolution's two kernels, then the whole train step.

`tfresnet.models.pointwise` computes a 1x1 convolution's weight gradient with TensorFlow's
``Conv2DBackpropFilter`` or with one matmul, whichever it timed faster for that shape. This
measures both, at the model's batch and precision:

1. per distinct 1x1 layer shape, each kernel's GFLOP/s alone (`pointwise.time_weight_gradients`,
   the timing "auto" itself makes) and which one "auto" keeps;
2. the registry model's train step with every `TunedConv2D` on TensorFlow's kernel
   (``weight_grad="conv"``, what `keras.layers.Conv2D` runs) against ``"auto"``, in alternating
   rounds on the same synthetic batch (`benchmarks/batchnorm.py`'s trainer); median examples/s.

    python benchmarks/pointwise_grad.py                                   # resnet50, float32, batch 64: ~6 min
    python benchmarks/pointwise_grad.py --batch-size 32 --mixed-precision mixed_bfloat16
    python benchmarks/pointwise_grad.py --smoke                           # seconds: mobilenetv2 at 64 px

Writes JSON (default benchmarks/results/pointwise_grad.json) and prints Markdown tables. Compare
rows of one run only.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from batchnorm import _trainer

from tfresnet.bench.common import alternate, markdown_table, write_result
from tfresnet.models import create_model, iter_layers, pointwise
from tfresnet.models.layers import TunedConv2D

MODELS = {"resnet50": (224, 224, 3), "mobilenetv2": (224, 224, 3)}
STEPS = 3  # timed steps a round; ResNet-50 at batch 64 takes about 4 s a step on 2 cores
SMOKE = {"model": "mobilenetv2", "shape": (64, 64, 3), "batch_size": 4, "rounds": 1, "steps": 1}


def kernel_rows(model: keras.Model, batch_size: int) -> list[dict]:
    """Each distinct 1x1 `TunedConv2D` shape of `model`, both weight-gradient kernels timed alone."""
    rows = {}
    for layer in iter_layers(model):
        if not (isinstance(layer, TunedConv2D) and pointwise.applies(layer)):
            continue
        shape = (batch_size, *layer.input.shape[1:])
        kernel, stride = tuple(layer.kernel.shape), layer.strides[0]
        key = (shape, kernel, stride)
        if key in rows:
            rows[key]["count"] += 1
            continue
        out = pointwise.output_shape(shape, kernel, stride)
        flops = 2 * np.prod(out) * kernel[2]
        seconds = pointwise.time_weight_gradients(shape, out, kernel, stride, layer.compute_dtype)
        rows[key] = {"layer": layer.name, "input": "x".join(map(str, shape[1:])), "kernel": "x".join(map(str, kernel)),
                     "stride": stride, "count": 1, "conv_gflops": flops / seconds["conv"] / 1e9,
                     "matmul_gflops": flops / seconds["matmul"] / 1e9,
                     # what training keeps: its own timing, and TensorFlow's kernel for tiny products
                     "auto": pointwise.choose(shape, kernel, stride, layer.compute_dtype)}
    return list(rows.values())


def measure(name: str, shape, *, batch_size: int, rounds: int, steps: int) -> dict:
    keras.utils.set_random_seed(0)
    models = {mode: create_model(name, input_shape=shape, num_classes=1000) for mode in ("conv", "auto")}
    models["auto"].set_weights(models["conv"].get_weights())
    for mode, model in models.items():
        for layer in iter_layers(model):
            if isinstance(layer, TunedConv2D):
                layer.weight_grad = mode
    kernels = kernel_rows(models["auto"], batch_size)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, *shape)).astype("float32")
    y = rng.integers(0, 1000, batch_size)
    rates = alternate({mode: _trainer(model, x, y, batch_size, steps) for mode, model in models.items()}, rounds)
    return {"model": name, "batch_size": batch_size, "dtype": keras.config.dtype_policy().compute_dtype,
            "rounds": rounds, "kernels": kernels, **rates, "ratio": rates["auto"]["median"] / rates["conv"]["median"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mixed-precision", choices=["mixed_bfloat16", "mixed_float16"], default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "pointwise_grad.json"))
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else {"model": args.model, "shape": MODELS[args.model], "batch_size": args.batch_size,
                                     "rounds": args.rounds, "steps": STEPS}
    keras.config.set_dtype_policy(args.mixed_precision or "float32")
    row = measure(plan["model"], plan["shape"], batch_size=plan["batch_size"], rounds=plan["rounds"],
                  steps=plan["steps"])
    write_result(args.out, "pointwise_grad", {"backend": keras.backend.backend(), "smoke": args.smoke, "row": row})
    print(markdown_table(row["kernels"], [
        ("layer", "first layer"), ("input", "input"), ("kernel", "kernel"), ("stride", "stride"), ("count", "count"),
        ("conv_gflops", "Conv2DBackpropFilter GFLOP/s"), ("matmul_gflops", "matmul GFLOP/s"), ("auto", "auto keeps")]))
    print()
    print(markdown_table([{**row, "conv_rate": row["conv"]["median"], "auto_rate": row["auto"]["median"]}], [
        ("model", "model"), ("dtype", "compute dtype"), ("batch_size", "batch"),
        ("conv_rate", "TensorFlow's kernel ex/s"), ("auto_rate", "auto ex/s"), ("ratio", "auto / TensorFlow's")]))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
