"""MobileNet V1, V2 and V3: depthwise-separable networks for small compute budgets.

- V1: Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
  Applications", Table 1 (`MOBILENET_V1_ROWS`).
- V2: Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks", Table 2
  (`MOBILENET_V2_ROWS`, the paper's (t, c, n, s) rows).
- V3: Howard et al. 2019, "Searching for MobileNetV3", Tables 1 (large) and 2 (small)
  (`MOBILENET_V3_ROWS`).

Every weighted layer has the name and weight shape of its `keras.applications` twin
(`MobileNet`, `MobileNetV2`, `MobileNetV3Small`, `MobileNetV3Large`), and the computation is the
same, so ImageNet weights transfer by name. Two deliberate differences:

- Stride-2 depthwise convolutions use ``padding="same"`` where keras pads explicitly with
  `ZeroPadding2D` and convolves "valid". For V2/V3, keras' padding (`imagenet_utils.correct_pad`)
  is exactly TF's "same" padding whenever the input size is known; "same" is also right when it
  is not. For V1, keras always pads one pixel at the bottom/right, which is "same" padding for
  even feature maps (all of them at 224, 192, 160, 128, 96, 64 or 32) but gives odd ones one
  output row and column fewer than "same" (the padding of the TF-slim graph the ImageNet weights
  come from). "Same" also lets a 28x28 input reach the last stride, where keras' padding fails.
- MobileNetV3 has no built-in `Rescaling`: keras' ``include_preprocessing=True`` is
  ``preprocessing="tf"`` here, optional like every family's (the registry records "tf" as the
  scaling the V3 weights expect).
"""

from __future__ import annotations

import functools
import math

from keras import layers

from tfresnet.models.common import Head, build_model, kernel_regularizer
from tfresnet.models.layers import FusedBatchNormalization, TunedConv2D
from tfresnet.models.registry import register_model

__all__ = [
    "MOBILENET_V1_ROWS",
    "MOBILENET_V2_ROWS",
    "MOBILENET_V3_ROWS",
    "MobileNetV1",
    "MobileNetV2",
    "MobileNetV3",
    "make_divisible",
]

# Howard et al. 2017, Table 1: (pointwise filters, depthwise stride) of the 13 separable blocks
# after the 32-filter stride-2 stem. The table's "s2" on the last block is a typo (its output is
# still 7x7); keras.applications and TF-slim use stride 1 there.
MOBILENET_V1_ROWS = (
    (64, 1),
    (128, 2), (128, 1),
    (256, 2), (256, 1),
    (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)
MOBILENET_V1_STEM = 32

# Sandler et al. 2018, Table 2: expansion t, output channels c, repeats n, first stride s.
MOBILENET_V2_ROWS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
MOBILENET_V2_STEM = 32
MOBILENET_V2_LAST = 1280

# Howard et al. 2019, Tables 1-2: (kernel, expansion, filters, se_ratio, stride, activation).
# The paper lists expansion *sizes*; these are the ratios size / input width that
# keras.applications uses (e.g. 72 / 16), which must stay ratios for alpha != 1 to round the
# way keras does. Minimalistic models replace 5x5 kernels by 3x3, drop SE and use ReLU for
# hard-swish (see `MobileNetV3`).
MOBILENET_V3_ROWS = {
    "small": (
        (3, 1, 16, 0.25, 2, "relu"),
        (3, 72 / 16, 24, None, 2, "relu"),
        (3, 88 / 24, 24, None, 1, "relu"),
        (5, 4, 40, 0.25, 2, "hard_swish"),
        (5, 6, 40, 0.25, 1, "hard_swish"),
        (5, 6, 40, 0.25, 1, "hard_swish"),
        (5, 3, 48, 0.25, 1, "hard_swish"),
        (5, 3, 48, 0.25, 1, "hard_swish"),
        (5, 6, 96, 0.25, 2, "hard_swish"),
        (5, 6, 96, 0.25, 1, "hard_swish"),
        (5, 6, 96, 0.25, 1, "hard_swish"),
    ),
    "large": (
        (3, 1, 16, None, 1, "relu"),
        (3, 4, 24, None, 2, "relu"),
        (3, 3, 24, None, 1, "relu"),
        (5, 3, 40, 0.25, 2, "relu"),
        (5, 3, 40, 0.25, 1, "relu"),
        (5, 3, 40, 0.25, 1, "relu"),
        (3, 6, 80, None, 2, "hard_swish"),
        (3, 2.5, 80, None, 1, "hard_swish"),
        (3, 2.3, 80, None, 1, "hard_swish"),
        (3, 2.3, 80, None, 1, "hard_swish"),
        (3, 6, 112, 0.25, 1, "hard_swish"),
        (3, 6, 112, 0.25, 1, "hard_swish"),
        (5, 6, 160, 0.25, 2, "hard_swish"),
        (5, 6, 160, 0.25, 1, "hard_swish"),
        (5, 6, 160, 0.25, 1, "hard_swish"),
    ),
}
MOBILENET_V3_STEM = 16
# Width of the `conv_2` layer in front of the logits ("NBN" 1x1 conv of Tables 1-2).
MOBILENET_V3_LAST_POINT = {"small": 1024, "large": 1280}

# "Same" padding accepts any size; below 16 pixels at least the last two stride-2 stages both
# run on 1x1 maps and stop downsampling anything. 28x28 (MNIST) is fine: 14, 7, 4, 2, 1.
MIN_INPUT_SIZE = 16

# The statistics TF-slim trained V2/V3 with (keras.applications uses them too); V1 uses
# keras' BatchNormalization defaults.
BN_V2V3 = {"epsilon": 1e-3, "momentum": 0.999}


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Rounds a channel count to the nearest multiple of `divisor`, losing at most 10%.

    TF-slim's rule (`keras.applications`' `_make_divisible` / `_depth`), kept exactly so that
    every alpha gives keras' widths.
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def _conv(filters, kernel_size=1, *, name, l2, strides=1, use_bias=False):
    return TunedConv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
        kernel_regularizer=kernel_regularizer(l2), name=name,
    )


def _depthwise(kernel_size, *, name, l2, strides=1, depth_multiplier=1):
    return layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="same", depth_multiplier=depth_multiplier,
        use_bias=False, depthwise_regularizer=kernel_regularizer(l2), name=name,
    )


def _activation(kind: str, name: str):
    if kind == "relu":
        return layers.ReLU(name=name)
    return layers.Activation(kind, name=name)


def _check_alpha(name, alpha):
    if (
        not isinstance(alpha, (int, float)) or isinstance(alpha, bool)
        or not math.isfinite(alpha) or alpha <= 0
    ):
        raise ValueError(f"{name}: alpha must be a number > 0. Received alpha={alpha!r}")


def _conv_head(x, head: Head, *, logits: str, last=None):
    """Pooling, an optional `conv_2` (V3), dropout and a 1x1 conv classifier named `logits`.

    `last` is ``(filters, activation)`` of V3's `conv_2`, or None.
    """
    # keras' MobileNets classify with a 1x1 convolution on the pooled map rather than a Dense
    # layer; keeping the conv keeps the (1, 1, C, classes) kernel shape of the ImageNet weights.
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    if last is not None:
        filters, activation = last
        x = _conv(filters, 1, use_bias=True, l2=head.l2, name="conv_2")(x)
        x = _activation(activation, "conv_2_act")(x)
    if head.dropout:
        x = layers.Dropout(head.dropout, name="dropout")(x)
    x = _conv(head.num_classes, 1, use_bias=True, l2=head.l2, name=logits)(x)
    x = layers.Flatten(name="flatten")(x)
    return layers.Activation(head.classifier_activation, name="predictions")(x)


def _project(x, shortcut, filters, stride, *, prefix, bn_name, l2):
    """The 1x1 projection of an inverted residual block, its batch norm and, where the shapes
    allow, the residual addition (`{prefix}add`)."""
    # Linear bottleneck (Sandler et al. 2018, section 3.2): no activation after the projection.
    x = _conv(filters, 1, l2=l2, name=f"{prefix}project")(x)
    x = FusedBatchNormalization(**BN_V2V3, name=f"{prefix}{bn_name}")(x)
    if stride == 1 and shortcut.shape[-1] == filters:
        x = layers.Add(name=f"{prefix}add")([shortcut, x])
    return x


# ---------------------------------------------------------------------------------------------
# MobileNet V1


def depthwise_separable_block(x, filters, stride, *, block_id, depth_multiplier=1, l2=0.0):
    """3x3 depthwise conv -> BN -> ReLU6 -> 1x1 pointwise conv -> BN -> ReLU6 (Figure 3)."""
    prefix = f"conv_dw_{block_id}"
    x = _depthwise(3, strides=stride, depth_multiplier=depth_multiplier, l2=l2, name=prefix)(x)
    x = FusedBatchNormalization(name=f"{prefix}_bn")(x)
    x = layers.ReLU(6.0, name=f"{prefix}_relu")(x)
    prefix = f"conv_pw_{block_id}"
    x = _conv(filters, 1, l2=l2, name=prefix)(x)
    x = FusedBatchNormalization(name=f"{prefix}_bn")(x)
    return layers.ReLU(6.0, name=f"{prefix}_relu")(x)


def MobileNetV1(
    *, alpha: float = 1.0, depth_multiplier: int = 1, input_shape=(224, 224, 3),
    num_classes: int = 1000, include_top: bool = True, pooling=None,
    classifier_activation="softmax", l2: float = 0.0, dropout: float = 1e-3,
    preprocessing: str | None = None, name: str = "mobilenetv1",
):
    """Builds MobileNet V1, layer for layer `keras.applications.MobileNet`.

    Args:
        alpha: width multiplier: every layer gets ``int(filters * alpha)`` filters.
        depth_multiplier: channels each depthwise convolution makes per input channel (the
            keras argument of that name; the paper's resolution multiplier is the input size).
        input_shape: (height, width, channels); height and width at least 16.
        num_classes: outputs of the `conv_preds` classifier.
        include_top: add the classifier; otherwise the output is the last feature map, reduced
            by `pooling`.
        pooling: None, "avg" or "max"; used only when ``include_top=False``.
        classifier_activation: activation of `predictions` (None for logits).
        l2: L2 penalty on every convolution kernel, depthwise kernels included.
        dropout: dropout rate before the classifier (keras' default 1e-3).
        preprocessing: a `Preprocess` mode to scale raw pixels inside the model (``"tf"`` for
            ImageNet weights), or None.
        name: model name.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for alpha <= 0 (or so small a layer has no filters), a depth_multiplier
            that is not a positive integer, an input smaller than 16x16, or a bad common
            argument.
    """
    def check(_shape):
        _check_alpha(name, alpha)
        if int(MOBILENET_V1_STEM * alpha) < 1:
            raise ValueError(
                f"{name}: alpha is so small that the {MOBILENET_V1_STEM}-filter stem gets no "
                f"filters; it must be at least 1/{MOBILENET_V1_STEM}. Received alpha={alpha!r}"
            )
        if not isinstance(depth_multiplier, int) or isinstance(depth_multiplier, bool) or (
            depth_multiplier < 1
        ):
            raise ValueError(
                f"{name}: depth_multiplier must be a positive integer. "
                f"Received depth_multiplier={depth_multiplier!r}"
            )

    def body(x):
        x = _conv(int(MOBILENET_V1_STEM * alpha), 3, strides=2, l2=l2, name="conv1")(x)
        x = FusedBatchNormalization(name="conv1_bn")(x)
        x = layers.ReLU(6.0, name="conv1_relu")(x)
        for block_id, (filters, stride) in enumerate(MOBILENET_V1_ROWS, start=1):
            x = depthwise_separable_block(
                x, int(filters * alpha), stride, block_id=block_id,
                depth_multiplier=depth_multiplier, l2=l2,
            )
        return x

    return build_model(
        name, body, Head(include_top, num_classes, pooling, dropout, classifier_activation, l2),
        input_shape=input_shape, preprocessing=preprocessing, min_input_size=MIN_INPUT_SIZE,
        check=check, top=functools.partial(_conv_head, logits="conv_preds"),
    )


# ---------------------------------------------------------------------------------------------
# MobileNet V2


def inverted_residual_block_v2(x, expansion, filters, stride, *, block_id, l2=0.0):
    """Expand (1x1) -> depthwise 3x3 -> linear project (1x1), residual when shapes allow.

    Names follow keras: ``block_{id}_expand``, ..., except block 0 (``expanded_conv_``).
    """
    in_channels = x.shape[-1]
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    shortcut = x
    if expansion != 1:
        # With t = 1 an expansion would be a 1x1 conv to the same width; Table 2's first
        # bottleneck has none.
        x = _conv(expansion * in_channels, 1, l2=l2, name=f"{prefix}expand")(x)
        x = FusedBatchNormalization(**BN_V2V3, name=f"{prefix}expand_BN")(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    x = _depthwise(3, strides=stride, l2=l2, name=f"{prefix}depthwise")(x)
    x = FusedBatchNormalization(**BN_V2V3, name=f"{prefix}depthwise_BN")(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    return _project(x, shortcut, filters, stride, prefix=prefix, bn_name="project_BN", l2=l2)


def MobileNetV2(
    *, alpha: float = 1.0, input_shape=(224, 224, 3), num_classes: int = 1000,
    include_top: bool = True, pooling=None, classifier_activation="softmax", l2: float = 0.0,
    dropout: float = 0.0, preprocessing: str | None = None, name: str = "mobilenetv2",
):
    """Builds MobileNet V2, layer for layer `keras.applications.MobileNetV2`.

    `input_shape`, `include_top`, `pooling`, `classifier_activation`, `preprocessing` and `name`
    are as in `MobileNetV1`.

    Args:
        alpha: width multiplier; block widths are ``make_divisible(int(c * alpha), 8)`` and the
            last 1x1 conv (1280) only grows, for alpha > 1, as in section 6.1.
        num_classes: outputs of the `predictions` layer.
        l2: L2 penalty on every convolution and dense kernel, depthwise kernels included.
        dropout: dropout rate before `predictions` (keras has none: 0.0).

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for alpha <= 0, an input smaller than 16x16, or a bad common argument.
    """
    def body(x):
        x = _conv(make_divisible(MOBILENET_V2_STEM * alpha, 8), 3, strides=2, l2=l2, name="Conv1")(x)
        x = FusedBatchNormalization(**BN_V2V3, name="bn_Conv1")(x)
        x = layers.ReLU(6.0, name="Conv1_relu")(x)
        block_id = 0
        for t, c, n, s in MOBILENET_V2_ROWS:
            filters = make_divisible(int(c * alpha), 8)
            for i in range(n):
                x = inverted_residual_block_v2(
                    x, t, filters, s if i == 0 else 1, block_id=block_id, l2=l2
                )
                block_id += 1
        last = make_divisible(MOBILENET_V2_LAST * alpha, 8) if alpha > 1.0 else MOBILENET_V2_LAST
        x = _conv(last, 1, l2=l2, name="Conv_1")(x)
        x = FusedBatchNormalization(**BN_V2V3, name="Conv_1_bn")(x)
        return layers.ReLU(6.0, name="out_relu")(x)

    return build_model(
        name, body, Head(include_top, num_classes, pooling, dropout, classifier_activation, l2),
        input_shape=input_shape, preprocessing=preprocessing, min_input_size=MIN_INPUT_SIZE,
        check=lambda _shape: _check_alpha(name, alpha),
    )


# ---------------------------------------------------------------------------------------------
# MobileNet V3


def squeeze_excite(x, filters, se_ratio, *, prefix, l2=0.0):
    """Squeeze-and-excitation with a hard-sigmoid gate (section 5.3)."""
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(x)
    s = _conv(
        make_divisible(filters * se_ratio), 1, use_bias=True, l2=l2,
        name=f"{prefix}squeeze_excite_conv",
    )(s)
    s = layers.ReLU(name=f"{prefix}squeeze_excite_relu")(s)
    s = _conv(filters, 1, use_bias=True, l2=l2, name=f"{prefix}squeeze_excite_conv_1")(s)
    # keras writes relu6(x + 3) * (1 / 6) as three unnamed ops; this is the same function.
    s = layers.Activation("hard_sigmoid", name=f"{prefix}squeeze_excite_hard_sigmoid")(s)
    return layers.Multiply(name=f"{prefix}squeeze_excite_mul")([x, s])


def inverted_residual_block_v3(
    x, kernel_size, expansion, filters, se_ratio, stride, activation, *, block_id, l2=0.0
):
    """The V2 bottleneck with a k x k depthwise conv, optional SE and a chosen activation."""
    in_channels = x.shape[-1]
    prefix = f"expanded_conv_{block_id}_" if block_id else "expanded_conv_"
    expanded = make_divisible(in_channels * expansion)
    shortcut = x
    if expansion != 1:
        x = _conv(expanded, 1, l2=l2, name=f"{prefix}expand")(x)
        x = FusedBatchNormalization(**BN_V2V3, name=f"{prefix}expand_bn")(x)
        x = _activation(activation, f"{prefix}expand_act")(x)
    x = _depthwise(kernel_size, strides=stride, l2=l2, name=f"{prefix}depthwise")(x)
    x = FusedBatchNormalization(**BN_V2V3, name=f"{prefix}depthwise_bn")(x)
    x = _activation(activation, f"{prefix}depthwise_act")(x)
    if se_ratio:
        x = squeeze_excite(x, expanded, se_ratio, prefix=prefix, l2=l2)
    return _project(x, shortcut, filters, stride, prefix=prefix, bn_name="project_bn", l2=l2)


def MobileNetV3(
    *, variant: str, alpha: float = 1.0, minimalistic: bool = False, input_shape=(224, 224, 3),
    num_classes: int = 1000, include_top: bool = True, pooling=None,
    classifier_activation="softmax", l2: float = 0.0, dropout: float = 0.2,
    preprocessing: str | None = None, name: str | None = None,
):
    """Builds MobileNet V3, layer for layer `keras.applications.MobileNetV3Small/Large`.

    keras' built-in ``Rescaling`` is not part of the network: pass ``preprocessing="tf"`` for
    the same input scaling (the ImageNet weights expect it). `input_shape`, `pooling`,
    `classifier_activation` and `preprocessing` are as in `MobileNetV1`.

    Args:
        variant: ``"small"`` or ``"large"``, a key of `MOBILENET_V3_ROWS`.
        alpha: width multiplier; block widths are ``make_divisible(filters * alpha)``, the stem
            stays at 16 and `conv_2` only grows, for alpha > 1.
        minimalistic: 3x3 kernels only, no squeeze-and-excitation, ReLU instead of hard-swish.
        num_classes: outputs of the `logits` classifier.
        include_top: add `conv_2` and the classifier; otherwise the output is the `conv_1`
            feature map, reduced by `pooling`.
        l2: L2 penalty on every convolution kernel, depthwise and SE kernels included.
        dropout: dropout rate before `logits` (keras' default 0.2).
        name: model name; defaults to ``mobilenetv3_{variant}``.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an unknown variant, alpha <= 0, a non-boolean minimalistic, an input
            smaller than 16x16, or a bad common argument.
    """
    name = name or f"mobilenetv3_{variant}"
    activation = "relu" if minimalistic else "hard_swish"

    def check(_shape):
        if variant not in MOBILENET_V3_ROWS:
            raise ValueError(
                f"{name}: variant must be one of {sorted(MOBILENET_V3_ROWS)}. "
                f"Received variant={variant!r}"
            )
        _check_alpha(name, alpha)
        if minimalistic not in (True, False):
            raise ValueError(
                f"{name}: minimalistic must be True or False. Received minimalistic={minimalistic!r}"
            )

    def body(x):
        rows = MOBILENET_V3_ROWS[variant]
        if minimalistic:
            # The "minimalistic" models of the TF-slim release (not in the paper), for hardware
            # without fast 5x5 depthwise, SE or hard-swish kernels.
            rows = [(3, t, c, None, s, "relu") for _, t, c, _, s, _ in rows]
        x = _conv(MOBILENET_V3_STEM, 3, strides=2, l2=l2, name="conv")(x)
        x = FusedBatchNormalization(**BN_V2V3, name="conv_bn")(x)
        x = _activation(activation, "conv_act")(x)
        for block_id, (kernel_size, expansion, filters, se_ratio, stride, act) in enumerate(rows):
            x = inverted_residual_block_v3(
                x, kernel_size, expansion, make_divisible(filters * alpha), se_ratio, stride, act,
                block_id=block_id, l2=l2,
            )
        x = _conv(make_divisible(x.shape[-1] * 6), 1, l2=l2, name="conv_1")(x)
        x = FusedBatchNormalization(**BN_V2V3, name="conv_1_bn")(x)
        return _activation(activation, "conv_1_act")(x)

    def top(x, head):
        last_point = MOBILENET_V3_LAST_POINT[variant]
        if alpha > 1.0:
            last_point = make_divisible(last_point * alpha)
        return _conv_head(x, head, logits="logits", last=(last_point, activation))

    return build_model(
        name, body, Head(include_top, num_classes, pooling, dropout, classifier_activation, l2),
        input_shape=input_shape, preprocessing=preprocessing, min_input_size=MIN_INPUT_SIZE,
        check=check, top=top,
    )


# ---------------------------------------------------------------------------------------------
# Registry: one line per variant.

# fine_tune_from: where fine-tuning a frozen ImageNet backbone starts, as in the keras.io
# transfer guide (MobileNetV2: the last 3 of its 17 inverted residual blocks, and Conv_1).
for _name, _family, _builder, _keras, _fine_tune_from, _fixed in (
    ("mobilenetv1", "mobilenet_v1", MobileNetV1, "MobileNet", None, {}),
    ("mobilenetv2", "mobilenet_v2", MobileNetV2, "MobileNetV2", "block_13_expand", {}),
    ("mobilenetv3_small", "mobilenet_v3", MobileNetV3, "MobileNetV3Small", None, {"variant": "small"}),
    ("mobilenetv3_large", "mobilenet_v3", MobileNetV3, "MobileNetV3Large", None, {"variant": "large"}),
):
    register_model(
        _name,
        family=_family,
        min_input_size=MIN_INPUT_SIZE,
        preprocessing="tf",
        keras_application=_keras,
        fine_tune_from=_fine_tune_from,
        **_fixed,
    )(_builder)
del _name, _family, _builder, _keras, _fine_tune_from, _fixed
