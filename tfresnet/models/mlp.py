"""Fully connected networks: flatten the image, then dense layers, then the classifier.

The registered variants are the sigmoid networks of Nielsen, "Neural Networks and Deep Learning",
chapter 5 ("Why are deep neural networks hard to train?"): [784, 30 x k, 10] for k = 1..4, on
which the first hidden layer learns far more slowly than the last (bias-gradient norms 0.003,
0.017, 0.070, 0.285 for k = 4 in the book). They carry the book's initialisation, network2's
`default_weight_initializer`: weights N(0, 1/n_in), biases N(0, 1), and take inputs scaled to
[0, 1] as the book's do.

Variants are rows of `MLP_CONFIGS` (hidden widths, activation and initialisation as data), so
other networks of the book, e.g. chapter 6's 100 sigmoid units, are one more row each.
"""

from __future__ import annotations

import copy

import keras
from keras import layers

from tfresnet.models.common import (
    check_common_args,
    kernel_regularizer,
    model_input,
    pooled_features,
)
from tfresnet.models.registry import register_model

__all__ = ["MLP", "MLP_CONFIGS", "INITIALIZERS"]

# Initialisations by name, as Keras initializer configs so a table row stays plain data and a
# fresh object is made for every layer (one shared instance would draw the same numbers twice).
INITIALIZERS = {
    # N(0, 1/n_in): exactly RandomNormal(stddev=1/sqrt(fan_in)) for each layer's own fan_in.
    # Not keras's LecunNormal, which truncates at two standard deviations and rescales.
    "nielsen_weights": {"class_name": "VarianceScaling",
                        "config": {"scale": 1.0, "mode": "fan_in",
                                   "distribution": "untruncated_normal"}},
    "standard_normal": {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 1.0}},
}

# name -> builder arguments. Nielsen's network2 initialises every layer, the output one too,
# with N(0, 1/n_in) weights and N(0, 1) biases (his "default_weight_initializer").
_NIELSEN_CH5 = {"activation": "sigmoid", "kernel_initializer": "nielsen_weights",
                "bias_initializer": "standard_normal"}
MLP_CONFIGS = {
    f"sigmoid_mlp_30x{depth}": {"hidden_units": (30,) * depth, **_NIELSEN_CH5}
    for depth in (1, 2, 3, 4)
}


def _initializer(identifier):
    """A fresh Keras initializer from a name in `INITIALIZERS` or anything keras accepts."""
    if isinstance(identifier, str) and identifier in INITIALIZERS:
        identifier = copy.deepcopy(INITIALIZERS[identifier])
    elif isinstance(identifier, dict):
        identifier = copy.deepcopy(identifier)
    elif isinstance(identifier, keras.initializers.Initializer):
        # An unseeded Keras initializer fixes its seed when made: reused, it would give every
        # layer of the same shape the same weights.
        return identifier.__class__.from_config(identifier.get_config())
    try:
        return keras.initializers.get(identifier)
    except ValueError:
        raise ValueError(
            f"Unknown initializer {identifier!r}: use one of {sorted(INITIALIZERS)} or a Keras "
            f"initializer name such as 'glorot_uniform'."
        ) from None


def MLP(
    *,
    hidden_units,
    activation="relu",
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
    input_shape=(28, 28, 1),
    num_classes: int = 10,
    include_top: bool = True,
    pooling=None,
    classifier_activation="softmax",
    l2: float = 0.0,
    dropout: float = 0.0,
    preprocessing: str | None = None,
    name: str = "mlp",
):
    """Flatten, one `Dense` layer per entry of `hidden_units`, then the classifier.

    Layers are named ``flatten``, ``dense1``, ``dense2``, ..., ``predictions``.

    Args:
        hidden_units: width of each hidden layer, input side first (may be empty: a linear
            classifier on the pixels).
        activation: activation of the hidden layers.
        kernel_initializer: for every dense layer, the classifier too: a name in
            `INITIALIZERS` (``"nielsen_weights"``: N(0, 1/fan_in)), a Keras initializer name,
            config or object.
        bias_initializer: as `kernel_initializer`, for the biases (``"standard_normal"``:
            N(0, 1)).
        input_shape: (height, width, channels), fixed: flattening needs the size.
        include_top: with False, the output is the (preprocessed) image reduced by `pooling`:
            every dense layer is part of the top, as keras.applications' VGG counts its
            fully connected layers, so the Nielsen convolutional nets that share this table
            keep their features.
        dropout: before the classifier.
        (The other arguments are the common ones of every tfresnet family.)

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for a non-positive width, an unknown initializer, a variable input size
            with ``include_top=True`` or a bad common argument.
    """
    shape = check_common_args(
        name=name, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        pooling=pooling, l2=l2, dropout=dropout, min_input_size=1,
    )
    units = tuple(hidden_units)
    if not all(isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in units):
        raise ValueError(
            f"{name}: hidden_units must be positive integers. Received hidden_units={hidden_units!r}"
        )
    if include_top and None in shape[:2]:
        raise ValueError(
            f"{name}: the dense layers need a fixed input size. Received input_shape={input_shape}"
        )
    for initializer in (kernel_initializer, bias_initializer):
        _initializer(initializer)  # fails naming the choices before anything is built

    inputs, x = model_input(shape, preprocessing)
    if not include_top:
        return keras.Model(inputs, pooled_features(x, pooling), name=name)
    x = layers.Flatten(name="flatten")(x)
    for index, width in enumerate(units, start=1):
        x = layers.Dense(
            width, activation=activation, kernel_initializer=_initializer(kernel_initializer),
            bias_initializer=_initializer(bias_initializer),
            kernel_regularizer=kernel_regularizer(l2), name=f"dense{index}",
        )(x)
    if dropout:
        x = layers.Dropout(dropout, name="top_dropout")(x)
    x = layers.Dense(
        num_classes, activation=classifier_activation,
        kernel_initializer=_initializer(kernel_initializer),
        bias_initializer=_initializer(bias_initializer),
        kernel_regularizer=kernel_regularizer(l2), name="predictions",
    )(x)
    return keras.Model(inputs, x, name=name)


for _name, _args in MLP_CONFIGS.items():
    register_model(_name, family="mlp", default_input_shape=(28, 28, 1), min_input_size=1,
                   preprocessing="unit", **_args)(MLP)
del _name, _args
