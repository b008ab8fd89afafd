"""``tfresnet tune RECIPE``: search a recipe's `tune` space, print the results, export the best.

    tfresnet tune tune_mnist --max-trials 6
    tfresnet tune tune_mnist --tuner bayesian --max-trials 20 --run-dir runs/mnist-search
    tfresnet tune tune_mnist --workers 2 --run-dir runs/mnist-search   # 2 local workers

The same command again continues the search in its ``--run-dir`` (after a kill -9 too). The
export step lives here, above both `tuning` and `export` in the import graph (as in
`tfresnet.training.cli` for training).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

__all__ = ["TUNER_NAMES", "add_arguments", "run", "worker_command"]


# The keys of `tfresnet.tuning.tuners.TUNERS` (a test checks they agree), spelled out so that
# `tfresnet tune --help` answers without importing KerasTuner and TensorFlow.
TUNER_NAMES = ("random", "bayesian", "grid", "hyperband")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``tfresnet tune`` arguments."""
    parser.add_argument("recipe", help="a recipe with a tune section: a packaged name (tune_mnist) or a file's path")
    parser.add_argument("--tuner", choices=TUNER_NAMES, default="random",
                        help="search algorithm (default random)")
    parser.add_argument("--max-trials", type=int, default=10,
                        help="trials in all, counting those a continued search already ran (default 10)")
    parser.add_argument("--run-dir", default=None,
                        help="search directory (default runs/<recipe>-tune-<time>); an existing "
                             "search there is continued")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), e.g. --set epochs=3 or "
                             "--set 'tune.lr={\"min\": 1e-4, \"max\": 1e-2, \"sampling\": \"log\"}'")
    parser.add_argument("--workers", type=int, default=0,
                        help="run trials in N local worker processes (KerasTuner's chief/worker mode)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds a distributed search may take before it stops (it stays resumable)")
    parser.add_argument("--rpc-timeout", type=float, default=600.0,
                        help="seconds a worker waits for the chief's oracle to answer (default 600)")
    parser.add_argument("--max-consecutive-failed", type=int, default=3,
                        help="failed trials in a row that stop the search (default 3)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config and exit without searching")


def worker_command(args: argparse.Namespace, run_dir: str) -> list[str]:
    """The command a local worker runs: this search's own arguments, without ``--workers``."""
    from tfresnet import recipes

    command = [sys.executable, "-m", "tfresnet", "tune", recipes.locate(args.recipe).argument,
               "--tuner", args.tuner, "--max-trials", str(args.max_trials),
               "--run-dir", os.path.abspath(run_dir), "--rpc-timeout", str(args.rpc_timeout),
               "--max-consecutive-failed", str(args.max_consecutive_failed)]
    for item in args.overrides:
        command += ["--set", item]
    return command


def _summary(result, export_dir: str | None, objective: str) -> list[tuple[str, object]]:
    from tfresnet.tuning.tuners import PROJECT_NAME  # loaded already: the search has run

    rows = [("run dir", result.run_dir)]
    frame = result.results
    if not frame.empty:
        counts = frame["status"].value_counts().to_dict()
        rows.append(("trials", ", ".join(f"{n} {status.lower()}" for status, n in counts.items())))
    rows.append(("results", os.path.join(result.run_dir, "results.csv")))
    rows.append(("plot", os.path.join(result.run_dir, "results.png")))
    if result.best:
        b = result.best
        # Trial and epoch numbers as in the log and results.csv (`tfresnet.tuning.search`).
        rows.append(("best trial", f"{b['trial']} ({b['model']}, {b['parameters']:,} parameters; "
                                   f"{PROJECT_NAME}/trial_{b['trial_id']})"))
        rows.append((f"best {objective}", f"{b[objective]:.4f} (epoch {b['best_epoch']})"))
        rows.append((f"{b['split']} accuracy", f"{b['accuracy']:.4f} on {b['examples']:,} images"))
        rows.append(("best model", result.best_dir))
    if export_dir:
        rows.append(("SavedModel", export_dir))
    rows.append(("wall time", f"{result.seconds:.1f} s"))
    return rows


def run(args: argparse.Namespace) -> int:
    """The ``tfresnet tune`` verb. Exit codes: 0 done, 1 stopped early.

    A bad option, recipe or config raises (`tfresnet.cli.run_command` makes it one line and
    exit code 2).
    """
    from tfresnet.training.cli import load_recipe
    from tfresnet.training.config import ConfigError, apply_overrides

    for option, value, least in (("--max-trials", args.max_trials, 1), ("--workers", args.workers, 0),
                                 ("--max-consecutive-failed", args.max_consecutive_failed, 1)):
        if value < least:
            raise ConfigError(f"{option} must be >= {least}. Received {option} {value}")
    for option, value in (("--timeout", args.timeout), ("--rpc-timeout", args.rpc_timeout)):
        if value is not None and not value > 0:
            raise ConfigError(f"{option} must be > 0 seconds. Received {option} {value}")
    start = time.perf_counter()
    name, get_config = load_recipe(args.recipe)
    config = apply_overrides(get_config(), args.overrides).validate()
    if args.print_config:
        print(config.to_json())
        return 0
    from tfresnet.tuning.search import new_search_dir, tune

    run_dir = args.run_dir or new_search_dir(name)  # unique even within one second
    result = tune(
        config, run_dir, tuner=args.tuner, max_trials=args.max_trials, recipe=name,
        workers=args.workers, worker_command=worker_command(args, run_dir) if args.workers else None,
        timeout=args.timeout, rpc_timeout=args.rpc_timeout,
        max_consecutive_failed_trials=args.max_consecutive_failed,
    )
    if result.role == "worker":
        return 0
    export_dir = None
    if result.best_dir and config.export:
        from tfresnet.export import export_run

        export_dir = export_run(result.best_dir)
    result.seconds = time.perf_counter() - start
    print("\n" + result.table())
    print("\n" + "=" * 60)
    rows = _summary(result, export_dir, config.monitor)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("=" * 60)
    if result.error:
        print(f"error: the search stopped early: {result.error}", file=sys.stderr)
        return 1
    if not result.best:
        print("error: no trial completed; see the reason column above.", file=sys.stderr)
        return 1
    return 0
