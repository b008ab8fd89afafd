"""The classic two-convolution MNIST network of keras.io's `mnist_convnet` example, and a faster twin.

- ``convnet``: the baseline every Keras user knows (34,826 parameters at 28x28x1 and 10 classes):
  the reference point the small-image ResNets and the time-to-accuracy benchmark are measured against.
- ``convnet_fast``: the same plain conv-ReLU-pool design arranged for time to accuracy on a CPU
  (104,426 parameters; `recipes/mnist_fast.py`). Its first convolution has stride 2, so no layer
  works at the full 28x28 resolution: the baseline's 26x26x32 first maps cost a CPU much memory
  traffic for little arithmetic (measured on 2 cores: the baseline's two convolutions with a
  stride-2 4x4 first one, no dropout, batch 256, trained in 28 CPU-seconds an epoch instead of 45).
  The time saved pays for a third, 128-filter convolution, which learns far faster per epoch.
- ``convnet_narrow``: the narrow network of tuomaso/train_mnist_fast (99% on MNIST in one epoch): a
  5x5 then a 3x3 convolution of 24 and 32 filters, each pooled, and a 256-unit hidden layer (1.2M
  multiply-adds an image against convnet_fast's 3.0M; `recipes/mnist_fast.py` adds batch norm).

Options of every variant (`model_args`): ``batch_norm`` after each convolution (its bias then
replaces the convolution's), ``bn_scale`` false for batch norm without a learned scale (airbench's
"no affine weights": only the shift learns), ``bn_momentum`` (Keras' default 0.99 averages over
~100 steps, too slow for a one-epoch run's inference statistics), ``hidden_units`` before the
classifier, and ``conv_init`` ``"dirac"`` to start each convolution as an identity on the first
channels (airbench's identity initialisation; the other filters keep the default).
"""

from __future__ import annotations

import math

import numpy as np
from keras import layers

from tfresnet.models.common import Head, build_model, flatten_head, kernel_regularizer
from tfresnet.models.layers import FusedBatchNormalization
from tfresnet.models.registry import register_model

__all__ = ["ConvNet", "CONVNET_CONFIGS", "CONVNET_ARGS", "CONV_INITS", "conv_stages", "min_input_size"]

# name -> (filters, kernel, strides, pool) per stage: a valid convolution and ReLU, then a max-pool
# of that size (None: no pool). keras.io uses 32 then 64 filters of 3x3, each followed by a 2x2 pool.
CONVNET_CONFIGS = {
    "convnet": ((32, 3, 1, 2), (64, 3, 1, 2)),
    "convnet_fast": ((32, 4, 2, None), (64, 3, 1, 2), (128, 3, 1, None)),  # 28 -> 13 -> 11 -> 5 -> 3
    "convnet_narrow": ((24, 5, 1, 2), (32, 3, 1, 2)),  # 28 -> 24 -> 12 -> 10 -> 5
}
# name -> the variant's other `ConvNet` arguments (fixed: the options stay free for model_args).
CONVNET_ARGS = {
    "convnet_narrow": {"hidden_units": (256,)},
}


def min_input_size(stages) -> int:
    """The smallest height/width that leaves a 1x1 map after every valid convolution and pool."""
    size = 1
    for _filters, kernel, strides, pool in reversed([_stage(s) for s in stages]):
        size = (size * (pool or 1) - 1) * strides + kernel
    return size


def _stage(stage) -> tuple:
    # ``(filters, kernel)`` is keras.io's stage: stride 1, then a 2x2 pool.
    return (*stage, 1, 2) if len(stage) == 2 else tuple(stage)


def dirac_initializer(base="glorot_uniform"):
    """A convolution kernel that starts as the identity on the first ``min(in, out)`` channels.

    Airbench's identity initialisation: the block passes its input through at first and learns
    what to add. The other filters, and every tap but the centre one of those filters, keep
    `base`'s draw.
    """
    from keras import initializers

    draw = initializers.get(base)

    def initialize(shape, dtype=None):
        kernel = np.array(draw(shape, dtype=dtype))
        height, width, channels_in, channels_out = shape
        identity = min(channels_in, channels_out)
        kernel[:, :, range(identity), range(identity)] = 0.0
        kernel[height // 2, width // 2, range(identity), range(identity)] = 1.0
        return kernel

    return initialize


# `conv_init` -> the initializer arguments of one convolution (fresh objects each call).
CONV_INITS = {"default": dict, "dirac": lambda: {"kernel_initializer": dirac_initializer()}}


def conv_stages(x, stages, *, activation="relu", l2: float = 0.0, initializers=dict, norm=None):
    """A valid convolution per stage, each followed by its max-pool (if any).

    Layers are named ``block1_conv``, ``block1_pool``, ``block2_conv``, ... (``block1_bn`` with
    `norm`).

    Args:
        x: input tensor.
        stages: as `ConvNet`'s `stages`.
        activation: activation of every convolution.
        l2: L2 penalty on every kernel.
        initializers: called once per convolution for its initializer arguments
            (``kernel_initializer``, ...), so each layer gets fresh initializer objects.
        norm: None, or ``norm(name) -> layer`` applied between each convolution (then without a
            bias) and its activation.

    Returns:
        The last stage's output tensor.
    """
    for index, (filters, kernel, strides, pool) in enumerate(map(_stage, stages), start=1):
        x = layers.Conv2D(filters, kernel, strides=strides, activation=None if norm else activation,
                          use_bias=norm is None, kernel_regularizer=kernel_regularizer(l2),
                          name=f"block{index}_conv", **initializers())(x)
        if norm:
            x = layers.Activation(activation, name=f"block{index}_act")(norm(f"block{index}_bn")(x))
        if pool:
            x = layers.MaxPooling2D(pool, name=f"block{index}_pool")(x)
    return x


def ConvNet(
    *, stages, input_shape=(28, 28, 1), num_classes: int = 10, include_top: bool = True,
    pooling=None, classifier_activation="softmax", l2: float = 0.0, dropout: float = 0.5,
    preprocessing: str | None = None, name: str = "convnet", batch_norm: bool = False,
    bn_scale: bool = True, bn_momentum: float = 0.99, hidden_units=(), conv_init: str = "default",
):
    """Conv(-BN)-ReLU(-MaxPool) stages, then flatten, hidden layers, dropout and the classifier.

    The other arguments are the common ones of every tfresnet family.

    Args:
        stages: ``(filters, kernel_size, strides, pool_size)`` per stage (``pool_size`` None for
            no pool), or keras.io's ``(filters, kernel_size)``: stride 1 and a 2x2 pool.
        dropout: before the classifier; keras.io's example uses 0.5.
        batch_norm: batch norm between each convolution and its ReLU.
        bn_scale: whether batch norm learns a scale (False: only its shift learns).
        bn_momentum: batch norm's moving-statistics momentum.
        hidden_units: widths of ReLU Dense layers between the flatten and the classifier.
        conv_init: ``"default"`` (Keras' Glorot uniform) or ``"dirac"`` (`dirac_initializer`).

    Raises:
        ValueError: for an unknown `conv_init` or a `bn_momentum` outside [0, 1).
    """
    if conv_init not in CONV_INITS:
        raise ValueError(f"{name}: conv_init must be one of {', '.join(CONV_INITS)}. Received conv_init={conv_init!r}")
    if not 0 <= bn_momentum < 1 or math.isnan(bn_momentum):
        raise ValueError(f"{name}: bn_momentum must be in [0, 1). Received bn_momentum={bn_momentum!r}")

    def norm(layer_name):
        return FusedBatchNormalization(momentum=bn_momentum, scale=bn_scale, name=layer_name)

    def top(x, head):
        return flatten_head(x, head, hidden_units=tuple(hidden_units))

    return build_model(
        name, lambda x: conv_stages(x, stages, l2=l2, initializers=CONV_INITS[conv_init],
                                    norm=norm if batch_norm else None),
        Head(include_top, num_classes, pooling, dropout, classifier_activation, l2),
        input_shape=input_shape, preprocessing=preprocessing,
        min_input_size=min_input_size(stages), top=top,
    )

for _name, _stages in CONVNET_CONFIGS.items():
    register_model(_name, family="convnet", default_input_shape=(28, 28, 1), min_input_size=min_input_size(_stages),
                   preprocessing="unit", stages=_stages, **CONVNET_ARGS.get(_name, {}))(ConvNet)
