"""Values typed by a dataclass field's hint: the checks and the ``--set`` parsing behind `TrainConfig`.

A field's choices are its hint's: ``Literal["sgd", "adam"]`` allows those strings and nothing
else, ``int | None`` an int or None, so a choice list is never written a second time.
"""

from __future__ import annotations

import difflib
import inspect
import json
import types
import typing
from typing import Any, Literal

__all__ = ["ConfigError", "allowed", "choices", "check_type", "parse_value", "parse_loose", "is_number",
           "unknown_key_message", "check_keywords", "tune_candidates", "TUNE_RANGE_KEYS", "TUNE_SAMPLINGS"]

# `tune` search spaces: the keys of a range, and how its values are spread.
TUNE_RANGE_KEYS = ("min", "max", "step", "sampling")
TUNE_SAMPLINGS = ("linear", "log", "reverse_log")


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


def check_keywords(field: str, given: dict, functions: list, owner: str, *, set_by: dict,
                    skip: set) -> None:
    """Raises ConfigError for a key of `given` that none of `functions` takes as a keyword.

    The first function is the one the keys are for: if it takes ``**kwargs`` any key goes.
    """
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = {name for function in functions
                for name, p in inspect.signature(function).parameters.items() if p.kind in kinds}
    accepted -= skip | set(set_by)
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD
                     for p in inspect.signature(functions[0]).parameters.values())
    for key in given:
        if key in set_by:
            raise ConfigError(
                f"{field}.{key}: the trainer sets {key} from the config key {set_by[key]!r}; set "
                f"that instead. Received {field}={given!r}"
            )
        if key not in accepted and not open_ended:
            close = difflib.get_close_matches(key, sorted(accepted), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"{field}.{key}: {owner} takes no argument {key!r}.{hint} Accepted: "
                f"{', '.join(sorted(accepted)) or 'none'}. Received {field}={given!r}"
            )


def tune_candidates(key: str, spec: Any, *, integer: bool) -> list:
    """The values of one search-space entry to check: every choice, or both ends of a range.

    Raises:
        ConfigError: for an entry that is neither a list of choices nor a valid range.
    """
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"tune.{key}: the list of choices is empty.")
        if not all(isinstance(v, (str, int, float, bool)) for v in spec):
            raise ConfigError(
                f"tune.{key}: choices must be strings, numbers or booleans. Received {spec!r}"
            )
        # KerasTuner's Choice holds values of one type; ints and floats mix as numbers.
        kinds = {bool if isinstance(v, bool) else float if is_number(v) else str for v in spec}
        if len(kinds) > 1:
            raise ConfigError(f"tune.{key}: choices must all be of one type. Received {spec!r}")
        if len(set(spec)) != len(spec):
            raise ConfigError(f"tune.{key}: choices repeat a value. Received {spec!r}")
        return list(spec)
    if not isinstance(spec, dict):
        raise ConfigError(
            f"tune.{key} must be a list of choices, e.g. [64, 128], or a range, e.g. "
            f'{{"min": 1e-4, "max": 1e-2, "sampling": "log"}}. Received {spec!r}'
        )
    unknown = sorted(set(spec) - set(TUNE_RANGE_KEYS))
    if unknown:
        raise ConfigError(
            f"tune.{key}: unknown range keys {unknown}; a range takes {', '.join(TUNE_RANGE_KEYS)}. "
            f"Received {spec!r}"
        )
    low, high = spec.get("min"), spec.get("max")
    if not (is_number(low) and is_number(high)):
        raise ConfigError(f"tune.{key}: a range needs numeric min and max. Received {spec!r}")
    if not low < high:
        raise ConfigError(f"tune.{key}: min must be below max. Received {spec!r}")
    sampling = spec.get("sampling", "linear")
    if sampling not in TUNE_SAMPLINGS:
        raise ConfigError(
            f"tune.{key}: sampling must be one of {', '.join(TUNE_SAMPLINGS)}. Received {spec!r}"
        )
    if sampling != "linear" and low <= 0:
        raise ConfigError(f"tune.{key}: {sampling} sampling needs min > 0. Received {spec!r}")
    step = spec.get("step")
    if step is not None and not (is_number(step) and step > 0):
        raise ConfigError(f"tune.{key}: step must be a positive number. Received {spec!r}")
    if integer and not all(isinstance(v, int) for v in (low, high, step or 1)):
        raise ConfigError(f"tune.{key}: {key} is an integer; min, max and step must be too. Received {spec!r}")
    return [low, high]
