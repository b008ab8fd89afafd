"""`tfresnet list-models`: each registered model's family, default input, parameters and multiply-adds.

The figures come from a table computed once and shipped as data (``model_table.json`` beside this
module), so the command answers without importing Keras or TensorFlow. Counting them means
building every model at its default input (`tfresnet.models.profile`): 24-29 s the first time,
over three minutes on two busy cores; the figures change only when a builder does.

Keeping the table true:

- ``python scripts/model_table.py --write`` rebuilds every model and rewrites the table;
  ``--check`` (``make model-table-check``) rebuilds them all and lists every difference.
- ``tests/test_model_table.py``, in ``make test``: the table lists exactly the registered
  models, in the registry's order, with their families and default inputs, and a sample built
  from different builders matches its row.
- ``tfresnet list-models --build`` counts from the built models instead of the table.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import Path

__all__ = ["TABLE_FILE", "COLUMNS", "read_table", "write_table", "matching", "differences", "format_table",
           "add_arguments", "run"]

TABLE_FILE = Path(__file__).with_name("model_table.json")
# The fields of a row, in the table's and the output's order.
COLUMNS = ("name", "family", "input_shape", "params", "macs")


def read_table(path: Path = TABLE_FILE) -> list[dict]:
    """The rows of the table, in the registry's order (`tfresnet.list_models()`)."""
    return json.loads(path.read_text(encoding="utf-8"))["models"]


def write_table(rows: list[dict], path: Path = TABLE_FILE) -> None:
    """Writes `rows` (from `tfresnet.models.profile.build_table`), one model a line."""
    from tfresnet.files import write_atomic

    about = ("Parameters and multiply-adds of every registered model at its default input, counted "
             "by tfresnet.models.profile; rewritten by `python scripts/model_table.py --write`.")
    lines = [json.dumps({key: row[key] for key in COLUMNS}) for row in rows]
    text = "{\n" + f' "about": {json.dumps(about)},\n "models": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
    write_atomic(str(path), text)


def matching(rows: list[dict], pattern: str | None) -> list[dict]:
    """The rows whose name matches `pattern` or whose family contains it.

    A name matches as in `tfresnet.list_models`: a shell wildcard (``vgg1?``) or, without one,
    a substring. A family substring also finds the plain twins: ``resnet`` lists ``plain20``.
    """
    if not pattern:
        return list(rows)
    wildcard = any(c in pattern for c in "*?[")

    def name_matches(name: str) -> bool:
        return fnmatch.fnmatchcase(name, pattern) if wildcard else pattern in name

    return [row for row in rows if name_matches(row["name"]) or pattern in row["family"]]


def differences(built: list[dict], table: list[dict]) -> list[str]:
    """One line per model whose built row differs from the table's, or that only one side has."""
    by_name = {row["name"]: row for row in table}
    lines = []
    for row in built:
        old = by_name.pop(row["name"], None)
        if old is None:
            lines.append(f"{row['name']}: not in the table")
            continue
        lines += [f"{row['name']}: {key} is {row[key]!r}, the table says {old[key]!r}"
                  for key in COLUMNS if row[key] != old[key]]
    return lines + [f"{name}: in the table, not built" for name in by_name]


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_table(rows: list[dict]) -> str:
    """The rows as aligned text columns, each as wide as its widest entry."""
    cells = [(row["name"], row["family"], "x".join(str(d) for d in row["input_shape"]),
              f"{row['params']:,}", _human(row["macs"])) for row in rows]
    header = ("name", "family", "input", "params", "MACs")
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    align = ("<", "<", "<", ">", ">")

    def line(values) -> str:
        return "  ".join(f"{v:{a}{w}}" for v, a, w in zip(values, align, widths)).rstrip()

    return "\n".join([line(header), "-" * len(line(header)), *(line(c) for c in cells)])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``tfresnet list-models`` arguments."""
    parser.add_argument("pattern", nargs="?", default=None,
                        help="substring or shell wildcard of model names, or a family substring, "
                             "e.g. 'resnet' or 'vgg1?'")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument("--build", action="store_true",
                        help="count from the built models instead of the table (seconds per model)")


def run(args: argparse.Namespace) -> int:
    """The ``tfresnet list-models`` verb; 1 when nothing matches."""
    if args.build:
        from tfresnet.models.profile import build_table

        rows = build_table(args.pattern)
    else:
        rows = matching(read_table(), args.pattern)
    if not rows:
        known = ", ".join(row["name"] for row in read_table())
        print(f"No model matches {args.pattern!r}. Known: {known}")
        return 1
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0
