"""The classic two-convolution MNIST network of keras.io's `mnist_convnet` example, and a faster twin.

- ``convnet``: the baseline every Keras user knows (34,826 parameters at 28x28x1 and 10 classes):
  the reference point the small-image ResNets and the time-to-accuracy benchmark are measured against.
- ``convnet_fast``: the same plain conv-ReLU-pool design arranged for time to accuracy on a CPU
  (104,426 parameters; `recipes/mnist_fast.py`). Its first convolution has stride 2, so no layer
  works at the full 28x28 resolution: the baseline's 26x26x32 first maps cost a CPU much memory
  traffic for little arithmetic (measured on 2 cores: the baseline's two convolutions with a
  stride-2 4x4 first one, no dropout, batch 256, trained in 28 CPU-seconds an epoch instead of 45).
  The time saved pays for a third, 128-filter convolution, which learns far faster per epoch.
"""

from __future__ import annotations

from keras import layers

from tfresnet.models.common import Head, build_model, flatten_head, kernel_regularizer
from tfresnet.models.registry import register_model

__all__ = ["ConvNet", "CONVNET_CONFIGS", "conv_stages", "min_input_size"]

# name -> (filters, kernel, strides, pool) per stage: a valid convolution and ReLU, then a max-pool
# of that size (None: no pool). keras.io uses 32 then 64 filters of 3x3, each followed by a 2x2 pool.
CONVNET_CONFIGS = {
    "convnet": ((32, 3, 1, 2), (64, 3, 1, 2)),
    "convnet_fast": ((32, 4, 2, None), (64, 3, 1, 2), (128, 3, 1, None)),  # 28 -> 13 -> 11 -> 5 -> 3
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


def conv_stages(x, stages, *, activation="relu", l2: float = 0.0, initializers=dict):
    """A valid convolution per stage, each followed by its max-pool (if any).

    Layers are named ``block1_conv``, ``block1_pool``, ``block2_conv``, ...

    Args:
        x: input tensor.
        stages: as `ConvNet`'s `stages`.
        activation: activation of every convolution.
        l2: L2 penalty on every kernel.
        initializers: called once per convolution for its initializer arguments
            (``kernel_initializer``, ...), so each layer gets fresh initializer objects.

    Returns:
        The last stage's output tensor.
    """
    for index, (filters, kernel, strides, pool) in enumerate(map(_stage, stages), start=1):
        x = layers.Conv2D(filters, kernel, strides=strides, activation=activation,
                          kernel_regularizer=kernel_regularizer(l2), name=f"block{index}_conv",
                          **initializers())(x)
        if pool:
            x = layers.MaxPooling2D(pool, name=f"block{index}_pool")(x)
    return x


def ConvNet(
    *, stages, input_shape=(28, 28, 1), num_classes: int = 10, include_top: bool = True,
    pooling=None, classifier_activation="softmax", l2: float = 0.0, dropout: float = 0.5,
    preprocessing: str | None = None, name: str = "convnet",
):
    """Conv-ReLU(-MaxPool) stages, then flatten, dropout and the classifier.

    The other arguments are the common ones of every tfresnet family.

    Args:
        stages: ``(filters, kernel_size, strides, pool_size)`` per stage (``pool_size`` None for
            no pool), or keras.io's ``(filters, kernel_size)``: stride 1 and a 2x2 pool.
        dropout: before the classifier; keras.io's example uses 0.5.
    """
    return build_model(
        name, lambda x: conv_stages(x, stages, l2=l2),
        Head(include_top, num_classes, pooling, dropout, classifier_activation, l2),
        input_shape=input_shape, preprocessing=preprocessing,
        min_input_size=min_input_size(stages), top=flatten_head,
    )

for _name, _stages in CONVNET_CONFIGS.items():
    register_model(_name, family="convnet", default_input_shape=(28, 28, 1),
                   min_input_size=min_input_size(_stages), preprocessing="unit", stages=_stages)(ConvNet)
