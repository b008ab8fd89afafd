"""The `tfresnet` command line: one sub-command per verb, each defined next to the code it runs.

Each entry of `COMMANDS` names a module with ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their command runs, so `tfresnet --help` stays fast.

Errors are handled here, once for every command (`run_command`): a mistake the user can fix
(a bad path, option or ``--set`` value) is one line ``error: ...`` on stderr and exit code 2;
``tfresnet --debug COMMAND ...`` shows the traceback instead. Commands let such errors propagate.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Callable

from tfresnet import __version__

__all__ = ["COMMANDS", "USAGE_ERRORS", "ArgumentParser", "add_debug_argument", "main", "run_command"]

# Errors that mean "this input cannot be used": one line and exit code 2 (ConfigError and the
# data loaders' DataNotFoundError are a ValueError and a FileNotFoundError).
USAGE_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError,
                IsADirectoryError, PermissionError)

# command -> (module, one-line help)
COMMANDS = {
    "train": ("tfresnet.training.cli", "train a recipe: tfresnet train NAME|FILE.py [--set key=value ...]"),
    "recipes": ("tfresnet.recipes", "list the packaged recipes, or show one: tfresnet recipes [NAME]"),
    "list-models": ("tfresnet.model_table", "list registered models with parameters and multiply-adds"),
    "scan-data": ("tfresnet.data.scan", "validate an image dataset folder and report what would be skipped"),
    "export": ("tfresnet.export", "export a trained run as SavedModel, TFLite or ONNX"),
    "tune": ("tfresnet.tuning.cli", "search a recipe's tune space: tfresnet tune NAME|FILE.py [--tuner random]"),
    "inspect": ("tfresnet.inspect.cli", "see inside a model: gradients, features, ideal images, attacks, Grad-CAM"),
    "bench": ("tfresnet.bench.cli", "benchmarks: tfresnet bench [--suite throughput|time-to-accuracy|serving|all]"),
    "predict": ("tfresnet.using.predict", "top-K classes of image files: tfresnet predict RUN_DIR|EXPORT_DIR IMAGE..."),
    "evaluate": ("tfresnet.using.evaluate", "a run's model on a dataset: tfresnet evaluate RUN_DIR --data NAME"),
    "lr-find": ("tfresnet.training.lr_find", "learning-rate range test: tfresnet lr-find NAME|FILE.py"),
}


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one line, ``error: ... (see PROG --help)``."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """Adds ``--debug`` (show an error's traceback) to a command's parser."""
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of one line")


def run_command(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace, *,
                debug: bool = False) -> int:
    """Runs ``run(args)`` and returns its exit code; a `USAGE_ERRORS` error becomes one line.

    Args:
        run: a command's ``run(args)``.
        args: its parsed arguments.
        debug: let the error propagate, with its traceback.

    Returns:
        ``run``'s code (None counts as 0), or 2 after printing ``error: MESSAGE`` to stderr. A
        TypeError, or an error raised outside tfresnet's own code (inside Keras, say), may be a
        bug rather than a bad input, so its line also says how to see the traceback.
    """
    try:
        return int(run(args) or 0)
    except USAGE_ERRORS as err:
        if debug:
            raise
        message = str(err) or type(err).__name__
        if isinstance(err, TypeError) or not _raised_by_tfresnet(err):
            message = f"{type(err).__name__}: {message} (rerun with --debug for the traceback)"
        print(f"error: {message}", file=sys.stderr)
        return 2


def _raised_by_tfresnet(err: BaseException) -> bool:
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith("tfresnet")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tfresnet` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = ArgumentParser(prog="tfresnet", description=__doc__.splitlines()[0])
    add_debug_argument(parser)
    parser.add_argument("--version", action="version", version=f"tfresnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, (_module, help_text) in COMMANDS.items():
        sub.add_parser(command, help=help_text, add_help=False)
    debug = bool(argv) and argv[0] == "--debug"
    while argv and argv[0] == "--debug":
        argv.pop(0)
    try:
        if not argv or argv[0] not in COMMANDS:
            parser.parse_args(argv or ["--help"])  # prints help or the unknown-command error
            return 2
        module = importlib.import_module(COMMANDS[argv[0]][0])
        command_parser = ArgumentParser(prog=f"tfresnet {argv[0]}", description=COMMANDS[argv[0]][1])
        module.add_arguments(command_parser)
        with contextlib.suppress(argparse.ArgumentError):  # a command with its own --debug keeps it
            add_debug_argument(command_parser)  # so that `tfresnet X ... --debug` works too
        args = command_parser.parse_args(argv[1:])
    except SystemExit as done:  # --help, or an argparse error already printed
        return done.code if isinstance(done.code, int) else 0
    return run_command(module.run, args, debug=debug or bool(getattr(args, "debug", False)))


if __name__ == "__main__":
    sys.exit(main())
