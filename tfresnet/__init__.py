"""tfresnet: a Keras 3 / TensorFlow training toolkit.

Model builders (ResNet, VGG, MobileNet) from one registry, data pipelines, recipes, tuning and
SavedModel export. Start with `tfresnet.list_models()` and `tfresnet.create_model(name)`.
"""

from tfresnet.models.registry import create_model, get_model_spec, list_models

__all__ = ["create_model", "list_models", "get_model_spec", "__version__"]
__version__ = "0.1.0"
