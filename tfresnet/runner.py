"""Running recipes: `python recipes/NAME.py` and `tfresnet train recipes/NAME.py`.

A recipe is a Python file with ``get_config() -> TrainConfig``. This module loads it, applies
``--set key=value`` overrides, trains, exports the SavedModel and prints a summary. It sits above
`training` and `export` in the import graph, which is why the export step lives here and not in
the trainer.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Callable

__all__ = ["load_recipe", "run_config", "main", "add_arguments", "run"]


def load_recipe(path: str) -> tuple[str, Callable]:
    """Returns ``(name, get_config)`` of a recipe file.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file defines no ``get_config``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Recipe not found: {path}")
    name = os.path.splitext(os.path.basename(path))[0]
    # Recipes may build on each other (`from pets_transfer import get_config`), as when run
    # with `python recipes/NAME.py`, where their folder is on sys.path.
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"tfresnet_recipe_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
        raise ValueError(f"Recipe {path} defines no get_config() function.")
    return name, module.get_config


def run_config(config, *, recipe: str, run_dir: str | None = None, resume: bool = False):
    """Trains `config`, exports it when asked, prints the summary; returns the `RunResult`."""
    from tfresnet.training.trainer import train

    result = train(config, run_dir, resume=resume, recipe=recipe)
    export_dir = None
    if config.export:
        from tfresnet.export import export_run

        export_dir = export_run(result.run_dir)
    print_summary(recipe, result, export_dir)
    return result


def print_summary(recipe: str, result, export_dir: str | None) -> None:
    m = result.metrics
    rows = [
        ("recipe", recipe),
        ("model", f"{result.model.name} ({result.model.count_params():,} parameters)"),
        ("data", m.get("data")),
    ]
    if "accuracy" in m:
        rows.append((f"{m['split']} accuracy", f"{m['accuracy']:.4f} on {m['examples']:,} images"))
        rows.append((f"{m['split']} loss", f"{m['loss']:.4f}"))
    rows.append(("epochs", m.get("epochs_run")))
    speed = f", {m['examples_per_second']:,.0f} examples/s" if m.get("examples_per_second") else ""
    rows.append(("train time", f"{m['train_seconds']:.1f} s{speed}"))
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
        parser.add_argument("recipe", nargs="?", help="path to a recipe file, e.g. recipes/mnist_resnet.py")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), e.g. --set epochs=3")
    parser.add_argument("--run-dir", default=None, help="output directory (default runs/<recipe>-<time>)")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue a killed run from its last backup")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config and exit without training")


def _execute(name: str, get_config: Callable, args) -> int:
    from tfresnet.training.callbacks import NaNLossError
    from tfresnet.training.config import ConfigError, TrainConfig, apply_overrides

    try:
        if args.resume:
            if args.overrides:
                raise ConfigError("--resume continues a run as it was configured; drop --set.")
            with open(os.path.join(args.resume, "config.json")) as f:
                config = TrainConfig.from_dict(json.load(f))
            run_dir = args.resume
        else:
            config = apply_overrides(get_config(), args.overrides)
            run_dir = args.run_dir
        config.validate()
        if args.print_config:
            print(config.to_json())
            return 0
        run_config(config, recipe=name, run_dir=run_dir, resume=bool(args.resume))
    except (ConfigError, FileExistsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NaNLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    return 0


def main(get_config: Callable, argv: list[str] | None = None, *, name: str | None = None) -> int:
    """Entry point of a recipe file: ``raise SystemExit(main(get_config))``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    parser = argparse.ArgumentParser(prog=f"{name}", description=(get_config.__doc__ or "").strip())
    add_arguments(parser, with_recipe=False)
    return _execute(name, get_config, parser.parse_args(argv))


def run(args) -> int:
    """The `tfresnet train` verb."""
    if args.recipe is None and not args.resume:
        print("error: give a recipe file, or --resume RUN_DIR", file=sys.stderr)
        return 2
    if args.recipe is None:
        with open(os.path.join(args.resume, "config.json")) as f:
            json.load(f)  # fail early on a broken run directory
        name, get_config = os.path.basename(os.path.normpath(args.resume)), None
    else:
        try:
            name, get_config = load_recipe(args.recipe)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return _execute(name, get_config, args)
