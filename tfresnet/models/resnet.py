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

import functools

import keras
from keras import layers, ops

from tfresnet.models.common import Head, build_model, drop_path_rates, kernel_regularizer
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
    "stack_blocks",
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
# Batch-norm moving-average momentum, the builders' `bn_momentum` default. keras.applications uses
# 0.99, which is right for long ImageNet runs. Short runs from scratch need 0.9 (PyTorch's
# default, and the original CIFAR ResNets'): with 0.99 the moving variance still carries ~7% of
# its initial 1.0 after 250 steps, which, measured here on ResNet-20/MNIST, left training
# accuracy at 99.9% and inference accuracy at chance. Momentum is not a weight, so it changes
# nothing in weight transfer.
IMAGENET_BN_MOMENTUM = 0.99
SMALL_BN_MOMENTUM = 0.9

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


def _bn(x, name, momentum):
    return layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, momentum=momentum, name=name)(x)


def _bn_relu(x, prefix, momentum):
    """Batch norm `{prefix}_bn`, then ReLU `{prefix}_relu`."""
    x = _bn(x, f"{prefix}_bn", momentum)
    return layers.Activation("relu", name=f"{prefix}_relu")(x)


def _conv3x3(x, filters, *, stride, use_bias, l2, name):
    """A 3x3 conv named `{name}_conv`, symmetrically padded when strided (then `{name}_pad`)."""
    if stride == 1:
        return _conv(x, filters, 3, padding="same", use_bias=use_bias, l2=l2, name=f"{name}_conv")
    # "same" padding at stride 2 pads only the bottom/right of an even-sized map, which shifts
    # the sampled grid one pixel off the shortcut's (rows 0, 2, 4, ...); padding 1 on every side,
    # as the paper's Torch code and torchvision do, keeps the two branches aligned.
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return _conv(x, filters, 3, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_conv")




def _shortcut_v1(x, out_channels, *, stride, shortcut, use_bias, l2, bn_momentum, name):
    """The shortcut branch of a v1 block, or None for a plain block."""
    if shortcut is None:
        return None
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    if shortcut == "projection":
        x = _conv(
            x, out_channels, 1, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_0_conv"
        )
        return _bn(x, f"{name}_0_bn", bn_momentum)
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
    x, filters, *, stride=1, shortcut="projection", use_bias=True, l2=0.0, drop_rate=None,
    bn_momentum=IMAGENET_BN_MOMENTUM, name,
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
        bn_momentum: moving-average momentum of every batch norm.
        name: block prefix, e.g. ``"conv3_block1"``.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    sc = _shortcut_v1(x, filters, stride=stride, shortcut=shortcut, use_bias=use_bias, l2=l2,
                      bn_momentum=bn_momentum, name=name)
    x = _conv3x3(x, filters, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_1")
    x = _bn_relu(x, f"{name}_1", bn_momentum)
    x = _conv3x3(x, filters, stride=1, use_bias=use_bias, l2=l2, name=f"{name}_2")
    x = _bn(x, f"{name}_2_bn", bn_momentum)
    return _merge_v1(x, sc, drop_rate=drop_rate, name=name)


def bottleneck_block_v1(
    x, filters, *, stride=1, shortcut="projection", use_bias=True, l2=0.0, drop_rate=None,
    bn_momentum=IMAGENET_BN_MOMENTUM, name,
):
    """1x1, 3x3, 1x1 convs with batch norm, 4x expansion; keras' `residual_block_v1`.

    Args:
        x: input tensor (channels last).
        filters: channels of the bottleneck; the block outputs ``4 * filters``.
        stride: stride of the first 1x1 conv and of the projection shortcut.
        shortcut: ``"projection"``, ``"zero_pad"`` or None, as in `basic_block_v1`.
        use_bias, l2, drop_rate, bn_momentum, name: as in `basic_block_v1`.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    out_channels = EXPANSION["bottleneck"] * filters
    sc = _shortcut_v1(x, out_channels, stride=stride, shortcut=shortcut, use_bias=use_bias, l2=l2,
                      bn_momentum=bn_momentum, name=name)
    x = _conv(x, filters, 1, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_1_conv")
    x = _bn_relu(x, f"{name}_1", bn_momentum)
    x = _conv(x, filters, 3, padding="same", use_bias=use_bias, l2=l2, name=f"{name}_2_conv")
    x = _bn_relu(x, f"{name}_2", bn_momentum)
    x = _conv(x, out_channels, 1, use_bias=use_bias, l2=l2, name=f"{name}_3_conv")
    x = _bn(x, f"{name}_3_bn", bn_momentum)
    return _merge_v1(x, sc, drop_rate=drop_rate, name=name)


def _preact_and_shortcut(x, out_channels, *, stride, l2, bn_momentum, name):
    """The pre-activation of a v2 block and its shortcut, as keras' `residual_block_v2` has them."""
    preact = _bn_relu(x, f"{name}_preact", bn_momentum)
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


def basic_block_v2(
    x, filters, *, stride=1, l2=0.0, drop_rate=None, bn_momentum=IMAGENET_BN_MOMENTUM, name
):
    """Pre-activation basic block: BN, ReLU, 3x3 conv, BN, ReLU, 3x3 conv (He et al. 2016).

    Follows keras' bias rule for v2: a conv has a bias only where no batch norm follows it
    inside the block (`_2_conv`, `_0_conv`).

    Args:
        x: input tensor (channels last).
        filters: output channels of both convs and of the block.
        stride: stride of the first 3x3 conv (and of the shortcut).
        l2, drop_rate, bn_momentum, name: as in `basic_block_v1`.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    preact, sc = _preact_and_shortcut(x, filters, stride=stride, l2=l2, bn_momentum=bn_momentum,
                                      name=name)
    x = _conv3x3(preact, filters, stride=stride, use_bias=False, l2=l2, name=f"{name}_1")
    x = _bn_relu(x, f"{name}_1", bn_momentum)
    x = _conv3x3(x, filters, stride=1, use_bias=True, l2=l2, name=f"{name}_2")
    return _merge_v2(x, sc, drop_rate=drop_rate, name=name)


def bottleneck_block_v2(
    x, filters, *, stride=1, l2=0.0, drop_rate=None, bn_momentum=IMAGENET_BN_MOMENTUM, name
):
    """Pre-activation bottleneck, 4x expansion; keras' `residual_block_v2` (He et al. 2016).

    Args:
        x: input tensor (channels last).
        filters: channels of the bottleneck; the block outputs ``4 * filters``.
        stride: stride of the 3x3 conv (and of the shortcut).
        l2, drop_rate, bn_momentum, name: as in `basic_block_v1`.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    out_channels = EXPANSION["bottleneck"] * filters
    preact, sc = _preact_and_shortcut(x, out_channels, stride=stride, l2=l2,
                                      bn_momentum=bn_momentum, name=name)
    x = _conv(preact, filters, 1, use_bias=False, l2=l2, name=f"{name}_1_conv")
    x = _bn_relu(x, f"{name}_1", bn_momentum)
    # keras pads explicitly even at stride 1; kept so the layer lists match exactly.
    x = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(x)
    x = _conv(x, filters, 3, stride=stride, use_bias=False, l2=l2, name=f"{name}_2_conv")
    x = _bn_relu(x, f"{name}_2", bn_momentum)
    x = _conv(x, out_channels, 1, use_bias=True, l2=l2, name=f"{name}_3_conv")
    return _merge_v2(x, sc, drop_rate=drop_rate, name=name)


def stack_blocks(x, block_fn, filters, blocks, *, stride, strided_block, drop_rates, name,
                 **block_args):
    """One stage: `blocks` blocks named `{name}_block1...`, one of them strided.

    v1 strides the first block (``strided_block=0``), v2 the last one (``strided_block=-1``), as
    keras' `stack_residual_blocks_v1` and `stack_residual_blocks_v2` do.

    Args:
        x: input tensor.
        block_fn: one of `basic_block_v1`, `bottleneck_block_v1`, `basic_block_v2`,
            `bottleneck_block_v2`.
        filters: the blocks' `filters`.
        blocks: number of blocks.
        stride: stride of the strided block.
        strided_block: index of the strided block (negative counts from the end).
        drop_rates: one stochastic-depth rate (or None) per block.
        name: stage prefix, e.g. ``"conv3"``.
        **block_args: the blocks' other arguments (`l2`, `bn_momentum`, and for v1 `shortcut`
            and `use_bias`).

    Returns:
        The stage's output tensor.
    """
    strided = strided_block % blocks
    for i in range(blocks):
        x = block_fn(x, filters, stride=stride if i == strided else 1, drop_rate=drop_rates[i],
                     name=f"{name}_block{i + 1}", **block_args)
    return x


stack_blocks_v1 = functools.partial(stack_blocks, strided_block=0)
stack_blocks_v2 = functools.partial(stack_blocks, strided_block=-1)


_BLOCKS_V1 = {"basic": basic_block_v1, "bottleneck": bottleneck_block_v1}
_BLOCKS_V2 = {"basic": basic_block_v2, "bottleneck": bottleneck_block_v2}


def _rates_per_stage(drop_path, stage_blocks):
    """Per-stage lists of per-block drop rates; all None (no layer at all) when drop_path is 0."""
    # With drop_path > 0 even the first block, at rate 0, gets its (identity) layer, so every
    # block has a `_drop_path` layer to find by name; with 0 there is none, as in keras.
    n = sum(stage_blocks)
    rates = drop_path_rates(drop_path, n) if drop_path else [None] * n
    starts = [sum(stage_blocks[:i]) for i in range(len(stage_blocks))]
    return [rates[s : s + b] for s, b in zip(starts, stage_blocks)]


def _stages(x, block_fn, stage_blocks, *, filters, strides, drop_path, **block_args):
    """Stages conv2, conv3, ...: one `stack_blocks` per stage with its filters, stride and rates."""
    rates = _rates_per_stage(drop_path, stage_blocks)
    for stage, (width, blocks, stride, stage_rates) in enumerate(
        zip(filters, stage_blocks, strides, rates), start=2
    ):
        x = stack_blocks(x, block_fn, width, blocks, stride=stride, drop_rates=stage_rates,
                         name=f"conv{stage}", **block_args)
    return x


def _imagenet_body(x, *, depth, preact, shortcut, l2, drop_path, bn_momentum):
    """The 7x7 stem, its max-pool and stages conv2-conv5 (and `post_bn`/`post_relu` for v2)."""
    block, stage_blocks = RESNET_DEPTHS[depth]
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    # v2 leaves the stem conv un-normalised: the first block's preact_bn normalises its output.
    x = _conv(x, 64, 7, stride=2, use_bias=True, l2=l2, name="conv1_conv")
    if not preact:
        x = _bn_relu(x, "conv1", bn_momentum)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    common = {"filters": IMAGENET_STAGE_FILTERS, "drop_path": drop_path, "l2": l2,
              "bn_momentum": bn_momentum}
    if preact:
        x = _stages(x, _BLOCKS_V2[block], stage_blocks, strides=V2_STAGE_STRIDES,
                    strided_block=-1, **common)
        return _bn_relu(x, "post", bn_momentum)
    return _stages(x, _BLOCKS_V1[block], stage_blocks, strides=V1_STAGE_STRIDES, strided_block=0,
                   shortcut="projection" if shortcut else None, use_bias=True, **common)


def _small_body(x, *, depth, width, shortcut, l2, drop_path, bn_momentum):
    """The 3x3 stem and three stages of n basic blocks (section 4.2), `width` times 1, 2, 4 filters."""
    filters = tuple(width * f // SMALL_STAGE_FILTERS[0] for f in SMALL_STAGE_FILTERS)
    x = _conv3x3(x, filters[0], stride=1, use_bias=False, l2=l2, name="conv1")
    x = _bn_relu(x, "conv1", bn_momentum)
    stage_blocks = (SMALL_RESNET_DEPTHS[depth],) * len(filters)
    return _stages(x, basic_block_v1, stage_blocks, filters=filters,
                   strides=SMALL_STAGE_STRIDES, strided_block=0, drop_path=drop_path,
                   shortcut="zero_pad" if shortcut else None, use_bias=False, l2=l2,
                   bn_momentum=bn_momentum)


def _build_resnet(name, table, body, head, *, preprocessing, input_shape, check=None, **body_args):
    """`build_model` with the checks both ResNet builders share; `body_args` go to `body`."""
    depth, shortcut = body_args["depth"], body_args["shortcut"]
    drop_path, bn_momentum = body_args["drop_path"], body_args["bn_momentum"]

    def checks(_shape):
        if not isinstance(bn_momentum, (int, float)) or not 0.0 <= bn_momentum < 1.0:
            raise ValueError(f"bn_momentum must be in [0, 1). Received bn_momentum={bn_momentum!r}")
        if depth not in table:
            raise ValueError(
                f"{name}: depth must be one of {sorted(table)}. Received depth={depth!r}"
            )
        if not shortcut and drop_path:
            raise ValueError(
                f"{name}: drop_path drops residual branches, and a plain network (shortcut=False) "
                f"has none; use dropout instead. Received drop_path={drop_path!r}"
            )
        if check is not None:
            check()

    return build_model(
        name, lambda x: body(x, **body_args), head, input_shape=input_shape,
        preprocessing=preprocessing, min_input_size=MIN_INPUT_SIZE, drop_path=drop_path,
        check=checks,
    )


def ResNet(
    *, depth: int, preact: bool = False, shortcut: bool = True,
    bn_momentum: float = IMAGENET_BN_MOMENTUM, input_shape=(224, 224, 3), num_classes: int = 1000,
    include_top: bool = True, pooling=None, classifier_activation="softmax", l2: float = 0.0,
    dropout: float = 0.0, drop_path: float = 0.0, preprocessing: str | None = None,
    name: str | None = None,
):
    """An ImageNet ResNet (He et al. 2015, Table 1), v1 or pre-activation v2, or its plain twin.

    The bottleneck depths match `keras.applications.ResNet50` ... `ResNet152V2` layer for layer.

    Args:
        depth: a key of `RESNET_DEPTHS`: 18, 34, 50, 101 or 152.
        preact: False for v1 (He et al. 2015), True for the pre-activation v2 (He et al. 2016).
        shortcut: False gives the plain network of the paper: the same v1 layers, names and
            strides with no shortcut, projection or addition.
        bn_momentum: batch-norm moving-average momentum, in [0, 1) (see `IMAGENET_BN_MOMENTUM`).
        input_shape: (height, width, channels); height and width may be None.
        num_classes: size of the classifier when `include_top`.
        include_top: whether to end with global average pooling and the `predictions` layer.
        pooling: None, ``"avg"`` or ``"max"``: the pooling when `include_top` is False.
        classifier_activation: activation of `predictions` (None for logits).
        l2: L2 penalty on every conv and dense kernel.
        dropout: dropout rate before the classifier.
        drop_path: stochastic-depth rate of the last block, rising linearly from 0 at the first.
        preprocessing: input scaling mode applied inside the model, or None for none.
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

    def check():
        if preact and not shortcut:
            raise ValueError(
                f"{name}: plain networks are v1 networks without shortcuts; there is no plain "
                f"pre-activation network. Received preact={preact!r}, shortcut={shortcut!r}"
            )

    head = Head(include_top, num_classes, pooling, dropout, classifier_activation, l2)
    return _build_resnet(
        name, RESNET_DEPTHS, _imagenet_body, head, preprocessing=preprocessing,
        input_shape=input_shape, check=check, depth=depth, preact=preact, shortcut=shortcut, l2=l2,
        drop_path=drop_path, bn_momentum=bn_momentum,
    )


def SmallResNet(
    *, depth: int, shortcut: bool = True, width: int = SMALL_STAGE_FILTERS[0],
    bn_momentum: float = SMALL_BN_MOMENTUM, input_shape=(32, 32, 3), num_classes: int = 10,
    include_top: bool = True, pooling=None, classifier_activation="softmax", l2: float = 0.0,
    dropout: float = 0.0, drop_path: float = 0.0, preprocessing: str | None = None,
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
        width: filters of the stem and the first stage; the later stages have 2 and 4 times as
            many. The paper's 16 is the default; a narrower network makes a task as easy as MNIST
            hard enough for depth to matter (`tfresnet.reproduce.degradation`).
        bn_momentum: batch-norm moving-average momentum, in [0, 1) (see `SMALL_BN_MOMENTUM`).
        name: model name; defaults to ``"resnet{depth}"`` or ``"plain{depth}"``.
        input_shape, num_classes, include_top, pooling, classifier_activation, l2, dropout,
            drop_path, preprocessing: as in `ResNet`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for a bad common argument, an unknown `depth`, a `width` that is not a
            positive integer, or `drop_path` on a plain network.
    """
    if name is None:
        name = f"{'resnet' if shortcut else 'plain'}{depth}"

    def check():
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"{name}: width must be a positive integer (the paper's is 16). "
                             f"Received width={width!r}")

    head = Head(include_top, num_classes, pooling, dropout, classifier_activation, l2)
    return _build_resnet(
        name, SMALL_RESNET_DEPTHS, _small_body, head, preprocessing=preprocessing,
        input_shape=input_shape, check=check, depth=depth, width=width, shortcut=shortcut, l2=l2,
        drop_path=drop_path, bn_momentum=bn_momentum,
    )


# Where fine-tuning a frozen ImageNet backbone starts: the last stage, as in the keras.io
# transfer guide (`ModelSpec.fine_tune_from`). Set for the backbones the transfer recipes were
# written for; a model without one unfreezes its whole backbone unless the config names a layer.
FINE_TUNE_FROM = {"resnet50": "conv5_block1_1_conv", "resnet50v2": "conv5_block1_preact_bn"}


def _register(name, builder, family, preprocessing, keras_application=None, **fixed):
    default_input_shape = (32, 32, 3) if builder is SmallResNet else (224, 224, 3)
    register_model(
        name,
        family=family,
        default_input_shape=default_input_shape,
        min_input_size=MIN_INPUT_SIZE,
        preprocessing=preprocessing,
        keras_application=keras_application,
        fine_tune_from=FINE_TUNE_FROM.get(name),
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
