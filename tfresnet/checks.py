"""Argument checks that echo the bad value: one copy for every public function that takes a count or a size.

`number(value, "eps", allow_zero=True)` raises ``ValueError("eps must be a finite number >= 0.
Received eps=-1")``; ``number(n, "steps", integer=True)`` asks for an integer >= 1. Booleans are
refused although Python counts them as integers: ``samples=True`` is a mistake, not 1.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["number"]


def number(value, what: str, *, integer: bool = False, allow_zero: bool = False, optional: bool = False,
           unit: str = ""):
    """`value` as an int or float, checked to be finite and positive (or >= 0).

    Args:
        value: the argument.
        what: its name, as the caller knows it (``"max_pixels"``, ``"--examples"``).
        integer: require an integer (the bound is then >= 1, or >= 0 with `allow_zero`).
        allow_zero: accept 0.
        optional: accept None (returned as is).
        unit: words after the bound in the message, e.g. ``" in pixel units"``.

    Raises:
        ValueError: naming `what`, the bound and the value received.
    """
    if optional and value is None:
        return None
    kind = numbers.Integral if integer else numbers.Real
    ok = (not isinstance(value, bool) and isinstance(value, kind) and math.isfinite(value)
          and (value >= 0 if allow_zero else value > 0))
    if not ok:
        bound = ">= 0" if allow_zero else (">= 1" if integer else "> 0")
        kind_name = "an integer" if integer else "a finite number"
        raise ValueError(f"{what} must be {kind_name} {bound}{' or None' if optional else ''}{unit}. "
                         f"Received {what}={value!r}")
    return int(value) if integer else float(value)
