"""Lazy attributes for tfresnet's packages (PEP 562): a public name of a package imports the
submodule that defines it on first use, so that importing the package itself stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, names: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package with lazy public names.

    Use in a package's ``__init__``: ``__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())``.

    Args:
        package: the package's ``__name__``.
        names: public name -> the submodule of `package` that defines it.
        namespace: the package's ``globals()``, listed by ``dir()`` with `names`.

    Returns:
        ``(__getattr__, __dir__)``.
    """

    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
