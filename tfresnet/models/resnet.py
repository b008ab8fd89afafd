"""ResNets: v1 and v2 for ImageNet, the small-image ResNets for CIFAR-10, and their plain twins.

Papers followed:

- He, Zhang, Ren and Sun 2015, "Deep Residual Learning for Image Recognition", arXiv:1512.03385.
  Table 1 gives the ImageNet depths 18-152 (`RESNET_DEPTHS`); section 4.2 gives the 6n+2-layer
  networks for 32x32 images (`SMALL_RESNET_DEPTHS`) with the parameter-free shortcut "option A"
  (`ZeroPadShortcut`), and the plain networks both sections compare against, which are the same
  stacks with every shortcut removed.
- He, Zhang, Ren and Sun 2016, "Identity Mappings in Deep Residual Networks", arXiv:1603.05027:
  the pre-activation (v2) block.

The bottleneck variants reproduce `keras.applications` ResNet50/101/152 and ResNet50V2/101V2/152V2
layer for layer (names, weight shapes and computation), so that ImageNet weights transfer by layer
name (`tfresnet.models.load_keras_applications_weights`). That means keeping keras' choices where
they differ from other implementations:

- v1 puts a stage's stride on the first 1x1 conv of its first bottleneck and on the projection
  shortcut, as the original Caffe model does (torchvision's "v1.5" strides the 3x3 instead);
- every v1 conv has a bias although batch norm follows it; ResNet-18 v1 therefore counts
  11,703,912 parameters here against torchvision's 11,689,512: 4,800 conv biases, plus 9,600
  batch-norm moving statistics that Keras counts as (non-trainable) weights and PyTorch as buffers;
- v2 follows TF-slim: a stage's stride sits on the last block of stages 2-4 (with a 1x1 max-pool
  as its shortcut), the stem conv has a bias and no batch norm, and `post_bn` closes the network.

The basic-block variants (18, 34), which keras.applications lacks, use the same naming scheme
(`convN_blockM_1_conv`, `_2_conv`, `_0_conv` for a projection) and the same bias rules.
"""

from __future__ import annotations

import contextvars
import functools

import keras
from keras import layers, ops

from tfresnet.models.common import (
    check_common_args,
    classifier_head,
    drop_path_rates,
    kernel_regularizer,
    model_input,
)
from tfresnet.models.layers import StochasticDepth
from tfresnet.models.registry import register_model

__all__ = [
    "RESNET_DEPTHS",
    "SMALL_RESNET_DEPTHS",
    "ResNet",
    "SmallResNet",
    "ZeroPadShortcut",
    "basic_block_v1",
    "basic_block_v2",
    "bottleneck_block_v1",
    "bottleneck_block_v2",
    "stack_blocks_v1",
    "stack_blocks_v2",
]

# depth -> (block, blocks per stage conv2..conv5); He et al. 2015, Table 1.
RESNET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# depth -> basic blocks per stage, n = (depth - 2) / 6; He et al. 2015, section 4.2.
SMALL_RESNET_DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}

IMAGENET_STAGE_FILTERS = (64, 128, 256, 512)
SMALL_STAGE_FILTERS = (16, 32, 64)
EXPANSION = {"basic": 1, "bottleneck": 4}
# v1 downsamples in the first block of a stage, v2 (TF-slim) in the last one; both end at /32.
V1_STAGE_STRIDES = (1, 2, 2, 2)
V2_STAGE_STRIDES = (2, 2, 2, 1)
SMALL_STAGE_STRIDES = (1, 2, 2)
BN_EPSILON = 1.001e-5  # keras.applications' value; the ported Caffe/TF-slim weights expect it

# Every strided layer here is either preceded by zero padding or is a 1x1 conv/pool, so each one
# maps a side of h pixels to ceil(h / 2) >= 1 and any input of at least one pixel builds and runs.
# Below the total stride (32 with the ImageNet stem, 4 for the small nets) the last stages see a
# 1x1 map, where a 3x3 conv only uses its centre tap: degenerate, but well defined (28x28 MNIST
# digits give resnet18 a 1x1 map from conv5 on). keras.applications' own floor of 32 is a
# convention, not a constraint of these graphs, so it is not imposed.
MIN_INPUT_SIZE = 1

KERAS_APPLICATION_DEPTHS = (50, 101, 152)


@keras.saving.register_keras_serializable(package="tfresnet")
class ZeroPadShortcut(layers.Layer):
    """The parameter-free shortcut "option A" of He et al. 2015 (sections 3.3 and 4.2).

    Subsamples the input by `strides` and appends zero channels up to `filters`, so a residual
    network has exactly as many parameters as its plain twin. A layer rather than a `Lambda`
    because Lambda layers do not load with ``safe_mode=True``.

    Args:
        filters: number of output channels, at least the number of input channels.
        strides: spatial subsampling factor; keeps rows and columns 0, s, 2s, ... which are the
            centres a 3x3 conv with symmetric padding of 1 and the same stride samples.
    """

    def __init__(self, filters: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def build(self, input_shape):
        if input_shape[-1] > self.filters:
            raise ValueError(
                f"ZeroPadShortcut can only add channels: filters={self.filters} is less than the "
                f"input's {input_shape[-1]}. Received input_shape={input_shape}"
            )

    def call(self, inputs):
        s = self.strides
        x = inputs[:, ::s, ::s, :] if s > 1 else inputs
        extra = self.filters - inputs.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]]) if extra else x

    def compute_output_shape(self, input_shape):
        def sub(d):
            return None if d is None else -(-d // self.strides)

        return (input_shape[0], sub(input_shape[1]), sub(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def _conv(x, filters, kernel_size, *, stride=1, padding="valid", use_bias, l2, name):
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        padding=padding,
        use_bias=use_bias,
        kernel_regularizer=kernel_regularizer(l2),
        name=name,
    )(x)


# Set by the builders for the duration of one build (see `_with_bn_momentum`), so the block
# functions need not thread it through every call.
_BN_MOMENTUM = contextvars.ContextVar("bn_momentum", default=0.99)


def _bn(x, name):
    return layers.BatchNormalization(
        axis=-1, epsilon=BN_EPSILON, momentum=_BN_MOMENTUM.get(), name=name
    )(x)


def _with_bn_momentum(default: float):
    """Adds a `bn_momentum` argument to a builder: the batch-norm moving-average momentum.

    keras.applications uses 0.99, which is right for long ImageNet runs. Short runs from scratch
    need 0.9 (PyTorch's default, and the original CIFAR ResNets'): with 0.99 the moving
    variance still carries ~7% of its initial 1.0 after 250 steps, which, measured here on
    ResNet-20/MNIST, left training accuracy at 99.9% and inference accuracy at chance.
    Momentum is not a weight, so this changes nothing in weight transfer.
    """

    def wrap(builder):
        @functools.wraps(builder)
        def build(*, bn_momentum: float = default, **kwargs):
            if not isinstance(bn_momentum, (int, float)) or not 0.0 <= bn_momentum < 1.0:
                raise ValueError(f"bn_momentum must be in [0, 1). Received bn_momentum={bn_momentum!r}")
            token = _BN_MOMENTUM.set(float(bn_momentum))
            try:
                return builder(**kwargs)
            finally:
                _BN_MOMENTUM.reset(token)

        return build

    return wrap


def _conv3x3(x, filters, *, stride, use_bias, l2, name):
    """A 3x3 conv named `{name}_conv`, symmetrically padded when strided (then `{name}_pad`)."""
    if stride == 1:
        return _conv(x, filters, 3, padding="same", use_bias=use_bias, l2=l2, name=f"{name}_conv")
    # "same" padding at stride 2 pads only the bottom/right of an even-sized map, which shifts
    # the sampled grid one pixel off the shortcut's (rows 0, 2, 4, ...); padding 1 on every side,
    # as the paper's Torch code and torchvision do, keeps the two branches aligned.
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return _conv(x, filters, 3, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_conv")


def _shortcut_v1(x, out_channels, *, stride, shortcut, use_bias, l2, name):
    """The shortcut branch of a v1 block, or None for a plain block."""
    if shortcut is None:
        return None
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    if shortcut == "projection":
        x = _conv(
            x, out_channels, 1, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_0_conv"
        )
        return _bn(x, f"{name}_0_bn")
    if shortcut == "zero_pad":
        return ZeroPadShortcut(out_channels, stride, name=f"{name}_0_pad")(x)
    raise ValueError(
        f"shortcut must be 'projection', 'zero_pad' or None. Received shortcut={shortcut!r}"
    )


def _merge_v1(residual, shortcut, *, drop_rate, name):
    if shortcut is not None:
        if drop_rate is not None:
            residual = StochasticDepth(drop_rate, name=f"{name}_drop_path")(residual)
        residual = layers.Add(name=f"{name}_add")([shortcut, residual])
    return layers.Activation("relu", name=f"{name}_out")(residual)


def basic_block_v1(
    x, filters, *, stride=1, shortcut="projection", use_bias=True, l2=0.0, drop_rate=None, name
):
    """Two 3x3 convs with batch norm, added to the shortcut, then ReLU (He et al. 2015, Fig. 2).

    Args:
        x: input tensor (channels last).
        filters: output channels of both convs and of the block.
        stride: stride of the first conv (and of the shortcut).
        shortcut: what the shortcut does where the shape changes: ``"projection"`` (1x1 conv and
            batch norm, option B), ``"zero_pad"`` (`ZeroPadShortcut`, option A), or None for a
            plain block with no shortcut at all. Where the shape is kept it is the identity.
        use_bias: whether the convs have biases (keras.applications' v1 convs do).
        l2: L2 penalty on every conv kernel.
        drop_rate: stochastic-depth rate of the residual branch, or None for no
            `{name}_drop_path` layer.
        name: block prefix, e.g. ``"conv3_block1"``.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    sc = _shortcut_v1(
        x, filters, stride=stride, shortcut=shortcut, use_bias=use_bias, l2=l2, name=name
    )
    x = _conv3x3(x, filters, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_1")
    x = _bn(x, f"{name}_1_bn")
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = _conv3x3(x, filters, stride=1, use_bias=use_bias, l2=l2, name=f"{name}_2")
    x = _bn(x, f"{name}_2_bn")
    return _merge_v1(x, sc, drop_rate=drop_rate, name=name)


def bottleneck_block_v1(
    x, filters, *, stride=1, shortcut="projection", use_bias=True, l2=0.0, drop_rate=None, name
):
    """1x1, 3x3, 1x1 convs with batch norm, 4x expansion; keras' `residual_block_v1`.

    Args:
        x: input tensor (channels last).
        filters: channels of the bottleneck; the block outputs ``4 * filters``.
        stride: stride of the first 1x1 conv and of the projection shortcut.
        shortcut: ``"projection"``, ``"zero_pad"`` or None, as in `basic_block_v1`.
        use_bias: whether the convs have biases (keras.applications' v1 convs do).
        l2: L2 penalty on every conv kernel.
        drop_rate: stochastic-depth rate of the residual branch, or None for no
            `{name}_drop_path` layer.
        name: block prefix, e.g. ``"conv3_block1"``.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    out_channels = EXPANSION["bottleneck"] * filters
    sc = _shortcut_v1(
        x, out_channels, stride=stride, shortcut=shortcut, use_bias=use_bias, l2=l2, name=name
    )
    x = _conv(x, filters, 1, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_1_conv")
    x = _bn(x, f"{name}_1_bn")
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = _conv(x, filters, 3, padding="same", use_bias=use_bias, l2=l2, name=f"{name}_2_conv")
    x = _bn(x, f"{name}_2_bn")
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = _conv(x, out_channels, 1, use_bias=use_bias, l2=l2, name=f"{name}_3_conv")
    x = _bn(x, f"{name}_3_bn")
    return _merge_v1(x, sc, drop_rate=drop_rate, name=name)


def _preact_and_shortcut(x, out_channels, *, stride, l2, name):
    """The pre-activation of a v2 block and its shortcut, as keras' `residual_block_v2` has them."""
    preact = _bn(x, f"{name}_preact_bn")
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if x.shape[-1] != out_channels:
        # Projecting the pre-activation, not x, is keras' (and the paper's Fig. 4) choice.
        shortcut = _conv(
            preact, out_channels, 1, stride=stride, use_bias=True, l2=l2, name=f"{name}_0_conv"
        )
    elif stride > 1:
        shortcut = layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    return preact, shortcut


def _merge_v2(residual, shortcut, *, drop_rate, name):
    if drop_rate is not None:
        residual = StochasticDepth(drop_rate, name=f"{name}_drop_path")(residual)
    return layers.Add(name=f"{name}_out")([shortcut, residual])


def basic_block_v2(x, filters, *, stride=1, l2=0.0, drop_rate=None, name):
    """Pre-activation basic block: BN, ReLU, 3x3 conv, BN, ReLU, 3x3 conv (He et al. 2016).

    Follows keras' bias rule for v2: a conv has a bias only where no batch norm follows it
    inside the block (`_2_conv`, `_0_conv`).

    Args:
        x: input tensor (channels last).
        filters: output channels of both convs and of the block.
        stride: stride of the first 3x3 conv (and of the shortcut).
        l2: L2 penalty on every conv kernel.
        drop_rate: stochastic-depth rate of the residual branch, or None for no
            `{name}_drop_path` layer.
        name: block prefix, e.g. ``"conv3_block2"``.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    preact, sc = _preact_and_shortcut(x, filters, stride=stride, l2=l2, name=name)
    x = _conv3x3(preact, filters, stride=stride, use_bias=False, l2=l2, name=f"{name}_1")
    x = _bn(x, f"{name}_1_bn")
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = _conv3x3(x, filters, stride=1, use_bias=True, l2=l2, name=f"{name}_2")
    return _merge_v2(x, sc, drop_rate=drop_rate, name=name)


def bottleneck_block_v2(x, filters, *, stride=1, l2=0.0, drop_rate=None, name):
    """Pre-activation bottleneck, 4x expansion; keras' `residual_block_v2` (He et al. 2016).

    Args:
        x: input tensor (channels last).
        filters: channels of the bottleneck; the block outputs ``4 * filters``.
        stride: stride of the 3x3 conv (and of the shortcut).
        l2: L2 penalty on every conv kernel.
        drop_rate: stochastic-depth rate of the residual branch, or None for no
            `{name}_drop_path` layer.
        name: block prefix, e.g. ``"conv3_block2"``.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    out_channels = EXPANSION["bottleneck"] * filters
    preact, sc = _preact_and_shortcut(x, out_channels, stride=stride, l2=l2, name=name)
    x = _conv(preact, filters, 1, use_bias=False, l2=l2, name=f"{name}_1_conv")
    x = _bn(x, f"{name}_1_bn")
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    # keras pads explicitly even at stride 1; kept so the layer lists match exactly.
    x = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(x)
    x = _conv(x, filters, 3, stride=stride, use_bias=False, l2=l2, name=f"{name}_2_conv")
    x = _bn(x, f"{name}_2_bn")
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = _conv(x, out_channels, 1, use_bias=True, l2=l2, name=f"{name}_3_conv")
    return _merge_v2(x, sc, drop_rate=drop_rate, name=name)


def stack_blocks_v1(
    x, block_fn, filters, blocks, *, stride, shortcut, use_bias, l2, drop_rates, name
):
    """One v1 stage: `blocks` blocks named `{name}_block1...`, the first one strided.

    Args:
        x: input tensor.
        block_fn: `basic_block_v1` or `bottleneck_block_v1`.
        filters: the blocks' `filters`.
        blocks: number of blocks.
        stride: stride of the first block.
        shortcut: the blocks' `shortcut` (None for a plain stage).
        use_bias: whether the convs have biases.
        l2: L2 penalty on every conv kernel.
        drop_rates: one stochastic-depth rate (or None) per block.
        name: stage prefix, e.g. ``"conv3"``.

    Returns:
        The stage's output tensor.
    """
    for i in range(blocks):
        x = block_fn(
            x,
            filters,
            stride=stride if i == 0 else 1,
            shortcut=shortcut,
            use_bias=use_bias,
            l2=l2,
            drop_rate=drop_rates[i],
            name=f"{name}_block{i + 1}",
        )
    return x


def stack_blocks_v2(x, block_fn, filters, blocks, *, stride, l2, drop_rates, name):
    """One v2 stage, strided in its LAST block as keras' `stack_residual_blocks_v2` is.

    Args:
        x: input tensor.
        block_fn: `basic_block_v2` or `bottleneck_block_v2`.
        filters: the blocks' `filters`.
        blocks: number of blocks.
        stride: stride of the last block.
        l2: L2 penalty on every conv kernel.
        drop_rates: one stochastic-depth rate (or None) per block.
        name: stage prefix, e.g. ``"conv3"``.

    Returns:
        The stage's output tensor.
    """
    for i in range(blocks):
        x = block_fn(
            x,
            filters,
            stride=stride if i == blocks - 1 else 1,
            l2=l2,
            drop_rate=drop_rates[i],
            name=f"{name}_block{i + 1}",
        )
    return x


_BLOCKS_V1 = {"basic": basic_block_v1, "bottleneck": bottleneck_block_v1}
_BLOCKS_V2 = {"basic": basic_block_v2, "bottleneck": bottleneck_block_v2}


def _check_depth(name, depth, table):
    if depth not in table:
        raise ValueError(f"{name}: depth must be one of {sorted(table)}. Received depth={depth!r}")


def _check_plain(name, shortcut, drop_path):
    if not shortcut and drop_path:
        raise ValueError(
            f"{name}: drop_path drops residual branches, and a plain network (shortcut=False) "
            f"has none; use dropout instead. Received drop_path={drop_path!r}"
        )


def _rates_per_stage(drop_path, stage_blocks):
    """Per-stage lists of per-block drop rates; all None (no layer at all) when drop_path is 0."""
    # With drop_path > 0 even the first block, at rate 0, gets its (identity) layer, so every
    # block has a `_drop_path` layer to find by name; with 0 there is none, as in keras.
    n = sum(stage_blocks)
    rates = drop_path_rates(drop_path, n) if drop_path else [None] * n
    starts = [sum(stage_blocks[:i]) for i in range(len(stage_blocks))]
    return [rates[s : s + b] for s, b in zip(starts, stage_blocks)]


@_with_bn_momentum(0.99)
def ResNet(
    *,
    depth: int,
    preact: bool = False,
    shortcut: bool = True,
    input_shape=(224, 224, 3),
    num_classes: int = 1000,
    include_top: bool = True,
    pooling=None,
    classifier_activation="softmax",
    l2: float = 0.0,
    dropout: float = 0.0,
    drop_path: float = 0.0,
    preprocessing: str | None = None,
    name: str | None = None,
):
    """An ImageNet ResNet (He et al. 2015, Table 1), v1 or pre-activation v2, or its plain twin.

    The bottleneck depths match `keras.applications.ResNet50` ... `ResNet152V2` layer for layer.

    Args:
        depth: a key of `RESNET_DEPTHS`: 18, 34, 50, 101 or 152.
        preact: False for v1 (He et al. 2015), True for the pre-activation v2 (He et al. 2016).
        shortcut: False gives the plain network of the paper: the same v1 layers, names and
            strides with no shortcut, projection or addition.
        input_shape: (height, width, channels); height and width may be None.
        num_classes: size of the classifier when `include_top`.
        include_top: whether to end with global average pooling and the `predictions` layer.
        pooling: None, ``"avg"`` or ``"max"``: the pooling when `include_top` is False.
        classifier_activation: activation of `predictions` (None for logits).
        l2: L2 penalty on every conv and dense kernel.
        dropout: dropout rate before the classifier.
        drop_path: stochastic-depth rate of the last block, rising linearly from 0 at the first.
        preprocessing: input scaling mode applied inside the model, or None for none.
        bn_momentum: batch-norm moving-average momentum (see `_with_bn_momentum`).
        name: model name; defaults to the registry name (``"resnet50"``, ``"resnet50v2"``,
            ``"plain50"``).

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for a bad common argument, an unknown `depth`, `drop_path` on a plain network,
            or a plain pre-activation network (not defined by either paper).
    """
    if name is None:
        name = f"plain{depth}" if not shortcut else f"resnet{depth}{'v2' if preact else ''}"
    input_shape = check_common_args(
        name=name,
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        l2=l2,
        dropout=dropout,
        drop_path=drop_path,
        min_input_size=MIN_INPUT_SIZE,
    )
    _check_depth(name, depth, RESNET_DEPTHS)
    _check_plain(name, shortcut, drop_path)
    if preact and not shortcut:
        raise ValueError(
            f"{name}: plain networks are v1 networks without shortcuts; there is no plain "
            f"pre-activation network. Received preact={preact!r}, shortcut={shortcut!r}"
        )
    block, stage_blocks = RESNET_DEPTHS[depth]
    stage_rates = _rates_per_stage(drop_path, stage_blocks)

    inputs, x = model_input(input_shape, preprocessing)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    # v2 leaves the stem conv un-normalised: the first block's preact_bn normalises its output.
    x = _conv(x, 64, 7, stride=2, use_bias=True, l2=l2, name="conv1_conv")
    if not preact:
        x = _bn(x, "conv1_bn")
        x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    if preact:
        for stage, (filters, blocks, stride, rates) in enumerate(
            zip(IMAGENET_STAGE_FILTERS, stage_blocks, V2_STAGE_STRIDES, stage_rates), start=2
        ):
            x = stack_blocks_v2(
                x,
                _BLOCKS_V2[block],
                filters,
                blocks,
                stride=stride,
                l2=l2,
                drop_rates=rates,
                name=f"conv{stage}",
            )
        x = _bn(x, "post_bn")
        x = layers.Activation("relu", name="post_relu")(x)
    else:
        for stage, (filters, blocks, stride, rates) in enumerate(
            zip(IMAGENET_STAGE_FILTERS, stage_blocks, V1_STAGE_STRIDES, stage_rates), start=2
        ):
            x = stack_blocks_v1(
                x,
                _BLOCKS_V1[block],
                filters,
                blocks,
                stride=stride,
                shortcut="projection" if shortcut else None,
                use_bias=True,
                l2=l2,
                drop_rates=rates,
                name=f"conv{stage}",
            )

    x = classifier_head(
        x,
        include_top=include_top,
        num_classes=num_classes,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
        l2=l2,
    )
    return keras.Model(inputs, x, name=name)


@_with_bn_momentum(0.9)
def SmallResNet(
    *,
    depth: int,
    shortcut: bool = True,
    input_shape=(32, 32, 3),
    num_classes: int = 10,
    include_top: bool = True,
    pooling=None,
    classifier_activation="softmax",
    l2: float = 0.0,
    dropout: float = 0.0,
    drop_path: float = 0.0,
    preprocessing: str | None = None,
    name: str | None = None,
):
    """A 6n+2-layer ResNet for small images (He et al. 2015, section 4.2), or its plain twin.

    A 3x3 conv with 16 filters, three stages of n basic blocks with 16, 32 and 64 filters (the
    last two starting with stride 2), global average pooling and the classifier. Shortcuts are
    option A (`ZeroPadShortcut`), so the residual and the plain networks have the same
    parameters. Convs have no bias: batch norm follows each one, and there are no ImageNet
    weights to stay compatible with.

    Args:
        depth: a key of `SMALL_RESNET_DEPTHS`: 20, 32, 44, 56 or 110.
        shortcut: False gives the plain network: the same layers and names with no shortcut.
        input_shape: (height, width, channels); height and width may be None.
        num_classes: size of the classifier when `include_top`.
        include_top: whether to end with global average pooling and the `predictions` layer.
        pooling: None, ``"avg"`` or ``"max"``: the pooling when `include_top` is False.
        classifier_activation: activation of `predictions` (None for logits).
        l2: L2 penalty on every conv and dense kernel.
        dropout: dropout rate before the classifier.
        drop_path: stochastic-depth rate of the last block, rising linearly from 0 at the first.
        preprocessing: input scaling mode applied inside the model, or None for none.
        bn_momentum: batch-norm moving-average momentum (see `_with_bn_momentum`).
        name: model name; defaults to ``"resnet{depth}"`` or ``"plain{depth}"``.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for a bad common argument, an unknown `depth`, or `drop_path` on a plain
            network.
    """
    if name is None:
        name = f"{'resnet' if shortcut else 'plain'}{depth}"
    input_shape = check_common_args(
        name=name,
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        l2=l2,
        dropout=dropout,
        drop_path=drop_path,
        min_input_size=MIN_INPUT_SIZE,
    )
    _check_depth(name, depth, SMALL_RESNET_DEPTHS)
    _check_plain(name, shortcut, drop_path)
    stage_blocks = (SMALL_RESNET_DEPTHS[depth],) * len(SMALL_STAGE_FILTERS)
    stage_rates = _rates_per_stage(drop_path, stage_blocks)

    inputs, x = model_input(input_shape, preprocessing)
    x = _conv3x3(x, SMALL_STAGE_FILTERS[0], stride=1, use_bias=False, l2=l2, name="conv1")
    x = _bn(x, "conv1_bn")
    x = layers.Activation("relu", name="conv1_relu")(x)
    for stage, (filters, blocks, stride, rates) in enumerate(
        zip(SMALL_STAGE_FILTERS, stage_blocks, SMALL_STAGE_STRIDES, stage_rates), start=2
    ):
        x = stack_blocks_v1(
            x,
            basic_block_v1,
            filters,
            blocks,
            stride=stride,
            shortcut="zero_pad" if shortcut else None,
            use_bias=False,
            l2=l2,
            drop_rates=rates,
            name=f"conv{stage}",
        )
    x = classifier_head(
        x,
        include_top=include_top,
        num_classes=num_classes,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
        l2=l2,
    )
    return keras.Model(inputs, x, name=name)


def _register(name, builder, family, preprocessing, keras_application=None, **fixed):
    default_input_shape = (32, 32, 3) if builder is SmallResNet else (224, 224, 3)
    register_model(
        name,
        family=family,
        default_input_shape=default_input_shape,
        min_input_size=MIN_INPUT_SIZE,
        preprocessing=preprocessing,
        keras_application=keras_application,
        **fixed,
    )(builder)


# One line of data per variant; a plain twin keeps its residual twin's preprocessing.
for _d in RESNET_DEPTHS:
    _app = f"ResNet{_d}" if _d in KERAS_APPLICATION_DEPTHS else None
    _app_v2 = _app and f"{_app}V2"
    _register(f"resnet{_d}", ResNet, "resnet_v1", "caffe", _app, depth=_d)
    _register(f"resnet{_d}v2", ResNet, "resnet_v2", "tf", _app_v2, depth=_d, preact=True)
    _register(f"plain{_d}", ResNet, "resnet_plain", "caffe", depth=_d, shortcut=False)
for _d in SMALL_RESNET_DEPTHS:
    _register(f"resnet{_d}", SmallResNet, "resnet_small", "unit", depth=_d)
    _register(f"plain{_d}", SmallResNet, "resnet_plain_small", "unit", depth=_d, shortcut=False)
del _d, _app, _app_v2
