"""Fully connected networks: flatten the image, then dense layers, then the classifier.

The registered variants are the sigmoid networks of Nielsen, "Neural Networks and Deep Learning",
chapter 5 ("Why are deep neural networks hard to train?"): [784, 30 x k, 10] for k = 1..4, on
which the first hidden layer learns far more slowly than the last (bias-gradient norms 0.003,
0.017, 0.070, 0.285 for k = 4 in the book). They carry the book's initialisation, network2's
`default_weight_initializer`: weights N(0, 1/n_in), biases N(0, 1), and take inputs scaled to
[0, 1] as the book's do.

Variants are rows of `MLP_CONFIGS` (hidden widths, activation and initialisation as data), so
other networks of the book are one more row each. The ``nielsen_*`` rows are chapter 6's MNIST
ladder (network3.py): [784, 100, 10]; then one or two 'valid' 5x5 convolutions with a 2x2
max-pool in front (28 -> 24 -> 12 -> 8 -> 4), sigmoid or ReLU; then two dense layers of 1,000
with dropout on each dense layer's input. network3 initialises dense kernels N(0, 1/n_out),
convolution kernels N(0, 1/(filters * 25 / 4)) (its fan-out divided by the pool's 4 cells), all
biases N(0, 1) and the softmax layer with zeros; those are data here too (`INITIALIZERS`).
"""

from __future__ import annotations

import copy

import keras

from tfresnet.models import convnet
from tfresnet.models.common import Head, build_model, flatten_head
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
    # network3.py's FullyConnectedLayer: N(0, 1/n_out).
    "network3_dense": {"class_name": "VarianceScaling",
                       "config": {"scale": 1.0, "mode": "fan_out",
                                  "distribution": "untruncated_normal"}},
    # network3.py's ConvPoolLayer: N(0, 1/n_out) with n_out = filters * kh * kw / 4 (the 2x2
    # pool's cells); Keras' conv fan_out is filters * kh * kw, so the scale 4 restores the /4.
    "network3_conv": {"class_name": "VarianceScaling",
                      "config": {"scale": 4.0, "mode": "fan_out",
                                 "distribution": "untruncated_normal"}},
    "zeros": {"class_name": "Zeros", "config": {}},
}

# name -> builder arguments. Nielsen's network2 initialises every layer, the output one too,
# with N(0, 1/n_in) weights and N(0, 1) biases (his "default_weight_initializer").
_NIELSEN_CH5 = {"activation": "sigmoid", "kernel_initializer": "nielsen_weights",
                "bias_initializer": "standard_normal"}
MLP_CONFIGS = {
    f"sigmoid_mlp_30x{depth}": {"hidden_units": (30,) * depth, **_NIELSEN_CH5}
    for depth in (1, 2, 3, 4)
}
# Chapter 6 (network3.py). Convolution stages are (filters, kernel, strides, pool), as in
# `convnet.CONVNET_CONFIGS`; the softmax layer starts at zero, as network3's SoftmaxLayer does.
_NETWORK3 = {"kernel_initializer": "network3_dense", "conv_initializer": "network3_conv",
             "bias_initializer": "standard_normal", "classifier_initializer": "zeros"}
_CONV20 = (20, 5, 1, 2)
_CONV40 = (40, 5, 1, 2)
MLP_CONFIGS.update({
    "nielsen_fc100": {"hidden_units": (100,), "activation": "sigmoid", **_NETWORK3},
    "nielsen_conv1_sigmoid": {"conv_stages": (_CONV20,), "hidden_units": (100,),
                              "activation": "sigmoid", **_NETWORK3},
    "nielsen_conv2_sigmoid": {"conv_stages": (_CONV20, _CONV40), "hidden_units": (100,),
                              "activation": "sigmoid", **_NETWORK3},
    "nielsen_conv2_relu": {"conv_stages": (_CONV20, _CONV40), "hidden_units": (100,),
                           "activation": "relu", **_NETWORK3},
    # network3's p_dropout=0.5 on both FullyConnectedLayers drops their inputs; the softmax
    # layer's own p_dropout is the family's common `dropout` (before the classifier).
    "nielsen_conv2_fc1000x2": {"conv_stages": (_CONV20, _CONV40), "hidden_units": (1000, 1000),
                               "activation": "relu", "hidden_dropout": 0.5, **_NETWORK3},
})


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
    *, hidden_units, activation="relu", kernel_initializer="glorot_uniform",
    bias_initializer="zeros", conv_stages=(), conv_initializer=None, classifier_initializer=None,
    hidden_dropout: float = 0.0, input_shape=(28, 28, 1), num_classes: int = 10,
    include_top: bool = True, pooling=None, classifier_activation="softmax", l2: float = 0.0,
    dropout: float = 0.0, preprocessing: str | None = None, name: str = "mlp",
):
    """Optional conv-pool stages, flatten, one `Dense` layer per `hidden_units`, the classifier.

    Layers are named ``block1_conv``, ``block1_pool``, ..., ``flatten``, ``dense1``, ``dense2``,
    ..., ``predictions`` (``dense1_dropout``, ... before each hidden layer with `hidden_dropout`).
    The other arguments are the common ones of every tfresnet family.

    Args:
        hidden_units: width of each hidden layer, input side first (may be empty: a linear
            classifier on the pixels).
        activation: activation of the hidden layers.
        kernel_initializer: for every dense layer, the classifier too: a name in
            `INITIALIZERS` (``"nielsen_weights"``: N(0, 1/fan_in)), a Keras initializer name,
            config or object.
        bias_initializer: as `kernel_initializer`, for the biases (``"standard_normal"``:
            N(0, 1)).
        conv_stages: ``(filters, kernel, strides, pool)`` per 'valid' convolution (with
            `activation`), each followed by a max-pool of size ``pool`` (None: none).
        conv_initializer: for the convolution kernels; None uses `kernel_initializer`.
        classifier_initializer: for the classifier's kernel and bias; None uses
            `kernel_initializer` and `bias_initializer`.
        hidden_dropout: dropout rate on the input of every hidden dense layer.
        input_shape: (height, width, channels), fixed: flattening needs the size.
        include_top: with False, the output is the (preprocessed) image reduced by `pooling`:
            every dense layer is part of the top, as keras.applications' VGG counts its
            fully connected layers, so the Nielsen convolutional nets that share this table
            keep their features.
        dropout: before the classifier.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for a non-positive width, an unknown initializer, a variable input size
            with ``include_top=True`` or a bad common argument.
    """
    conv_initializer = conv_initializer or kernel_initializer
    classifier_kernel = classifier_initializer or kernel_initializer
    classifier_bias = classifier_initializer or bias_initializer
    units = ()  # hidden_units as a tuple, set by `check` once the common checks have passed

    def check(shape):
        nonlocal units
        if not 0 <= hidden_dropout < 1:
            raise ValueError(f"{name}: hidden_dropout must be in [0, 1). Received hidden_dropout={hidden_dropout!r}")
        units = tuple(hidden_units)
        if not all(isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in units):
            raise ValueError(
                f"{name}: hidden_units must be positive integers. Received hidden_units={hidden_units!r}"
            )
        if include_top and None in shape[:2]:
            raise ValueError(
                f"{name}: the dense layers need a fixed input size. Received input_shape={input_shape}"
            )
        for initializer in (kernel_initializer, bias_initializer, conv_initializer, classifier_kernel):
            _initializer(initializer)  # fails naming the choices before anything is built

    def initializers(kernel, bias):
        # Called once per layer: every layer gets its own initializer objects.
        return lambda: {"kernel_initializer": _initializer(kernel), "bias_initializer": _initializer(bias)}

    def top(x, head):
        return flatten_head(x, head, hidden_units=units, activation=activation,
                            hidden_dropout=hidden_dropout,
                            hidden_initializers=initializers(kernel_initializer, bias_initializer),
                            classifier_initializers=initializers(classifier_kernel, classifier_bias))

    return build_model(
        name, lambda x: convnet.conv_stages(x, conv_stages, activation=activation, l2=l2,
                                            initializers=initializers(conv_initializer, bias_initializer)),
        Head(include_top, num_classes, pooling, dropout, classifier_activation, l2),
        input_shape=input_shape, preprocessing=preprocessing,
        min_input_size=convnet.min_input_size(conv_stages), check=check, top=top,
    )

for _name, _args in MLP_CONFIGS.items():
    register_model(_name, family="mlp", default_input_shape=(28, 28, 1),
                   min_input_size=convnet.min_input_size(_args.get("conv_stages", ())),
                   preprocessing="unit", **_args)(MLP)
del _name, _args
