"""Pieces every family builder shares: the skeleton, argument checks, regularisers, the head.

Every builder is `build_model` called with its body: checks -> input -> preprocessing -> body ->
head -> `keras.Model`. Keeping that sequence here is what gives every family the same signature
and the same error messages: ``input_shape, num_classes, include_top, pooling,
classifier_activation, l2, dropout`` (and ``drop_path`` for residual families), plus
``preprocessing`` to carry the input scaling inside the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import keras
from keras import layers

from tfresnet.models.layers import Preprocess

__all__ = [
    "Head",
    "build_model",
    "check_common_args",
    "model_input",
    "kernel_regularizer",
    "pooled_features",
    "predictions",
    "classifier_head",
    "flatten_head",
    "drop_path_rates",
    "iter_layers",
]

POOLING_CHOICES = (None, "avg", "max")


@dataclasses.dataclass(frozen=True)
class Head:
    """The classifier options every family takes, as the builders receive them.

    Attributes:
        include_top: whether the model ends with its family's classifier; otherwise with
            `pooling`.
        num_classes: size of the classifier.
        pooling: None, ``"avg"`` or ``"max"``: the pooling when `include_top` is False.
        dropout: dropout rate before the classifier (where each family puts it).
        classifier_activation: activation of `predictions` (None for logits).
        l2: L2 penalty on every kernel of the model, the classifier's included.
    """

    include_top: bool
    num_classes: int
    pooling: str | None
    dropout: float
    classifier_activation: Any
    l2: float


def build_model(
    name: str,
    body: Callable[[Any], Any],
    head: Head,
    *,
    input_shape,
    preprocessing: str | None,
    min_input_size: int = 32,
    drop_path: float = 0.0,
    check: Callable[[tuple], None] | None = None,
    top: Callable[[Any, Head], Any] | None = None,
) -> keras.Model:
    """The skeleton of every family builder: checks, input, preprocessing, body, head, Model.

    Args:
        name: the model's name, which also starts every error message.
        body: ``body(x) -> features``, from the (preprocessed) input tensor to the last feature
            map; it builds every layer between `preprocess` and the head.
        head: the classifier options.
        input_shape: (height, width, channels); height and width may be None.
        preprocessing: a `Preprocess` mode applied inside the model, or None.
        min_input_size: the smallest height and width the family accepts.
        drop_path: checked with the other common arguments; the body applies it.
        check: the family's own checks, called with the checked input shape before any layer
            is built (so a bad argument fails before a half-built graph).
        top: ``top(features, head) -> outputs`` when ``head.include_top``; by default
            `classifier_head` (global average pooling, dropout, `predictions`).

    Returns:
        A `keras.Model` named `name`.

    Raises:
        ValueError: from `check_common_args` or `check`.
    """
    shape = check_common_args(
        name=name, input_shape=input_shape, num_classes=head.num_classes,
        include_top=head.include_top, pooling=head.pooling, l2=head.l2, dropout=head.dropout,
        drop_path=drop_path, min_input_size=min_input_size,
    )
    if check is not None:
        check(shape)
    inputs, x = model_input(shape, preprocessing)
    features = body(x)
    if not head.include_top:
        return keras.Model(inputs, pooled_features(features, head.pooling), name=name)
    return keras.Model(inputs, (top or classifier_head)(features, head), name=name)


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


def predictions(x, head: Head, **initializers):
    """The `predictions` Dense layer: `head.num_classes` units, L2 and activation from `head`.

    `initializers` (``kernel_initializer``, ``bias_initializer``) go to the layer as they are.
    """
    return layers.Dense(
        head.num_classes,
        activation=head.classifier_activation,
        kernel_regularizer=kernel_regularizer(head.l2),
        name="predictions",
        **initializers,
    )(x)


def classifier_head(x, head: Head):
    """Global average pooling, optional dropout and the `predictions` Dense layer.

    The layer names match keras.applications' ResNets so ImageNet heads transfer.
    """
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if head.dropout:
        x = layers.Dropout(head.dropout, name="top_dropout")(x)
    return predictions(x, head)


def flatten_head(x, head: Head, *, hidden_units=(), activation="relu", hidden_dropout: float = 0.0,
                 hidden_initializers=dict, classifier_initializers=dict):
    """Flatten, optional hidden Dense layers, dropout and the `predictions` Dense layer.

    Layers are named ``flatten``, ``dense1``, ``dense2``, ..., ``top_dropout``, ``predictions``
    (``dense1_dropout``, ... before each hidden layer with `hidden_dropout`).

    Args:
        x: the last feature map.
        head: the classifier options (`head.dropout` is the rate of ``top_dropout``).
        hidden_units: width of each hidden layer, input side first.
        activation: activation of the hidden layers.
        hidden_dropout: dropout rate on the input of every hidden layer.
        hidden_initializers: called once per hidden layer for its initializer arguments
            (``kernel_initializer``, ``bias_initializer``), so each layer gets fresh objects.
        classifier_initializers: the same for `predictions`.

    Returns:
        The output tensor of `predictions`.
    """
    x = layers.Flatten(name="flatten")(x)
    for index, width in enumerate(hidden_units, start=1):
        if hidden_dropout:
            x = layers.Dropout(hidden_dropout, name=f"dense{index}_dropout")(x)
        x = layers.Dense(width, activation=activation, kernel_regularizer=kernel_regularizer(head.l2),
                         name=f"dense{index}", **hidden_initializers())(x)
    if head.dropout:
        x = layers.Dropout(head.dropout, name="top_dropout")(x)
    return predictions(x, head, **classifier_initializers())


def iter_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every layer of `model`, descending into nested models (each nested model, then its layers).

    A public stand-in for Keras' private `_flatten_layers(include_self=False)`: the same layers
    for the models tfresnet builds and loads, visited in `model.layers` order.
    """
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
