"""Model size and cost: parameters and multiply-adds counted from the built layers.

`tfresnet list-models` shows these counts from a table computed here once (`tfresnet.model_table`).

Multiply-adds (MACs) count the convolutions and dense layers, which hold all but a fraction of a
percent of a CNN's arithmetic; batch norm, activations and pooling are left out, as in the
figures papers quote (e.g. 3.8 GFLOPs = 3.8 G multiply-adds for ResNet-50 in He et al. 2015,
Table 1, which are multiply-adds).
"""

from __future__ import annotations

import math

import keras

from tfresnet.models.common import iter_layers
from tfresnet.models.registry import create_model, get_model_spec, list_models

__all__ = ["count_macs", "layer_macs", "profile_model", "matching_models", "build_table"]


def _spatial_size(shape) -> int:
    return math.prod(int(d) for d in shape[1:-1])


def count_macs(model: keras.Model) -> int:
    """Multiply-adds of one forward pass for one example, from each layer's output shape.

    Raises:
        ValueError: if the model's input has unknown height or width.
    """
    if any(d is None for d in model.input_shape[1:]):
        raise ValueError(
            f"count_macs needs a fixed input size. Received input_shape={model.input_shape}"
        )
    return sum(layer_macs(layer) for layer in iter_layers(model))


def layer_macs(layer) -> int:
    """Multiply-adds of one forward pass of one built layer for one example: a convolution's or
    dense layer's, 0 for any other layer."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        out = layer.output.shape
        return _spatial_size(out) * int(out[-1]) * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        out = layer.output.shape
        in_channels = int(layer.input.shape[-1]) // layer.groups
        return _spatial_size(out) * int(out[-1]) * kh * kw * in_channels
    if isinstance(layer, keras.layers.Dense):
        out = layer.output.shape
        return math.prod(int(d) for d in out[1:]) * int(layer.input.shape[-1])
    return 0


def profile_model(name: str, **kwargs) -> dict:
    """Builds a registered model and returns its name, family, input shape, parameters and MACs."""
    model = create_model(name, **kwargs)
    row = {
        "name": name,
        "family": get_model_spec(name).family,
        "input_shape": list(model.input_shape[1:]),
        "params": int(model.count_params()),
        "macs": int(count_macs(model)),
    }
    keras.backend.clear_session()
    return row


def matching_models(pattern: str | None) -> list[str]:
    """Names whose name or family matches `pattern` (so ``resnet`` also finds the plain twins,
    family ``resnet_plain``); `tfresnet.model_table.matching` does the same over the table."""
    if not pattern:
        return list_models()
    by_name = set(list_models(pattern))
    return [n for n in list_models() if n in by_name or pattern in get_model_spec(n).family]


def build_table(pattern: str | None = None) -> list[dict]:
    """Builds every registered model whose name or family matches `pattern`, at its default
    input, and returns its `profile_model` row: what `tfresnet.model_table` ships as data."""
    return [profile_model(name) for name in matching_models(pattern)]
