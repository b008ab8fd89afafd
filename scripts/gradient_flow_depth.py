"""Do gradients vanish in deep plain nets with batch norm? Per-layer gradient norms across depth.

He et al., "Deep Residual Learning for Image Recognition" (2015), section 4.1, find that their
plain nets get *worse* with depth (the degradation problem) and argue this is unlikely to be
vanishing gradients, because the nets use batch normalisation: "we also verify that the
backward propagated gradients exhibit healthy norms with BN". This script measures it, for the
small-image nets of their section 4.2 (plain20, plain56 and their residual twins resnet20,
resnet56) on 28x28x1 MNIST digits: the norm of the cross-entropy gradient of every convolution
kernel, at initialisation and after a short training, for several seeds.

    python scripts/gradient_flow_depth.py --out runs/gradient_depth
    python scripts/gradient_flow_depth.py --steps 50 --seeds 0 --models plain20 resnet20   # quick

Writes ``OUT/gradient_depth.csv`` (one row per model, seed, stage and weight: the columns of
`tfresnet.inspect.gradient_norms` plus ``model``, ``seed``, ``stage``, ``steps``, ``train_loss``),
``OUT/gradient_depth_init.png`` and ``OUT/gradient_depth_trained.png`` (kernel gradient norm
against depth, one line per model and seed), and prints per model and seed the ratio of the
first convolution's kernel-gradient norm to the last convolution's (below 1: smaller gradients
towards the input).

Digits: real MNIST from ``DATA_DIR/mnist.npz`` (default ``../shared/data``) when present, else the
`mnist-sample` shipped with tfresnet. The probe (the first `--probe` training digits, in stored
order) is measured in training mode, batch norm on the probe's statistics, as the optimizer
sees it. Training: SGD with momentum 0.9 at He et al.'s 0.1 scaled to the batch size (linear
scaling rule), on `--steps` batches of other training digits.
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np
import pandas as pd

import tfresnet
from tfresnet.inspect import gradient_norms, plot_gradient_norms

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(REPO, "..", "shared", "data")


def load_digits(data_dir: str, count: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The first `count` training digits in stored order, raw pixels, and the dataset's name."""
    name = "mnist" if os.path.isfile(os.path.join(data_dir, "mnist.npz")) else "mnist-sample"
    bundle = tfresnet.data.load(name, data_dir=data_dir if name == "mnist" else None,
                                batch_size=count, validation_split=0, shuffle=False, verbose=0)
    images, labels = next(iter(bundle.train))
    return images.numpy(), labels.numpy(), name


def conv_kernels(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of convolution kernels (4-D), input side first."""
    return frame[(frame["weight"] == "kernel") & (frame["shape"].str.count("x") == 3)]


def first_last_ratio(frame: pd.DataFrame, value: str = "grad_norm") -> float:
    """First convolution's kernel-gradient norm (or RMS) over the last convolution's.

    The first kernel (3x3x1x16) has 256 times fewer weights than the last (3x3x64x64), so the
    norm ratio reads 16 times lower than the per-weight (RMS) ratio.
    """
    convs = conv_kernels(frame)
    return float(convs[value].iloc[0] / convs[value].iloc[-1])


def study(args) -> pd.DataFrame:
    total = args.probe + args.steps * args.batch_size
    x, y, data_name = load_digits(args.data_dir, total)
    if len(x) < total:
        raise SystemExit(f"{data_name} has {len(x)} training digits; {total} are needed.")
    probe_x, probe_y = x[:args.probe], y[:args.probe]
    train_x, train_y = x[args.probe:], y[args.probe:]
    lr = 0.1 * args.batch_size / 128  # He et al.: 0.1 at batch 128; linear scaling rule
    print(f"data {data_name}: probe {args.probe} digits, training {args.steps} steps of "
          f"{args.batch_size} (lr {lr:g})", flush=True)

    frames = []
    for name in args.models:
        model = optimizer_start = None
        for seed in args.seeds:
            started = time.perf_counter()
            keras.utils.set_random_seed(seed)
            fresh = tfresnet.create_model(name, input_shape=x.shape[1:], num_classes=10,
                                          preprocessing="auto")
            if model is None:
                # One compiled model per architecture; each seed loads its own initial weights
                # and a fresh optimizer state, so the training step is traced only once.
                model = fresh
                model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9),
                              loss="sparse_categorical_crossentropy")
                model.optimizer.build(model.trainable_variables)
                optimizer_start = [np.asarray(v) for v in model.optimizer.variables]
            else:
                model.set_weights(fresh.get_weights())
                for variable, value in zip(model.optimizer.variables, optimizer_start):
                    variable.assign(value)
            keras.utils.set_random_seed(seed)
            init = gradient_norms(model, probe_x, probe_y, batches=args.probe_batches)
            history = model.fit(train_x, train_y, batch_size=args.batch_size, epochs=1,
                                shuffle=True, verbose=0)
            trained = gradient_norms(model, probe_x, probe_y, batches=args.probe_batches)
            train_loss = float(history.history["loss"][-1])
            for stage, frame, steps in (("init", init, 0), ("trained", trained, args.steps)):
                frames.append(frame.assign(model=name, seed=seed, stage=stage, steps=steps,
                                           train_loss=train_loss if steps else np.nan))
            print(f"{name:9s} seed {seed}: first/last conv gradient norm {first_last_ratio(init):7.3f} "
                  f"at init, {first_last_ratio(trained):7.3f} after {args.steps} steps; probe loss "
                  f"{init['loss'].iloc[0]:.3f} -> {trained['loss'].iloc[0]:.3f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        keras.backend.clear_session()
    return pd.concat(frames, ignore_index=True)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per model and stage, one value per seed: first/last conv-kernel gradient norm and RMS
    ratios, the spread (largest over smallest conv-kernel gradient norm) and the probe loss."""
    rows = []
    for (name, stage), group in results.groupby(["model", "stage"], sort=False):
        seeds = [g for _, g in group.groupby("seed")]

        def per_seed(fn, seeds=seeds):
            return " ".join(f"{fn(g):.3g}" for g in seeds)

        rows.append({
            "model": name, "stage": stage,
            "first/last norm": per_seed(first_last_ratio),
            "first/last rms": per_seed(lambda g: first_last_ratio(g, "grad_rms")),
            "max/min norm": per_seed(lambda g: conv_kernels(g)["grad_norm"].max()
                                     / conv_kernels(g)["grad_norm"].min()),
            "probe loss": per_seed(lambda g: g["loss"].iloc[0]),
        })
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["plain20", "plain56", "resnet20", "resnet56"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=200, help="training steps after init")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--probe", type=int, default=128, help="digits the gradient is over")
    parser.add_argument("--probe-batches", type=int, default=1,
                        help="split the probe into this many batches (memory)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", default=os.path.join("runs", "gradient_depth"))
    args = parser.parse_args(argv)

    started, cpu = time.perf_counter(), time.process_time()
    results = study(args)
    os.makedirs(args.out, exist_ok=True)
    results.to_csv(os.path.join(args.out, "gradient_depth.csv"), index=False)
    for stage in ("init", "trained"):
        rows = results[results["stage"] == stage]
        rows = rows.assign(run=[f"{m} seed {s}" for m, s in zip(rows["model"], rows["seed"])])
        title = ("at initialisation" if stage == "init" else f"after {args.steps} steps")
        plot_gradient_norms(rows, os.path.join(args.out, f"gradient_depth_{stage}.png"), by="run",
                            weight="kernel", title=f"Kernel gradient norm per layer, {title}")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summarise(results).to_string(index=False))
    print(f"wrote {args.out}/gradient_depth.csv and .png; {time.perf_counter() - started:.0f} s "
          f"wall, {time.process_time() - cpu:.0f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
