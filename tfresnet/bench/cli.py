"""`tfresnet bench`: run benchmark suites, write one JSON file each, print Markdown tables.

    tfresnet bench --suite all                      # ~15 minutes on 2 CPU cores
    tfresnet bench --suite throughput --models resnet50 --batch-size 64
    tfresnet bench --suite time-to-accuracy --data-dir ../shared/data
    tfresnet bench --smoke                          # every suite in seconds (tests)
    KERAS_BACKEND=jax tfresnet bench --suite throughput   # machines without TensorFlow

Suites (`SUITES`): ``throughput`` (training examples/s of tfresnet and plain Keras side by side,
multiply-adds, achieved FLOP/s and the fraction of a matmul peak measured in the same run),
``time-to-accuracy`` (mnist_convnet against mnist_fast on full MNIST), ``serving`` (the
exported SavedModel's signature against `predict`) and ``scaling`` (examples/s against batch
size, epoch time against dataset size, tuning and training with 1 and 2 local workers).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

# suite -> (module, JSON file name); run(**options) and format_tables(result) in each module.
SUITES = {
    "throughput": ("tfresnet.bench.throughput", "throughput.json"),
    "time-to-accuracy": ("tfresnet.bench.time_to_accuracy", "time_to_accuracy.json"),
    "serving": ("tfresnet.bench.serving", "serving.json"),
    "reproduce": ("tfresnet.bench.reproduce", "reproduce.json"),
    "scaling": ("tfresnet.bench.scaling", "scaling.json"),
}
# Suites `all` leaves out: hours of training (Nielsen's ladder, He et al.'s degradation).
NOT_IN_ALL = ("reproduce",)
# Suites that need TensorFlow itself (tf.data, SavedModel), not just a Keras backend.
NEEDS_TENSORFLOW = ("time-to-accuracy", "serving", "reproduce")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", action="append", choices=[*SUITES, "all"], default=None,
                        help="suite to run (repeatable); default all")
    parser.add_argument("--smoke", action="store_true", help="every suite in seconds, to check the machinery")
    parser.add_argument("--out-dir", default=os.path.join("benchmarks", "results"),
                        help="folder for the JSON files (default benchmarks/results)")
    group = parser.add_argument_group("throughput")
    group.add_argument("--models", nargs="+", default=None,
                       help="models to time (default resnet20 resnet50 mobilenetv2 vgg16)")
    group.add_argument("--batch-size", type=int, default=None,
                       help="one batch size for every model; for reproduce, the Nielsen items' mini-batch "
                            "with eta scaled linearly (default: the book's 10)")
    group.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="TrainConfig override for the tfresnet side, e.g. steps_per_execution=4")
    group.add_argument("--best-batch", action="store_true",
                       help="first find each model's fastest batch, then compare the two sides there")
    group.add_argument("--profile", action="store_true",
                       help="trace one more round of tfresnet's steps with the TensorFlow profiler "
                            "(OUT_DIR/profile/MODEL, for TensorBoard) and tabulate the time per op type")
    group.add_argument("--ceiling", action="store_true",
                       help="also time each model's convolution and dense kernels alone (forward, input and "
                            "weight gradient): the fastest its training step could be")
    group = parser.add_argument_group("time-to-accuracy")
    group.add_argument("--data-dir", default=None,
                       help="folder with mnist.npz (default $TFRESNET_DATA_DIR)")
    group.add_argument("--recipes", nargs=2, default=None, metavar=("BASELINE", "CONTENDER"),
                       help="recipes to compare, by name or file (default mnist_convnet mnist_fast)")
    group.add_argument("--targets", nargs="+", type=float, default=None, help="test accuracies (default 0.99 0.995)")
    group.add_argument("--max-seconds", type=float, default=180.0,
                       help="stop a recipe after this much training (default 180)")
    group.add_argument("--ablation", action="store_true",
                       help="also time the contender once per seed with each of its ABLATIONS taken back")
    group = parser.add_argument_group("reproduce")
    group.add_argument("--rungs", default=None,
                       help="comma-separated: Nielsen rungs 1-7, ch5, degradation (default all)")
    group.add_argument("--seeds", type=int, default=None,
                       help="seeds per rung (default 1); per time-to-accuracy recipe (default 3, --smoke 1)")
    group.add_argument("--run-root", default=None,
                       help="folder for the runs; a run a killed suite left there is resumed (default: a temp dir)")
    group = parser.add_argument_group("serving")
    group.add_argument("--serving-models", nargs="+", default=None, help="default resnet20 mobilenetv2")
    group.add_argument("--serving-batch-sizes", nargs="+", type=int, default=None, help="default 1 64")
    group = parser.add_argument_group("scaling (also --models, --data-dir, --set)")
    group.add_argument("--parts", nargs="+", default=None, choices=("batch", "dataset", "tuning", "training"),
                       help="default all (--smoke: batch dataset)")
    group.add_argument("--batch-sizes", nargs="+", type=int, default=None, help="default 8 16 32 64 128 256")


def _options(suite: str, args) -> dict:
    if suite == "throughput":
        return {"models": args.models, "batch_size": args.batch_size, "overrides": args.overrides,
                "smoke": args.smoke, "best": args.best_batch,
                "profile_dir": os.path.join(args.out_dir, "profile") if args.profile else None, "ceiling": args.ceiling,
                "out_path": os.path.join(args.out_dir, SUITES[suite][1])}
    if suite == "time-to-accuracy":
        options = {"data_dir": args.data_dir, "max_seconds": args.max_seconds, "smoke": args.smoke,
                   "seeds": args.seeds or (1 if args.smoke else 3), "ablation": args.ablation}
        if args.recipes:
            options["recipes"] = tuple(args.recipes)
        if args.targets:
            options["targets"] = tuple(args.targets)
        return options
    if suite == "scaling":
        return {"parts": args.parts, "models": args.models, "batch_sizes": args.batch_sizes,
                "data_dir": args.data_dir, "overrides": args.overrides, "smoke": args.smoke,
                "out_path": os.path.join(args.out_dir, SUITES[suite][1])}
    if suite == "reproduce":
        from tfresnet.bench.reproduce import parse_rungs

        parse_rungs(args.rungs)  # an unknown rung fails before anything trains
        return {"rungs": args.rungs, "seeds": args.seeds or 1, "data_dir": args.data_dir, "smoke": args.smoke,
                "batch_size": args.batch_size, "run_root": args.run_root,
                "out_path": os.path.join(args.out_dir, SUITES[suite][1])}
    options = {"models": args.serving_models, "smoke": args.smoke}
    if args.serving_batch_sizes:
        options["batch_sizes"] = tuple(args.serving_batch_sizes)
    return options


def _check(args) -> list[str]:
    """The suites to run; fails before any runs on a bad choice."""
    if not args.suite or "all" in args.suite:
        suites = [s for s in SUITES if s not in NOT_IN_ALL]
    else:
        suites = list(dict.fromkeys(args.suite))
    for key, value in (("--batch-size", args.batch_size), ("--max-seconds", args.max_seconds),
                       ("--seeds", args.seeds)):
        if value is not None and value <= 0:
            raise ValueError(f"{key} must be > 0. Received {key} {value}")
    for value in args.batch_sizes or ():
        if value <= 0:
            raise ValueError(f"--batch-sizes must be > 0. Received --batch-sizes {value}")
    for target in args.targets or ():
        if not 0 < target <= 1:
            raise ValueError(f"--targets are accuracies in (0, 1]. Received {target}")
    from tfresnet import recipes

    for recipe in args.recipes or ():
        try:
            recipes.locate(recipe)
        except FileNotFoundError as err:
            raise ValueError(f"--recipes: no recipe file {recipe!r}: {err}") from None
    import keras

    if getattr(args, "profile", False) and keras.backend.backend() != "tensorflow":
        raise ValueError("--profile traces with the TensorFlow profiler; it needs KERAS_BACKEND=tensorflow, "
                         f"the backend is {keras.backend.backend()!r}.")
    if keras.backend.backend() != "tensorflow":
        skipped = [s for s in suites if s in NEEDS_TENSORFLOW]
        if skipped and args.suite and "all" not in args.suite:
            raise ValueError(f"suite(s) {skipped} need KERAS_BACKEND=tensorflow; the backend is "
                             f"{keras.backend.backend()!r}.")
        if skipped:
            print(f"note: skipping {', '.join(skipped)}: they need TensorFlow (KERAS_BACKEND="
                  f"{keras.backend.backend()!r})", file=sys.stderr)
        suites = [s for s in suites if s not in NEEDS_TENSORFLOW]
    if args.overrides:
        from tfresnet.training.config import TrainConfig, apply_overrides

        apply_overrides(TrainConfig(), args.overrides)  # a bad key fails now, not after the peak
    return suites


def run(args) -> int:
    """The `tfresnet bench` verb.

    Bad options raise before any suite runs (`tfresnet.cli.run_command` makes them one line and
    exit code 2; a bad ``--set`` is a ConfigError, a ValueError).
    """
    from tfresnet.bench.common import write_result

    suites = _check(args)
    reports = []
    for suite in suites:
        module_name, file_name = SUITES[suite]
        module = importlib.import_module(module_name)
        print(f"== {suite}", flush=True)
        started = time.perf_counter()
        try:
            result = module.run(**_options(suite, args))
        except (ValueError, FileNotFoundError) as err:
            raise ValueError(f"{suite}: {err}") from err  # name the suite: others may have run
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        path = os.path.join(args.out_dir, file_name)
        write_result(path, suite, result)
        reports.append((suite, module.format_tables(result), path, result["wall_seconds"]))
    for suite, tables, path, seconds in reports:
        print(f"\n## {suite} ({seconds:.0f} s; {path})\n\n{tables}")
    return 0


def main(argv: list[str] | None = None, *, suite: str | None = None) -> int:
    """Entry point of `benchmarks/*.py`: the `tfresnet bench` options, with `suite` preset."""
    from tfresnet.cli import ArgumentParser, add_debug_argument, run_command

    parser = ArgumentParser(prog="tfresnet bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    add_debug_argument(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    if suite:
        argv = ["--suite", suite, *argv]
    args = parser.parse_args(argv)
    return run_command(run, args, debug=args.debug)
