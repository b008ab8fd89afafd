"""The residual blocks and stages of `tfresnet.models.resnet`: v1 and v2, basic and bottleneck.

Block functions in the manner of `keras/src/applications/resnet.py` (`residual_block_v1` ->
`stack_residual_blocks_v1`): every layer takes a deterministic name from its stage and block
(``conv3_block2_1_conv``), so ImageNet weights transfer from keras.applications by name. The
families, their depth tables and the registered variants are in `tfresnet.models.resnet`.
"""

from __future__ import annotations

import functools

import keras
from keras import layers, ops

from tfresnet.models.common import kernel_regularizer
from tfresnet.models.layers import FusedBatchNormalization, StochasticDepth, TunedConv2D

__all__ = [
    "ZeroPadShortcut",
    "basic_block_v1",
    "basic_block_v2",
    "bottleneck_block_v1",
    "bottleneck_block_v2",
    "stack_blocks",
    "stack_blocks_v1",
    "stack_blocks_v2",
]

EXPANSION = {"basic": 1, "bottleneck": 4}
BN_EPSILON = 1.001e-5  # keras.applications' value; the ported Caffe/TF-slim weights expect it
# Batch-norm moving-average momentum, the builders' `bn_momentum` default. keras.applications uses
# 0.99, which is right for long ImageNet runs. Short runs from scratch need 0.9 (PyTorch's
# default, and the original CIFAR ResNets'): with 0.99 the moving variance still carries ~7% of
# its initial 1.0 after 250 steps, which, measured here on ResNet-20/MNIST, left training
# accuracy at 99.9% and inference accuracy at chance. Momentum is not a weight, so it changes
# nothing in weight transfer.
IMAGENET_BN_MOMENTUM = 0.99
SMALL_BN_MOMENTUM = 0.9


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


def conv(x, filters, kernel_size, *, stride=1, padding="valid", use_bias, l2, name):
    return TunedConv2D(
        filters,
        kernel_size,
        strides=stride,
        padding=padding,
        use_bias=use_bias,
        kernel_regularizer=kernel_regularizer(l2),
        name=name,
    )(x)


def _bn(x, name, momentum):
    return FusedBatchNormalization(axis=-1, epsilon=BN_EPSILON, momentum=momentum, name=name)(x)


def bn_relu(x, prefix, momentum):
    """Batch norm `{prefix}_bn`, then ReLU `{prefix}_relu`."""
    x = _bn(x, f"{prefix}_bn", momentum)
    return layers.Activation("relu", name=f"{prefix}_relu")(x)


def conv3x3(x, filters, *, stride, use_bias, l2, name):
    """A 3x3 conv named `{name}_conv`, symmetrically padded when strided (then `{name}_pad`)."""
    if stride == 1:
        return conv(x, filters, 3, padding="same", use_bias=use_bias, l2=l2, name=f"{name}_conv")
    # "same" padding at stride 2 pads only the bottom/right of an even-sized map, which shifts
    # the sampled grid one pixel off the shortcut's (rows 0, 2, 4, ...); padding 1 on every side,
    # as the paper's Torch code and torchvision do, keeps the two branches aligned.
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return conv(x, filters, 3, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_conv")




def _shortcut_v1(x, out_channels, *, stride, shortcut, use_bias, l2, bn_momentum, name):
    """The shortcut branch of a v1 block, or None for a plain block."""
    if shortcut is None:
        return None
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    if shortcut == "projection":
        x = conv(
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
    x = conv3x3(x, filters, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_1")
    x = bn_relu(x, f"{name}_1", bn_momentum)
    x = conv3x3(x, filters, stride=1, use_bias=use_bias, l2=l2, name=f"{name}_2")
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
        use_bias: as in `basic_block_v1`.
        l2: as in `basic_block_v1`.
        drop_rate: as in `basic_block_v1`.
        bn_momentum: as in `basic_block_v1`.
        name: as in `basic_block_v1`.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    out_channels = EXPANSION["bottleneck"] * filters
    sc = _shortcut_v1(x, out_channels, stride=stride, shortcut=shortcut, use_bias=use_bias, l2=l2,
                      bn_momentum=bn_momentum, name=name)
    x = conv(x, filters, 1, stride=stride, use_bias=use_bias, l2=l2, name=f"{name}_1_conv")
    x = bn_relu(x, f"{name}_1", bn_momentum)
    x = conv(x, filters, 3, padding="same", use_bias=use_bias, l2=l2, name=f"{name}_2_conv")
    x = bn_relu(x, f"{name}_2", bn_momentum)
    x = conv(x, out_channels, 1, use_bias=use_bias, l2=l2, name=f"{name}_3_conv")
    x = _bn(x, f"{name}_3_bn", bn_momentum)
    return _merge_v1(x, sc, drop_rate=drop_rate, name=name)


def _preact_and_shortcut(x, out_channels, *, stride, l2, bn_momentum, name):
    """The pre-activation of a v2 block and its shortcut, as keras' `residual_block_v2` has them."""
    preact = bn_relu(x, f"{name}_preact", bn_momentum)
    if x.shape[-1] != out_channels:
        # Projecting the pre-activation, not x, is keras' (and the paper's Fig. 4) choice.
        shortcut = conv(
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
        l2: as in `basic_block_v1`.
        drop_rate: as in `basic_block_v1`.
        bn_momentum: as in `basic_block_v1`.
        name: as in `basic_block_v1`.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    preact, sc = _preact_and_shortcut(x, filters, stride=stride, l2=l2, bn_momentum=bn_momentum,
                                      name=name)
    x = conv3x3(preact, filters, stride=stride, use_bias=False, l2=l2, name=f"{name}_1")
    x = bn_relu(x, f"{name}_1", bn_momentum)
    x = conv3x3(x, filters, stride=1, use_bias=True, l2=l2, name=f"{name}_2")
    return _merge_v2(x, sc, drop_rate=drop_rate, name=name)


def bottleneck_block_v2(
    x, filters, *, stride=1, l2=0.0, drop_rate=None, bn_momentum=IMAGENET_BN_MOMENTUM, name
):
    """Pre-activation bottleneck, 4x expansion; keras' `residual_block_v2` (He et al. 2016).

    Args:
        x: input tensor (channels last).
        filters: channels of the bottleneck; the block outputs ``4 * filters``.
        stride: stride of the 3x3 conv (and of the shortcut).
        l2: as in `basic_block_v1`.
        drop_rate: as in `basic_block_v1`.
        bn_momentum: as in `basic_block_v1`.
        name: as in `basic_block_v1`.

    Returns:
        The block's output tensor, from the layer `{name}_out`.
    """
    out_channels = EXPANSION["bottleneck"] * filters
    preact, sc = _preact_and_shortcut(x, out_channels, stride=stride, l2=l2,
                                      bn_momentum=bn_momentum, name=name)
    x = conv(preact, filters, 1, use_bias=False, l2=l2, name=f"{name}_1_conv")
    x = bn_relu(x, f"{name}_1", bn_momentum)
    # keras pads explicitly even at stride 1; kept so the layer lists match exactly.
    x = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(x)
    x = conv(x, filters, 3, stride=stride, use_bias=False, l2=l2, name=f"{name}_2_conv")
    x = bn_relu(x, f"{name}_2", bn_momentum)
    x = conv(x, out_channels, 1, use_bias=True, l2=l2, name=f"{name}_3_conv")
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
