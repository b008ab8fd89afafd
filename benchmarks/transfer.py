"""Transfer learning measured: ImageNet backbones on the Oxford-IIIT Pet sample, against scratch.

For each backbone (rows of `BACKBONES`, the keras.applications ImageNet files in
../shared/data/imagenet_weights) and each task (`TASKS`: the three breeds, cats against dogs), it
trains `recipes/pets_transfer.py` six ways (`MODES`):

- **feature extraction**: the recipe's phase 1 alone, a new classifier on the frozen backbone;
- **fine-tuning**: the whole recipe, phase 1 and then the top of the backbone at a 10x lower rate;
- **scratch**: the same network from random weights, every layer training, for as many epochs as
  the two phases together (the same budget and early stopping);
- **whole backbone**: fine-tuning from the backbone's first layer at the recipe's one rate (a
  control for the next; for MobileNet v1, whose recipe fine-tunes it all, the recipe again);
- **layer decay**: fine-tuning from the first layer with ``layer_decay=0.8``, each block learning
  at 0.8 times the rate of the block above it;
- **distilled**: the recipe, the student also learning from `TEACHER`'s run on the same task and
  seed (`pets_distill`'s temperature and weight); trained after the teacher, for the other backbones.

Every run holds out 20% of the sample's trainval list as test (``test_split=0.2``, stratified,
seeded by the run's seed): those images choose nothing. Early stopping and the best checkpoint use
the validation split (10%, disjoint from test); the rest trains. Accuracy is on the test images;
wall time is `train_seconds` (both phases, data loading and evaluation excluded).

``--seeds 0,1,2`` repeats every row with each seed: another split of the sample (another 60 test
images) and another initialisation, order and augmentation. On 60 images one image is 1.7 points,
so one seed says little; the table gives the median and the range over the seeds.

Every run is deterministic (``deterministic=true``: TensorFlow's ops and the pipeline's order and
augmentation), so run again on the same machine a row trains identically, and two modes differ by
their settings alone. Without it two runs of one config differed by up to 5 points here. On a
2-core CPU it about doubles each run's time (MobileNetV2 0.35 fine-tuning: a median of 39 s,
against 21 s without).

    python benchmarks/transfer.py --seeds 0,1,2 --tasks breeds    # every mode: 51 runs, 42 min on 2 CPU cores
    python benchmarks/transfer.py --seeds 0,1,2 --tasks species \
        --modes "feature extraction,fine-tuning,scratch"          # 27 runs, 17 min
    python benchmarks/transfer.py --backbones mobilenetv2-0.35 --tasks breeds --modes scratch

Each run's result is saved to the JSON (default benchmarks/results/transfer.json) as it finishes;
run again and finished runs are skipped (``--again`` retrains them). Prints two Markdown tables:
test accuracy and test loss.
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


# Each backbone's first layer: the "whole backbone" and "layer decay" modes fine-tune from it.
FIRST_LAYER = {"mobilenetv2": "Conv1", "mobilenetv1": "conv1"}
LAYER_DECAY = 0.8  # docs/training.md's choice, by the validation loss of one earlier run


def _whole_backbone(config):
    return dataclasses.replace(config, fine_tune_from=dict(FIRST_LAYER))


def _layer_decay(config):
    return dataclasses.replace(_whole_backbone(config), layer_decay=LAYER_DECAY)


def _distilled(config):
    # pets_distill's soft-label settings; the teacher's run dir is set by the caller.
    _, get_config = load_recipe("pets_distill")
    recipe = get_config()
    return dataclasses.replace(config, distill_temperature=recipe.distill_temperature,
                               distill_alpha=recipe.distill_alpha)


MODES = {"feature extraction": _feature_extraction, "fine-tuning": lambda c: c, "scratch": _scratch,
         "whole backbone": _whole_backbone, "layer decay": _layer_decay, "distilled": _distilled}
# The distilled mode's teacher: pets_distill's, the recipe (fine-tuning) at MobileNetV2 0.5.
TEACHER = ("mobilenetv2-0.5", "fine-tuning")


def row_key(backbone: str, task: str, mode: str, seed: int) -> str:
    return f"{backbone}/{task}/{mode}/seed{seed}"


def teacher_key(task: str, seed: int) -> str:
    """The row whose run teaches the distilled rows of `task` and `seed`."""
    return row_key(TEACHER[0], task, TEACHER[1], seed)


def run_dir_of(run_root: str, key: str) -> str:
    return os.path.join(run_root, key.replace("/", "-").replace(" ", "_"))


def run_config(backbone: str, task: str, mode: str, *, weights_dir: str, data_dir: str, seed: int = 0,
               teacher: str | None = None):
    """The pets recipe's config for one row: its backbone, task, mode and seed (split included);
    `teacher`, the teacher's run dir, for the distilled mode."""
    model, model_args, file_name = BACKBONES[backbone]
    _, get_config = load_recipe("pets_transfer")
    config = apply_overrides(get_config(), [
        f"model={model}", f"model_args={json.dumps(model_args)}",
        f"weights={os.path.join(weights_dir, file_name)}", f"data_dir={data_dir}",
        f"data_args.label={TASKS[task]}", f"data_args.test_split={TEST_SPLIT}", "export=false",
        "tensorboard=false", f"seed={seed}",
        # Two runs of one row train identically, so a difference between modes is not run noise.
        "deterministic=true",
    ])
    config = MODES[mode](config)
    return dataclasses.replace(config, teacher=teacher) if mode == "distilled" else config


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
            "test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"],
            "test_examples": metrics["examples"], "split": metrics["split"],
            "train_seconds": metrics["train_seconds"], "epochs": len(result.history),
            "run_dir": result.run_dir, "finished": datetime.datetime.now().isoformat(timespec="seconds")}


def _cell(runs: list[dict], metric: str = "test_accuracy") -> str:
    runs = [run for run in runs if run.get(metric) is not None]  # rows saved before test_loss lack it
    if not runs:
        return "-"
    show = "{:.1%}".format if metric == "test_accuracy" else "{:.3f}".format
    if len(runs) == 1:
        [run] = runs
        return f"{show(run[metric])} ({run['train_seconds']:.0f} s, {run['epochs']} ep)"
    values = [run[metric] for run in runs]
    seconds = statistics.median(run["train_seconds"] for run in runs)
    return (f"{show(statistics.median(values))} ({show(min(values))}-{show(max(values))}, "
            f"{len(runs)} seeds; {seconds:.0f} s)")


def table(runs: dict, metric: str = "test_accuracy") -> str:
    """One Markdown row per backbone and task: each mode's `metric` (``test_accuracy`` or
    ``test_loss``) and train time, over the seeds run (their median and range, and the median
    time, where there are several)."""
    lines = ["| backbone | task | " + " | ".join(MODES) + " |", "| --- | --- |" + " --- |" * len(MODES)]
    for backbone in BACKBONES:
        for task in TASKS:
            cells = [_cell([run for key, run in sorted(runs.items()) if key.startswith(f"{backbone}/{task}/{mode}/")],
                           metric)
                     for mode in MODES]
            lines.append(f"| {backbone} | {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _chosen(parser, args) -> list[tuple[str, str, str, int]]:
    """The rows asked for, each checked before anything trains; a distilled row's teacher first."""
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers. Received --seeds {args.seeds!r}")
    chosen = []
    for seed in seeds:
        for backbone in args.backbones.split(","):
            for task in args.tasks.split(","):
                for mode in args.modes.split(","):
                    if backbone not in BACKBONES or task not in TASKS or mode not in MODES:
                        parser.error(f"unknown row {backbone}/{task}/{mode}; backbones: {', '.join(BACKBONES)}; "
                                     f"tasks: {', '.join(TASKS)}; modes: {', '.join(MODES)}")
                    if mode == "distilled" and backbone == TEACHER[0]:
                        continue  # the teacher would learn from itself
                    if mode == "distilled":
                        chosen.append((TEACHER[0], task, TEACHER[1], seed))
                    chosen.append((backbone, task, mode, seed))
    return list(dict.fromkeys(chosen))


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
    chosen = _chosen(parser, args)
    results = _load(args.out)
    todo = {row for row in chosen if args.again or row_key(*row) not in results["runs"]}
    # A student loads its teacher's run dir: a teacher whose dir is gone trains again first.
    todo |= {(TEACHER[0], task, TEACHER[1], seed) for _, task, mode, seed in todo
             if mode == "distilled" and not os.path.isdir(run_dir_of(args.run_root, teacher_key(task, seed)))}
    for backbone, task, mode, seed in [row for row in chosen if row in todo]:
        key = row_key(backbone, task, mode, seed)
        run_dir = run_dir_of(args.run_root, key)
        teacher = run_dir_of(args.run_root, teacher_key(task, seed)) if mode == "distilled" else None
        config = run_config(backbone, task, mode, weights_dir=args.weights_dir, data_dir=args.data_dir, seed=seed,
                            teacher=teacher)
        result = train(config, run_dir, resume=os.path.isfile(os.path.join(run_dir, "config.json")),
                       recipe="pets_transfer")
        results["runs"][key] = _row(key, result)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_atomic(args.out, json.dumps(results, indent=2))
        print(f"{key}: {results['runs'][key]['test_accuracy']:.4f} on "
              f"{results['runs'][key]['test_examples']} test images, {results['runs'][key]['train_seconds']:.1f} s",
              flush=True)
    print("Test accuracy:", table(results["runs"]), "Test loss:", table(results["runs"], "test_loss"), sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
