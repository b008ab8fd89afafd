"""The `tfresnet` command line: one sub-command per verb, each defined next to the code it runs.

Each entry of `COMMANDS` names a module with ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their command runs, so `tfresnet --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# command -> (module, one-line help)
COMMANDS = {
    "train": ("tfresnet.runner", "train a recipe: tfresnet train recipes/NAME.py [--set key=value ...]"),
    "list-models": ("tfresnet.models.profile", "list registered models with parameters and multiply-adds"),
    "scan-data": ("tfresnet.data.scan", "validate an image dataset folder and report what would be skipped"),
    "export": ("tfresnet.export", "export a trained run as SavedModel, TFLite or ONNX"),
    "tune": ("tfresnet.tuning.cli", "search a recipe's tune space: tfresnet tune recipes/NAME.py [--tuner random]"),
    "bench": ("tfresnet.bench.cli", "benchmarks: tfresnet bench [--suite throughput|time-to-accuracy|serving|all]"),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tfresnet` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="tfresnet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, (_module, help_text) in COMMANDS.items():
        sub.add_parser(command, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])  # prints help or the unknown-command error
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    command_parser = argparse.ArgumentParser(prog=f"tfresnet {argv[0]}", description=COMMANDS[argv[0]][1])
    module.add_arguments(command_parser)
    args = command_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
