"""What the TensorFlow side (tests/test_jax_backend.py) and the JAX side (tests/jax/) share.

One model per registry family at a small input; the reference file the TensorFlow side writes
and the JAX side reads.
"""

from __future__ import annotations

import os

ENV_REFERENCE = "TFRESNET_JAX_REFERENCE"  # the folder with the TensorFlow side's files

# family -> (model, input shape, extra builder arguments); small inputs keep it to seconds.
FAMILY_MODELS = {
    "convnet": ("convnet_fast", (28, 28, 1), {}),
    "mlp": ("sigmoid_mlp_30x1", (28, 28, 1), {}),
    "mobilenet_v1": ("mobilenetv1", (32, 32, 3), {}),
    "mobilenet_v2": ("mobilenetv2", (32, 32, 3), {}),
    "mobilenet_v3": ("mobilenetv3_small", (32, 32, 3), {}),
    "resnet_plain": ("plain18", (32, 32, 3), {}),
    "resnet_plain_small": ("plain20", (32, 32, 3), {}),
    "resnet_v1": ("resnet18", (32, 32, 3), {}),
    "resnet_v2": ("resnet18v2", (32, 32, 3), {}),
    "resnet_small": ("resnet20", (32, 32, 3), {}),
    "vgg": ("vgg11_bn", (32, 32, 3), {"head": "avg"}),
}
NUM_CLASSES = 10
BATCH = 4
# Logits of the same weights on both backends: float32 convolutions summed in other orders.
RELATIVE_TOLERANCE = 1e-4


def build(family: str):
    """The family's test model, logits out (a softmax would hide differences near 0 and 1)."""
    import tfresnet

    name, shape, extra = FAMILY_MODELS[family]
    return tfresnet.create_model(name, input_shape=shape, num_classes=NUM_CLASSES,
                                 classifier_activation=None, **extra)


def reference_dir() -> str:
    return os.environ[ENV_REFERENCE]
