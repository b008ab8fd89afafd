"""The classic two-convolution MNIST network of keras.io's `mnist_convnet` example.

The baseline every Keras user knows (34,826 parameters at 28x28x1 and 10 classes): the
reference point the small-image ResNets and the time-to-accuracy benchmark are measured against.
"""

from __future__ import annotations

import keras
from keras import layers

from tfresnet.models.common import (
    check_common_args,
    kernel_regularizer,
    model_input,
    pooled_features,
)
from tfresnet.models.registry import register_model

__all__ = ["ConvNet", "CONVNET_CONFIGS"]

# name -> ((filters, kernel) per conv-pool stage); keras.io uses 32 then 64 filters of 3x3.
CONVNET_CONFIGS = {"convnet": ((32, 3), (64, 3))}
# Two valid 3x3 convolutions and two 2x2 pools: the smallest input with a 1x1 map left.
MIN_INPUT_SIZE = 10


def ConvNet(
    *,
    stages,
    input_shape=(28, 28, 1),
    num_classes: int = 10,
    include_top: bool = True,
    pooling=None,
    classifier_activation="softmax",
    l2: float = 0.0,
    dropout: float = 0.5,
    preprocessing: str | None = None,
    name: str = "convnet",
):
    """Conv-ReLU-MaxPool stages, then flatten, dropout and the classifier.

    Args:
        stages: ``(filters, kernel_size)`` per stage.
        dropout: before the classifier; keras.io's example uses 0.5.
        (The other arguments are the common ones of every tfresnet family.)
    """
    input_shape = check_common_args(
        name=name, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        pooling=pooling, l2=l2, dropout=dropout, min_input_size=MIN_INPUT_SIZE,
    )
    inputs, x = model_input(input_shape, preprocessing)
    for index, (filters, kernel) in enumerate(stages, start=1):
        x = layers.Conv2D(filters, kernel, activation="relu", kernel_regularizer=kernel_regularizer(l2),
                          name=f"block{index}_conv")(x)
        x = layers.MaxPooling2D(2, name=f"block{index}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        if dropout:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(num_classes, activation=classifier_activation,
                         kernel_regularizer=kernel_regularizer(l2), name="predictions")(x)
    else:
        x = pooled_features(x, pooling)
    return keras.Model(inputs, x, name=name)


for _name, _stages in CONVNET_CONFIGS.items():
    register_model(_name, family="convnet", default_input_shape=(28, 28, 1),
                   min_input_size=MIN_INPUT_SIZE, preprocessing="unit", stages=_stages)(ConvNet)
