"""The registry's table: one `ModelSpec` per named variant, filled by `register_model`.

Every family module registers its variants with `register_model`, one line of data per variant
(torchvision `models/_api.py` and timm `_registry.py` are the pattern); `get_model_spec` and
`list_models` read the table. It sits below both `tfresnet.models.registry`, whose
`create_model` builds a variant and loads its weights, and `tfresnet.models.transfer`, which
reads a variant's keras.applications twin here, so neither imports the other back.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
from collections.abc import Callable
from typing import Any

__all__ = ["ModelSpec", "register_model", "list_models", "get_model_spec"]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of one named variant.

    Attributes:
        name: registry name, e.g. ``"resnet50"``.
        family: family label shown by ``tfresnet list-models``, e.g. ``"resnet_v1"``.
        builder: the family builder; called as ``builder(**fixed, **user_kwargs)``.
        fixed: the variant's own arguments (depth table row, width multiplier, ...).
        default_input_shape: input shape used when the caller gives none.
        min_input_size: the smallest height/width the architecture accepts.
        preprocessing: input scaling the variant expects (a `tfresnet.models.layers.Preprocess` mode).
        keras_application: name of the `keras.applications` constructor with the same
            architecture and layer names, or None.
        keras_application_kwargs: extra arguments that constructor needs to match (e.g. ``alpha``).
        fine_tune_from: the first layer to unfreeze when fine-tuning a frozen ImageNet backbone
            (`TrainConfig.fine_tune_layer` uses it when the config names none), or None.
    """

    name: str
    family: str
    builder: Callable[..., Any]
    fixed: dict
    default_input_shape: tuple
    min_input_size: int
    preprocessing: str | None
    keras_application: str | None = None
    keras_application_kwargs: dict = dataclasses.field(default_factory=dict)
    fine_tune_from: str | None = None


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    family: str,
    default_input_shape: tuple = (224, 224, 3),
    min_input_size: int = 32,
    preprocessing: str | None = "tf",
    keras_application: str | None = None,
    keras_application_kwargs: dict | None = None,
    fine_tune_from: str | None = None,
    **fixed: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers a named variant of a family builder; returns a decorator for the builder.

    Used either as ``@register_model("resnet50", family=..., depth=50)`` on a builder, or, for
    variants that are rows of a table, as ``register_model(name, ..., **row)(Builder)``.

    Raises:
        ValueError: if `name` is already registered.
    """

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(
                f"Model name {name!r} is already registered (family "
                f"{_REGISTRY[name].family!r}); registry names must be unique."
            )
        _REGISTRY[name] = ModelSpec(
            name=name,
            family=family,
            builder=builder,
            fixed=dict(fixed),
            default_input_shape=tuple(default_input_shape),
            min_input_size=min_input_size,
            preprocessing=preprocessing,
            keras_application=keras_application,
            keras_application_kwargs=dict(keras_application_kwargs or {}),
            fine_tune_from=fine_tune_from,
        )
        return builder

    return decorator


def _ensure_families_loaded() -> None:
    # Family modules register on import; importing the package here keeps `create_model`
    # usable from this module alone without a circular import at module load.
    import tfresnet.models  # noqa: F401


def get_model_spec(name: str) -> ModelSpec:
    """Returns the `ModelSpec` of a registered name.

    Raises:
        ValueError: if `name` is not registered; the message lists the closest names.
    """
    _ensure_families_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Closest names: {', '.join(close)}." if close else ""
        raise ValueError(
            f"Unknown model name {name!r}.{hint} "
            f"See tfresnet.list_models() for all {len(_REGISTRY)} names."
        ) from None


def list_models(pattern: str | None = None) -> list[str]:
    """Returns the registered names, sorted, optionally filtered.

    Args:
        pattern: a shell-style wildcard (``"resnet*"``) or, without wildcards, a substring
            (``"resnet"`` matches every name containing it).
    """
    _ensure_families_loaded()
    names = sorted(_REGISTRY, key=_natural_key)
    if not pattern:
        return names
    if any(c in pattern for c in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return [n for n in names if pattern in n]


def _natural_key(name: str) -> tuple:
    # "resnet18" before "resnet101": sort digit runs as numbers.
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))
