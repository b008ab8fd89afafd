"""``tfresnet train RECIPE`` and ``python recipes/NAME.py``: run a recipe.

    tfresnet train mnist_fast --set epochs=3                  # a packaged recipe, by name
    tfresnet train ./my_recipe.py --print-config              # a recipe file
    tfresnet train --resume runs/mnist_fast-20240101-120000   # continue a killed run

A recipe is a module of `tfresnet.recipes` or a Python file, with ``get_config() -> TrainConfig``.
This module loads it, applies ``--set key=value`` overrides, trains, exports the SavedModel and
prints a summary. Like `tfresnet.tuning.cli`, it sits above the trainer and `export` in the
import graph, which is why the export step lives here and not in the trainer.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import os
import sys
from collections.abc import Callable

__all__ = ["load_recipe", "recipe_script", "run_config", "main", "add_arguments", "run"]


def load_recipe(recipe: str) -> tuple[str, Callable]:
    """Returns ``(name, get_config)`` of a recipe: a packaged recipe's name or a recipe file's path.

    A bare name (``mnist_resnet``) is a module of `tfresnet.recipes` (``tfresnet recipes`` lists
    them); anything else is a path. A recipe is Python code and runs with the caller's rights:
    load only recipes you trust.

    A recipe file may build on a sibling file (``from my_base import get_config``), as when run
    with ``python my_recipe.py``, where its folder is on ``sys.path``. Here the folder is on
    ``sys.path`` only while the recipe runs (its import, and each call of the returned
    ``get_config``), so that its files cannot shadow other modules afterwards.

    Raises:
        FileNotFoundError: for an unknown name or a missing file.
        ValueError: if the recipe defines no ``get_config``.
    """
    from tfresnet import recipes

    found = recipes.locate(recipe)
    if found.module is not None:
        return found.name, _get_config(importlib.import_module(found.module), recipe)
    path, name = found.path, found.name
    folder = os.path.dirname(os.path.abspath(path))
    spec = importlib.util.spec_from_file_location(f"tfresnet_recipe_{name}", path)
    module = importlib.util.module_from_spec(spec)
    with _on_sys_path(folder):
        spec.loader.exec_module(module)
    recipe_get_config = _get_config(module, path)

    @functools.wraps(recipe_get_config)
    def get_config(*args, **kwargs):
        with _on_sys_path(folder):  # for recipes that import a sibling inside get_config()
            return recipe_get_config(*args, **kwargs)

    return name, get_config


def _get_config(module, recipe: str) -> Callable:
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise ValueError(f"Recipe {recipe} defines no get_config() function.")
    return get_config


def recipe_script(name: str, caller: str) -> Callable:
    """A checkout's ``recipes/NAME.py``: ``get_config = recipe_script("NAME", __name__)``.

    Returns the packaged recipe's ``get_config``; run as a script (`caller` is ``"__main__"``),
    trains it as ``tfresnet train NAME`` does and exits with `main`'s code.
    """
    _, get_config = load_recipe(name)
    if caller == "__main__":
        raise SystemExit(main(get_config, name=name))
    return get_config


@contextlib.contextmanager
def _on_sys_path(folder: str):
    """Puts `folder` first on ``sys.path`` for the block, unless it is there already."""
    if folder in sys.path:
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # the recipe took it off itself
            sys.path.remove(folder)


def run_config(config, *, recipe: str | None, run_dir: str | None = None, resume: bool = False):
    """Trains `config`, exports it when asked, prints the summary; returns the `RunResult`."""
    from tfresnet.training import multiworker
    from tfresnet.training.trainer import train

    result = train(config, run_dir, resume=resume, recipe=recipe)
    if not multiworker.writes_run_dir(config):  # the chief exports and reports
        print(f"worker {multiworker.task().index} finished.")
        return result
    export_dir = None
    if result.finished_before:  # reported as it was: nothing is exported again
        from tfresnet.runs import RunDir

        saved = RunDir(result.run_dir).file(RunDir.EXPORT, "saved_model")
        export_dir = saved if os.path.isdir(saved) else None
    elif config.export:
        from tfresnet.export import export_run

        export_dir = export_run(result.run_dir)
    print_summary(recipe, result, export_dir)
    return result


def print_summary(recipe: str, result, export_dir: str | None) -> None:
    m = result.metrics
    rows = [
        ("recipe", m.get("recipe") or recipe),
        ("model", f"{result.model.name} ({result.model.count_params():,} parameters)"),
        ("data", m.get("data")),
    ]
    if "accuracy" in m:
        rows.append((f"{m['split']} accuracy", f"{m['accuracy']:.4f} on {m['examples']:,} images"))
        rows.append((f"{m['split']} loss", f"{m['loss']:.4f}"))
    rows.append(("epochs", m.get("epochs_run")))
    speed = f", {m['examples_per_second']:,.0f} examples/s" if m.get("examples_per_second") else ""
    rows.append(("train time", f"{m['train_seconds']:.1f} s{speed}" + (" (all attempts)" if result.finished_before
                                                                       else "")))
    rows.append(("run dir", result.run_dir))
    if export_dir:
        rows.append(("SavedModel", export_dir))
    width = max(len(k) for k, _ in rows)
    print("\n" + "=" * 60)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("=" * 60)


def add_arguments(parser: argparse.ArgumentParser, *, with_recipe: bool = True) -> None:
    if with_recipe:
        parser.add_argument("recipe", nargs="?",
                            help="a packaged recipe's name (tfresnet recipes lists them) or a recipe file's path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), e.g. --set epochs=3")
    parser.add_argument("--run-dir", default=None, help="output directory (default runs/<recipe>-<time>)")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue a killed run from its last backup")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config and exit without training")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="train on N worker processes of this machine (MultiWorkerMirroredStrategy "
                             "on loopback ports); batch_size stays the global batch")


def _resumed_config(run_dir: str):
    """The config a run directory was started with (its ``config.json``), for ``--resume``.

    Raises:
        FileNotFoundError: if `run_dir` is not a folder, or holds no ``config.json``.
        ConfigError: if its ``config.json`` is not a valid config.
    """
    from tfresnet.runs import RunDir
    from tfresnet.training.config import ConfigError

    run = RunDir(run_dir)
    if not run.exists():
        raise FileNotFoundError(f"--resume: run directory {run_dir!r} does not exist.")
    if not run.is_configured():
        raise FileNotFoundError(f"--resume: {run_dir!r} holds no config.json, so it is not a run directory.")
    try:
        return run.config
    except ConfigError as err:
        raise ConfigError(f"--resume: {err}") from None


def _execute(name: str, get_config: Callable | None, args, resumed=None) -> int:
    """Resolves and trains the config; bad input raises (see `tfresnet.cli.run_command`).

    `resumed` is the config of ``--resume``'s run directory, when the caller read it already.
    The trainer checks the config; here it is checked only for ``--print-config`` and for
    ``--workers``, which never reach the trainer in this process.
    """
    from tfresnet.training.config import ConfigError, apply_overrides

    if args.resume:
        if args.overrides:
            raise ConfigError("--resume continues a run as it was configured; drop --set.")
        config = resumed or _resumed_config(args.resume)
        run_dir = args.resume
    else:
        config = apply_overrides(get_config(), args.overrides)
        run_dir = args.run_dir
    if args.print_config:
        print(config.validate().to_json())
        return 0
    if getattr(args, "workers", None) is not None:
        return _launch_workers(name, config.validate(), args, run_dir)
    from tfresnet.training import multiworker

    multiworker.guard_parent()  # a worker started by --workers ends with its launcher
    return _train_reporting_failures(config, name=None if args.resume else name, run_dir=run_dir,
                                     resume=bool(args.resume))


def _train_reporting_failures(config, *, name: str | None, run_dir: str | None, resume: bool) -> int:
    """`run_config`, with the failures that are not bad input as one line and an exit code."""
    from tfresnet.files import WriteError
    from tfresnet.training import multiworker
    from tfresnet.training.callbacks import NaNLossError

    try:
        run_config(config, recipe=name, run_dir=run_dir, resume=resume)
    except NaNLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except WriteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 5
    except Exception as err:
        lost = multiworker.lost_peer(err, config)
        if lost is None:
            raise
        print(f"error: {lost}", file=sys.stderr)
        return 4
    return 0


def _launch_workers(name: str, config, args, run_dir: str | None) -> int:
    """``--workers N``: the run as N local workers (`tfresnet.training.multiworker.launch`).

    Returns 0 when every worker finished, 1 after one line saying which worker failed.
    """
    from tfresnet.runs import new_run_dir
    from tfresnet.training import multiworker
    from tfresnet.training.config import ConfigError

    if args.workers < 2:
        raise ConfigError(f"--workers must be >= 2 (without it the run uses one process). "
                          f"Received --workers {args.workers}")
    if os.environ.get(multiworker.ENV_TF_CONFIG):
        raise ConfigError("--workers makes each worker's TF_CONFIG; unset TF_CONFIG (set it only "
                          "when each machine runs its own worker, without --workers).")
    if config.strategy not in (None, "multiworker"):
        raise ConfigError(f"--workers trains with strategy='multiworker'. Received "
                          f"strategy={config.strategy!r}")
    if args.resume:
        if config.strategy != "multiworker":
            raise ConfigError(f"--workers: {args.resume} was trained with strategy="
                              f"{config.strategy!r}; resume it without --workers.")
        worker_args = ["--resume", run_dir]
    else:
        recipe = getattr(args, "recipe", None) or os.path.abspath(sys.argv[0])  # python recipes/X.py
        run_dir = run_dir or new_run_dir(name)
        worker_args = [recipe, *(f"--set={o}" for o in args.overrides), "--set=strategy=multiworker",
                       "--run-dir", run_dir]
    log_dir = os.path.join(run_dir, "logs")
    print(f"Starting {args.workers} workers on 127.0.0.1 (worker 0 writes {run_dir}; the others "
          f"log to {log_dir}).", flush=True)
    try:
        multiworker.launch([sys.executable, "-m", "tfresnet", "train", *worker_args], args.workers,
                           log_dir=log_dir)
    except multiworker.WorkerFailedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main(get_config: Callable, argv: list[str] | None = None, *, name: str | None = None) -> int:
    """Entry point of a recipe file: ``raise SystemExit(main(get_config))``.

    Returns the exit code: 0, 2 after a one-line ``error: ...`` for a bad option, ``--set`` value
    or run directory (``--debug`` shows the traceback), 3 when the loss became NaN, 4 when a
    multi-worker run lost a worker (1 from the ``--workers`` launcher), 5 when a file could not
    be written (disk full: the run's files are intact, and ``--resume`` continues it).
    """
    from tfresnet.cli import ArgumentParser, add_debug_argument, run_command

    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    parser = ArgumentParser(prog=f"{name}", description=(get_config.__doc__ or "").strip())
    add_arguments(parser, with_recipe=False)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    return run_command(lambda a: _execute(name, get_config, a), args, debug=args.debug)


def run(args) -> int:
    """The `tfresnet train` verb."""
    if args.recipe is None and not args.resume:
        raise ValueError("give a recipe file, or --resume RUN_DIR")
    if args.recipe is None:
        # The trainer names a resumed run after the recipe it was started from.
        return _execute(None, None, args, resumed=_resumed_config(args.resume))
    name, get_config = load_recipe(args.recipe)
    return _execute(name, get_config, args)
