"""Values typed by a dataclass field's hint: the checks and the ``--set`` parsing behind `TrainConfig`.

A field's choices are its hint's: ``Literal["sgd", "adam"]`` allows those strings and nothing
else, ``int | None`` an int or None, so a choice list is never written a second time.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from typing import Any, Literal

__all__ = ["ConfigError", "allowed", "choices", "check_type", "parse_value", "parse_loose", "is_number",
           "unknown_key_message"]


class ConfigError(ValueError):
    """A config key or value that cannot train; raised before any training starts."""


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def allowed(hint) -> tuple[list, list]:
    """Splits a type hint into (python types, literal values)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        kinds, literals = [], []
        for arg in typing.get_args(hint):
            k, lit = allowed(arg)
            kinds += k
            literals += lit
        return kinds, literals
    if origin is Literal:
        return [], list(typing.get_args(hint))
    if hint is type(None):
        return [type(None)], []
    return [origin or hint], []


def choices(hint) -> tuple:
    """The values a ``Literal`` hint (or a union holding one) allows: `typing.get_args` of it."""
    return tuple(allowed(hint)[1])


def check_type(key: str, value: Any, hint) -> None:
    kinds, literals = allowed(hint)
    if literals and value in literals and type(value) is type(literals[literals.index(value)]):
        return
    ok = any(
        isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        for kind in kinds
    )
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        expected = " or ".join(
            [getattr(k, "__name__", str(k)) for k in kinds] + [repr(v) for v in literals]
        )
        raise ConfigError(f"{key} must be {expected}. Received {key}={value!r}")


def unknown_key_message(key: str, known) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"Unknown config key {key!r}.{hint} Valid keys: {', '.join(sorted(known))}."


def parse_scalar(text: str, kinds: list, literals: list, key: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("none", "null", "") and (type(None) in kinds or None in literals):
        return None
    for literal in literals:
        if literal is not None and text == str(literal):
            return literal
    if bool in kinds and lowered in ("true", "false", "1", "0", "yes", "no"):
        return lowered in ("true", "1", "yes")
    if int in kinds:
        try:
            return int(text)
        except ValueError:
            pass
    if float in kinds:
        try:
            return float(text)
        except ValueError:
            pass
    if str in kinds:
        return text
    expected = " or ".join([getattr(k, "__name__", str(k)) for k in kinds] + [repr(v) for v in literals])
    raise ConfigError(f"{key} must be {expected}. Received {key}={text!r}")


def parse_value(key: str, text: str, hint) -> Any:
    kinds, literals = allowed(hint)
    if list in kinds:
        return [] if not text.strip() else [json.loads(t) if t.strip()[:1].isdigit() else t.strip()
                                            for t in text.split(",")]
    if dict in kinds:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        scalars = [k for k in kinds if k is not dict]
        # A field that also takes a scalar (fine_tune_from: a layer name, or {model: layer})
        # reads anything that is not a JSON object as that scalar.
        if (scalars or literals) and not text.lstrip().startswith("{"):
            return parse_scalar(text, scalars, literals, key)
        raise ConfigError(
            f"{key} must be a JSON object, or set one entry with {key}.NAME=VALUE. "
            f"Received {key}={text!r}"
        )
    return parse_scalar(text, kinds, literals, key)


def parse_loose(text: str) -> Any:
    """A value inside a dict field (model_args.alpha=0.5): JSON if it parses, else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        return text
