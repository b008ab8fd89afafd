"""Transfer learning measured: ImageNet backbones on the Oxford-IIIT Pet sample, against scratch.

For each backbone (rows of `BACKBONES`, the keras.applications ImageNet files in
../shared/data/imagenet_weights) and each task (`TASKS`: the three breeds, cats against dogs), it
trains `recipes/pets_transfer.py` three ways (`MODES`):

- **feature extraction**: the recipe's phase 1 alone, a new classifier on the frozen backbone;
- **fine-tuning**: the whole recipe, phase 1 and then the top of the backbone at a 100x lower rate;
- **scratch**: the same network from random weights, every layer training, for as many epochs as
  the two phases together (the same budget and early stopping).

Every run holds out 20% of the sample's trainval list as test (``test_split=0.2``, stratified,
seeded by the run's seed): those images choose nothing. Early stopping and the best checkpoint use
the validation split (10%, disjoint from test); the rest trains. Accuracy is on the test images;
wall time is `train_seconds` (both phases, data loading and evaluation excluded).

``--seeds 0,1,2`` repeats every row with each seed: another split of the sample (another 60 test
images) and another initialisation, order and augmentation. On 60 images one image is 1.7 points,
so one seed says little; the table gives the median and the range over the seeds.

    python benchmarks/transfer.py                  # 18 runs, 7-10 minutes on 2 CPU cores
    python benchmarks/transfer.py --seeds 0,1,2    # 54 runs, about 24 minutes; finished ones are kept
    python benchmarks/transfer.py --backbones mobilenetv2-0.35 --tasks breeds --modes scratch

Each run's result is saved to the JSON (default benchmarks/results/transfer.json) as it finishes;
run again and finished runs are skipped (``--again`` retrains them). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfresnet.files import write_atomic
from tfresnet.training import train
from tfresnet.training.cli import load_recipe
from tfresnet.training.config import apply_overrides

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared", "data")
DEFAULT_OUT = os.path.join(REPO, "benchmarks", "results", "transfer.json")

# name -> (registry model, model_args, keras.applications ImageNet file without its classifier)
BACKBONES = {
    "mobilenetv2-0.35": ("mobilenetv2", {"alpha": 0.35},
                         "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"),
    "mobilenetv2-0.5": ("mobilenetv2", {"alpha": 0.5},
                        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"),
    "mobilenetv1-0.25": ("mobilenetv1", {"alpha": 0.25}, "mobilenet_2_5_224_tf_no_top.h5"),
}
# task -> the pets loader's label
TASKS = {"breeds": "breed", "species": "species"}
TEST_SPLIT = 0.2


def _feature_extraction(config):
    return dataclasses.replace(config, fine_tune_epochs=0)


def _scratch(config):
    # The same budget: both phases' epochs, every layer training from the first.
    return dataclasses.replace(config, weights=None, freeze_backbone=False, fine_tune_epochs=0,
                               epochs=config.epochs + config.fine_tune_epochs)


MODES = {"feature extraction": _feature_extraction, "fine-tuning": lambda c: c, "scratch": _scratch}


def run_config(backbone: str, task: str, mode: str, *, weights_dir: str, data_dir: str, seed: int = 0):
    """The pets recipe's config for one row: its backbone, task, mode and seed (split included)."""
    model, model_args, file_name = BACKBONES[backbone]
    _, get_config = load_recipe("pets_transfer")
    config = apply_overrides(get_config(), [
        f"model={model}", f"model_args={json.dumps(model_args)}",
        f"weights={os.path.join(weights_dir, file_name)}", f"data_dir={data_dir}",
        f"data_args.label={TASKS[task]}", f"data_args.test_split={TEST_SPLIT}", "export=false",
        "tensorboard=false", f"seed={seed}",
    ])
    return MODES[mode](config)


def _load(path: str) -> dict:
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
        # Files saved before --seeds keyed a row without its seed: the recipe's, 0.
        results["runs"] = {(key if key.count("/") == 3 else f"{key}/seed0"): run
                           for key, run in results["runs"].items()}
        return results
    return {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "runs": {}}


def _row(key: str, result) -> dict:
    backbone, task, mode, seed = key.split("/")
    metrics = result.metrics
    return {"backbone": backbone, "task": task, "mode": mode, "seed": int(seed.removeprefix("seed")),
            "test_accuracy": metrics["accuracy"],
            "test_examples": metrics["examples"], "split": metrics["split"],
            "train_seconds": metrics["train_seconds"], "epochs": len(result.history),
            "run_dir": result.run_dir, "finished": datetime.datetime.now().isoformat(timespec="seconds")}


def _cell(runs: list[dict]) -> str:
    if not runs:
        return "-"
    if len(runs) == 1:
        [run] = runs
        return f"{run['test_accuracy']:.1%} ({run['train_seconds']:.0f} s, {run['epochs']} ep)"
    accuracy = [run["test_accuracy"] for run in runs]
    seconds = statistics.median(run["train_seconds"] for run in runs)
    return (f"{statistics.median(accuracy):.1%} ({min(accuracy):.1%}-{max(accuracy):.1%}, "
            f"{len(runs)} seeds; {seconds:.0f} s)")


def table(runs: dict) -> str:
    """One Markdown row per backbone and task: each mode's test accuracy and train time, over the
    seeds run (their median and range, and the median time, where there are several)."""
    lines = ["| backbone | task | " + " | ".join(MODES) + " |", "| --- | --- |" + " --- |" * len(MODES)]
    for backbone in BACKBONES:
        for task in TASKS:
            cells = [_cell([run for key, run in sorted(runs.items()) if key.startswith(f"{backbone}/{task}/{mode}/")])
                     for mode in MODES]
            lines.append(f"| {backbone} | {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--weights-dir", default=os.path.join(SHARED, "imagenet_weights"))
    parser.add_argument("--data-dir", default=os.path.join(SHARED, "oxford_iiit_pet_sample"))
    parser.add_argument("--run-root", default=os.path.join(REPO, "runs", "transfer-bench"))
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, each a split and a training run")
    parser.add_argument("--again", action="store_true", help="retrain runs already in --out")
    args = parser.parse_args(argv)
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers. Received --seeds {args.seeds!r}")
    chosen = [(b, t, m, s) for s in seeds for b in args.backbones.split(",") for t in args.tasks.split(",")
              for m in args.modes.split(",")]
    for backbone, task, mode, _ in chosen:
        if backbone not in BACKBONES or task not in TASKS or mode not in MODES:
            parser.error(f"unknown row {backbone}/{task}/{mode}; backbones: {', '.join(BACKBONES)}; "
                         f"tasks: {', '.join(TASKS)}; modes: {', '.join(MODES)}")
    results = _load(args.out)
    for backbone, task, mode, seed in chosen:
        key = f"{backbone}/{task}/{mode}/seed{seed}"
        if key in results["runs"] and not args.again:
            continue
        config = run_config(backbone, task, mode, weights_dir=args.weights_dir, data_dir=args.data_dir, seed=seed)
        run_dir = os.path.join(args.run_root, key.replace("/", "-").replace(" ", "_"))
        result = train(config, run_dir, resume=os.path.isfile(os.path.join(run_dir, "config.json")),
                       recipe="pets_transfer")
        results["runs"][key] = _row(key, result)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_atomic(args.out, json.dumps(results, indent=2))
        print(f"{key}: {results['runs'][key]['test_accuracy']:.4f} on "
              f"{results['runs'][key]['test_examples']} test images, {results['runs'][key]['train_seconds']:.1f} s",
              flush=True)
    print(table(results["runs"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
