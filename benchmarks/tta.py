"""Test-time augmentation measured: accuracy and cost of ``--tta`` on the pets sample's hold-out.

For each backbone (rows of `benchmarks/transfer.py`'s ``BACKBONES``) it trains the pets
transfer recipe as that benchmark's "fine-tuning" row does (three breeds, the shared ImageNet
weights, a fixed 20% of the sample's trainval list held out as test, stratified, seed 0, used for
nothing else), then evaluates the run on those test images with every mode of
`tfresnet.using.tta.TTA_MODES`, `--repeats` rounds in which the modes take turns (the median
time is kept; the accuracy is the same every time). Two times per mode:

- ``pass_seconds``: ``tfresnet evaluate``'s whole pass over the split (``metrics.json``'s
  ``seconds``: JPEG decoding and resizing included, as a user waits for it);
- ``model_seconds``: the model alone over the same images already in memory.

    python benchmarks/tta.py                                  # ~8 minutes on 2 CPU cores
    python benchmarks/tta.py --backbones mobilenetv2-0.35 --repeats 5

A finished run under ``--run-root`` is reused. Results go to the JSON (default
benchmarks/results/tta.json); prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import transfer  # benchmarks/transfer.py: the same training rows

import tfresnet
from tfresnet.files import write_atomic
from tfresnet.runs import RunDir
from tfresnet.training import train
from tfresnet.using import tta

DEFAULT_OUT = os.path.join(transfer.REPO, "benchmarks", "results", "tta.json")


def _trained(backbone: str, args) -> str:
    run_dir = os.path.join(args.run_root, backbone)
    if not RunDir(run_dir).is_finished():
        config = transfer.run_config(backbone, "breeds", "fine-tuning", weights_dir=args.weights_dir,
                                     data_dir=args.data_dir)
        train(config, run_dir, resume=os.path.isfile(os.path.join(run_dir, "config.json")), recipe="pets_transfer")
    return run_dir


def _test_images(run_dir: str):
    """The run's test split in memory, loaded as `tfresnet evaluate` loads it."""
    import numpy as np

    run = RunDir(run_dir)
    config, model = run.config, run.load_model()
    bundle = tfresnet.data.load(config.data, augment=None, shuffle=False, verbose=0, image_size=config.image_size,
                                resize=config.resize_mode, batch_size=config.batch_size, **config.split_args())
    batches = [np.asarray(x) for x, _ in bundle.test]
    return model, batches


def _model_seconds(model, batches, mode: str) -> float:
    start = time.perf_counter()
    for images in batches:
        tta.tta_probabilities(lambda view: model(view, training=False), images, mode)
    return time.perf_counter() - start


def measure(run_dir: str, repeats: int) -> dict:
    """Every TTA mode on the run's test split: accuracy, loss and median seconds.

    The modes take turns within each round (none, flip, flip+crops, then again), so a load that
    comes and goes on a shared machine falls on all of them alike.
    """
    model, batches = _test_images(run_dir)
    for mode in tta.TTA_MODES:
        _model_seconds(model, batches[:1], mode)  # the first call of each shape traces; not timed
    passes = {mode: [] for mode in tta.TTA_MODES}
    model_times = {mode: [] for mode in tta.TTA_MODES}
    metrics = {}
    with tempfile.TemporaryDirectory() as out:
        for i in range(repeats):
            for mode in tta.TTA_MODES:
                metrics[mode] = tfresnet.evaluate(run_dir, RunDir(run_dir).config.data, split="test",
                                                  tta_mode=mode, out_dir=os.path.join(out, f"{mode}-{i}"),
                                                  verbose=False)
                passes[mode].append(metrics[mode]["seconds"])
                model_times[mode].append(_model_seconds(model, batches, mode))
    return {mode: {"views": len(tta.TTA_MODES[mode]), "accuracy": m["accuracy"],
                   "right": round(m["accuracy"] * m["examples"]), "loss": m["loss"], "examples": m["examples"],
                   "split": m["split"], "pass_seconds": statistics.median(passes[mode]),
                   "model_seconds": statistics.median(model_times[mode]), "pass_all": passes[mode],
                   "model_all": model_times[mode]}
            for mode, m in metrics.items()}


def table(results: dict) -> str:
    """One Markdown row per backbone and mode."""
    lines = ["| backbone | TTA | views | test accuracy | test loss | evaluate pass | model alone |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for backbone, rows in results.items():
        base = rows["none"]
        for mode, r in rows.items():
            lines.append(
                f"| {backbone} | {mode} | {r['views']} | {r['accuracy']:.1%} ({r['right']}/{r['examples']}) | "
                f"{r['loss']:.4f} | {r['pass_seconds']:.2f} s ({r['pass_seconds'] / base['pass_seconds']:.1f}x) | "
                f"{r['model_seconds']:.2f} s ({r['model_seconds'] / base['model_seconds']:.1f}x) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="mobilenetv2-0.35,mobilenetv1-0.25")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights-dir", default=os.path.join(transfer.SHARED, "imagenet_weights"))
    parser.add_argument("--data-dir", default=os.path.join(transfer.SHARED, "oxford_iiit_pet_sample"))
    parser.add_argument("--run-root", default=os.path.join(transfer.REPO, "runs", "tta-bench"))
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    results = {}
    for backbone in args.backbones.split(","):
        if backbone not in transfer.BACKBONES:
            parser.error(f"unknown backbone {backbone!r}; choose from {', '.join(transfer.BACKBONES)}")
        results[backbone] = measure(_trained(backbone, args), args.repeats)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_atomic(args.out, json.dumps(results, indent=2))
        print(table({backbone: results[backbone]}), flush=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
