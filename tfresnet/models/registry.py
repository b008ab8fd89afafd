"""The model registry's entry point: `create_model` builds a registered variant and loads its weights.

The variants themselves are a table (`tfresnet.models.specs`: `register_model`, `get_model_spec`,
`list_models`, imported here too); `create_model` and `list_models` are the only ways the rest
of the package reaches a builder, so the trainer, the tuner and the CLI never branch on a
family name.
"""

from __future__ import annotations

from typing import Any

from tfresnet.models.specs import ModelSpec, get_model_spec, list_models, register_model
from tfresnet.models.transfer import load_weights

__all__ = ["ModelSpec", "register_model", "create_model", "list_models", "get_model_spec"]


def create_model(name: str, /, **kwargs: Any):
    """Builds a registered model.

    Args:
        name: a name from `list_models()`.
        **kwargs: the common arguments every family takes (`input_shape`, `num_classes`,
            `include_top`, `pooling`, `weights`, `classifier_activation`, `l2`, `dropout`, and
            `drop_path` for residual families) plus the family's own (`alpha`, ...).
            ``preprocessing="auto"`` puts the variant's own input scaling (`ModelSpec.preprocessing`)
            inside the model, so it takes raw [0, 255] images. ``name=`` names the model.

    Returns:
        A `keras.Model` named `name` unless `name=` is given in `kwargs`. Its `registry_name`
        attribute is `name` either way: `load_keras_applications_weights` finds the model's
        keras.applications twin by it, so a model renamed with `name=` keeps its twin.

    Raises:
        ValueError: for an unknown name or an argument the variant fixes itself.
    """
    spec = get_model_spec(name)
    clash = sorted(set(kwargs) & set(spec.fixed))
    if clash:
        raise ValueError(
            f"{name!r} fixes {', '.join(f'{k}={spec.fixed[k]!r}' for k in clash)}; "
            f"it cannot be overridden. Received {', '.join(f'{k}={kwargs[k]!r}' for k in clash)}."
        )
    kwargs.setdefault("input_shape", spec.default_input_shape)
    kwargs.setdefault("name", name)
    if kwargs.get("preprocessing") == "auto":
        kwargs["preprocessing"] = spec.preprocessing
    weights = kwargs.pop("weights", None)
    model = spec.builder(**spec.fixed, **kwargs)
    model.registry_name = name
    if weights is not None:
        load_weights(model, weights, spec=spec, builder_kwargs=kwargs)
    return model
