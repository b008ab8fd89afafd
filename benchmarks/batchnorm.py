"""What the fused batch norm buys: each registry model trained with Keras' batch norm, then with tfresnet's.

The two models differ in nothing else: the second is the first cloned with every
`tfresnet.models.layers.FusedBatchNormalization` swapped for a `keras.layers.BatchNormalization`
of the same config and weights. Both train on the same synthetic in-memory batch with Adam, in
alternating rounds (`tfresnet.bench.common.alternate`); each round's rate is examples/s of the
train step after a warm-up step (`StepTimer`), and the figure is the median of the rounds.

    python benchmarks/batchnorm.py                      # resnet50, mobilenetv2 at 224 px, resnet20, convnet: ~9 min
    python benchmarks/batchnorm.py --models resnet50 --batch-size 64 --rounds 5
    python benchmarks/batchnorm.py --smoke              # seconds: the batch-norm convnet at batch 8, 1 round

Writes JSON (default benchmarks/results/batchnorm.json) and prints a Markdown table. Compare rows
of one run only.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from tfresnet.bench.common import StepTimer, alternate, markdown_table, write_result
from tfresnet.models import create_model
from tfresnet.models.layers import FusedBatchNormalization

# model -> (input shape, classes, batch, model_args): the throughput suite's ImageNet and MNIST shapes.
MODELS = {
    "resnet50": ((224, 224, 3), 1000, 32, {}),
    "mobilenetv2": ((224, 224, 3), 1000, 32, {}),
    "resnet20": ((28, 28, 1), 10, 128, {}),
    "convnet": ((28, 28, 1), 10, 128, {"batch_norm": True}),
}
STEPS = 4  # timed steps a round; ResNet-50 at batch 32 takes about 7 s a step on 2 cores
SMOKE = {"models": ["convnet"], "batch_size": 8, "rounds": 1, "steps": 2}


def with_keras_batch_norm(model: keras.Model) -> keras.Model:
    """`model` cloned with Keras' own batch norm wherever it has tfresnet's, weights included."""
    def swap(layer):
        cls = keras.layers.BatchNormalization if type(layer) is FusedBatchNormalization else type(layer)
        return cls.from_config(layer.get_config())

    clone = keras.models.clone_model(model, clone_function=swap)
    clone.set_weights(model.get_weights())
    return clone


def _trainer(model: keras.Model, x, y, batch_size: int, steps: int):
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    data = (np.concatenate([x] * (steps + 1)), np.concatenate([y] * (steps + 1)))
    model.fit(*data, batch_size=batch_size, epochs=1, steps_per_epoch=2, verbose=0)  # trace

    def rate() -> float:
        timer = StepTimer(warmup=1)
        model.fit(*data, batch_size=batch_size, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
        return batch_size * timer.steps / timer.seconds

    return rate


def measure(name: str, *, batch_size: int | None = None, rounds: int = 3, steps: int = STEPS) -> dict:
    """Examples/s of `name`'s train step with each batch norm: ``{"keras": ..., "fused": ...}`` and the ratio."""
    shape, classes, default_batch, model_args = MODELS[name]
    batch_size = batch_size or default_batch
    keras.utils.set_random_seed(0)
    fused = create_model(name, input_shape=shape, num_classes=classes, **model_args)
    plain = with_keras_batch_norm(fused)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, *shape)).astype("float32")
    y = rng.integers(0, classes, batch_size)
    rates = alternate({"keras": _trainer(plain, x, y, batch_size, steps),
                       "fused": _trainer(fused, x, y, batch_size, steps)}, rounds)
    return {"model": name, "batch_size": batch_size, "rounds": rounds, **rates,
            "ratio": rates["fused"]["median"] / rates["keras"]["median"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=None,
                        help="one batch for every model (default: each model's)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "batchnorm.json"))
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else {"models": args.models, "batch_size": args.batch_size, "rounds": args.rounds,
                                     "steps": STEPS}
    rows = []
    for name in plan["models"]:
        rows.append(measure(name, batch_size=plan["batch_size"], rounds=plan["rounds"], steps=plan["steps"]))
        write_result(args.out, "batchnorm", {"backend": keras.backend.backend(), "smoke": args.smoke, "rows": rows})
    table = [{**row, "keras_rate": row["keras"]["median"], "fused_rate": row["fused"]["median"]} for row in rows]
    print(markdown_table(table, [("model", "model"), ("batch_size", "batch"), ("keras_rate", "Keras batch norm ex/s"),
                                 ("fused_rate", "fused batch norm ex/s"), ("ratio", "fused / Keras")]))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
