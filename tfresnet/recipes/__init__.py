"""The recipes that ship with tfresnet, one module each, found by name: ``tfresnet train mnist_resnet``.

A recipe is a short module with ``get_config() -> TrainConfig`` (big_vision's config files are the
pattern); its docstring gives the commands that run it and what they measured. ``tfresnet
recipes`` lists them. Wherever a command takes a recipe (`train`, `tune`, `lr-find`, `bench
--recipes`), it takes either a name from this package or the path of a recipe file of one's own::

    tfresnet train mnist_resnet --set smoke=true       # tfresnet/recipes/mnist_resnet.py
    tfresnet train ./my_recipe.py                      # any file with get_config()
    python -m tfresnet.recipes.mnist_resnet            # the same as tfresnet train mnist_resnet

A bare name (no folder, no ``.py``) is always a packaged recipe, even where a file of that name
exists. Recipes build on each other by package import (``from tfresnet.recipes.pets_transfer
import get_config``). This package's own module imports no recipe and nothing of TensorFlow:
names and first docstring lines are read from the files, so ``tfresnet recipes`` answers at once.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
from importlib import resources
from typing import NamedTuple

__all__ = ["Recipe", "names", "docstring", "summary", "locate", "add_arguments", "run"]

_NAME = re.compile(r"[A-Za-z_]\w*")


class Recipe(NamedTuple):
    """Where a recipe argument points: a packaged module or a file (the other field is None).

    Attributes:
        name: the recipe's name (the module's, or the file's stem): runs are named after it.
        module: ``tfresnet.recipes.NAME`` for a packaged recipe.
        path: the file's path, as given, for a recipe file.
    """

    name: str
    module: str | None
    path: str | None

    @property
    def argument(self) -> str:
        """The argument that finds this recipe again from any folder (worker processes get it)."""
        return self.name if self.module else os.path.abspath(self.path)


def names() -> list[str]:
    """The packaged recipes' names, sorted."""
    return sorted(entry.name[:-3] for entry in resources.files(__name__).iterdir()
                  if entry.name.endswith(".py") and not entry.name.startswith("_"))


def docstring(name: str) -> str:
    """A packaged recipe's module docstring, read without running the recipe."""
    source = resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")
    return (ast.get_docstring(ast.parse(source)) or "").strip()


def summary(name: str) -> str:
    """The first line of a packaged recipe's docstring."""
    return next(iter(docstring(name).splitlines()), "")


def locate(recipe: str) -> Recipe:
    """Resolves a recipe argument: a packaged recipe's name, or a recipe file's path.

    Raises:
        FileNotFoundError: for an unknown name (the closest names are given) or a missing file.
    """
    known = names()
    if _NAME.fullmatch(recipe):
        if recipe in known:
            return Recipe(recipe, f"{__name__}.{recipe}", None)
        close = difflib.get_close_matches(recipe, known, n=3, cutoff=0.5)
        hint = f"Closest names: {', '.join(close)}" if close else f"Packaged recipes: {', '.join(known)}"
        raise FileNotFoundError(f"Unknown recipe name {recipe!r}. {hint} (tfresnet recipes lists them; "
                                f"a recipe file needs its path, e.g. ./{recipe}.py).")
    if not os.path.isfile(recipe):
        stem = os.path.splitext(os.path.basename(recipe))[0]
        hint = f" (the packaged recipe is named without .py: {stem})" if stem in known and "/" not in recipe else ""
        raise FileNotFoundError(f"Recipe not found: {recipe}{hint}")
    return Recipe(os.path.splitext(os.path.basename(recipe))[0], None, recipe)


def add_arguments(parser) -> None:
    """Adds the ``tfresnet recipes`` arguments."""
    parser.add_argument("name", nargs="?", default=None,
                        help="a recipe's name: print its whole docstring (its commands and measured results)")


def run(args) -> int:
    """The ``tfresnet recipes`` verb: each packaged recipe's name and first docstring line, or
    one recipe's docstring."""
    if args.name is not None:
        found = locate(args.name)
        if found.module is None:
            raise ValueError(f"{args.name!r} is a file, not a packaged recipe's name.")
        print(docstring(found.name))
        return 0
    known = names()
    width = max(len(name) for name in known)
    for name in known:
        print(f"{name:<{width}}  {summary(name)}")
    print("\nRun one with `tfresnet train NAME` (`tfresnet tune tune_mnist` for the search); "
          "`tfresnet recipes NAME` shows its commands and measured results.")
    return 0
