"""Pieces every family builder shares: argument checks, the input stem, regularisers, the head.

Keeping them here is what gives every family the same signature and the same error messages:
``input_shape, num_classes, include_top, pooling, classifier_activation, l2, dropout`` (and
``drop_path`` for residual families), plus ``preprocessing`` to carry the input scaling inside
the model.
"""

from __future__ import annotations

import keras
from keras import layers

from tfresnet.models.layers import Preprocess

__all__ = [
    "check_common_args",
    "model_input",
    "kernel_regularizer",
    "pooled_features",
    "classifier_head",
    "drop_path_rates",
]

POOLING_CHOICES = (None, "avg", "max")


def check_common_args(
    *,
    name: str,
    input_shape,
    num_classes: int,
    include_top: bool,
    pooling,
    l2: float,
    dropout: float,
    drop_path: float = 0.0,
    min_input_size: int = 32,
) -> tuple:
    """Validates the arguments every family takes; returns `input_shape` as a tuple.

    Raises:
        ValueError: naming the bad argument, the value received and what was expected.
    """
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or len(shape) != 3
        or not all(d is None or (isinstance(d, int) and d > 0) for d in shape)
        or shape[2] is None
    ):
        raise ValueError(
            f"{name}: input_shape must be (height, width, channels) with positive integers "
            f"(height and width may be None). Received input_shape={input_shape}"
        )
    small = [d for d in shape[:2] if d is not None and d < min_input_size]
    if small:
        raise ValueError(
            f"{name}: input height and width must be at least {min_input_size}. "
            f"Received input_shape={input_shape}"
        )
    if include_top and (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                        or num_classes < 1):
        raise ValueError(
            f"{name}: num_classes must be a positive integer when include_top=True. "
            f"Received num_classes={num_classes!r}"
        )
    if pooling not in POOLING_CHOICES:
        raise ValueError(
            f"{name}: pooling must be one of {POOLING_CHOICES}. Received pooling={pooling!r}"
        )
    for arg, value, upper in (("l2", l2, None), ("dropout", dropout, 1.0), ("drop_path", drop_path, 1.0)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        if ok and upper is not None:
            ok = value < upper
        if not ok:
            bound = "a number >= 0" if upper is None else f"a number in [0, {upper})"
            raise ValueError(f"{name}: {arg} must be {bound}. Received {arg}={value!r}")
    return shape


def model_input(input_shape: tuple, preprocessing: str | None):
    """Returns ``(inputs, x)``: the model's Input and the tensor the stem starts from."""
    inputs = keras.Input(shape=input_shape, name="input")
    x = Preprocess(preprocessing, name="preprocess")(inputs) if preprocessing else inputs
    return inputs, x


def kernel_regularizer(l2: float):
    """The L2 penalty for one kernel, or None; a fresh object per layer keeps configs independent."""
    return keras.regularizers.L2(l2) if l2 else None


def drop_path_rates(drop_path: float, num_blocks: int) -> list[float]:
    """Stochastic-depth rate per block, rising linearly to `drop_path` at the last block.

    The linear decay rule of Huang et al. 2016 (section 3): early blocks, which extract features
    every later block needs, are dropped least.
    """
    if num_blocks <= 1:
        return [float(drop_path)] * num_blocks
    return [drop_path * i / (num_blocks - 1) for i in range(num_blocks)]


def pooled_features(x, pooling):
    """Global pooling for ``include_top=False``; named as keras.applications names it."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def classifier_head(
    x,
    *,
    include_top: bool,
    num_classes: int,
    pooling,
    dropout: float,
    classifier_activation,
    l2: float,
):
    """Global average pooling, optional dropout and the `predictions` Dense layer.

    With ``include_top=False`` the head is only `pooling` (``None`` keeps the feature map).
    The layer names match keras.applications' ResNets so ImageNet heads transfer.
    """
    if not include_top:
        return pooled_features(x, pooling)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="top_dropout")(x)
    return layers.Dense(
        num_classes,
        activation=classifier_activation,
        kernel_regularizer=kernel_regularizer(l2),
        name="predictions",
    )(x)
