"""Model builders, all reached through one registry (`create_model`, `list_models`).

Importing this package imports every family module, which registers its variants.
"""

from tfresnet.models import convnet, mlp, mobilenet, resnet, vgg  # noqa: F401  (registers the families)
from tfresnet.models.common import iter_layers
from tfresnet.models.layers import Preprocess, StochasticDepth
from tfresnet.models.registry import (
    ModelSpec,
    create_model,
    get_model_spec,
    list_models,
    register_model,
)
from tfresnet.models.transfer import load_keras_applications_weights

__all__ = [
    "ModelSpec",
    "Preprocess",
    "StochasticDepth",
    "create_model",
    "get_model_spec",
    "iter_layers",
    "list_models",
    "load_keras_applications_weights",
    "register_model",
]
