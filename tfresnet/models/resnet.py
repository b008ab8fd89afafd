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

This module holds the depth tables, the two family builders and the registry lines; the blocks and
stages they stack are in `tfresnet.models.resnet_blocks` (imported here, so
``from tfresnet.models.resnet import basic_block_v1`` keeps working).
"""

from __future__ import annotations

from keras import layers

from tfresnet.models.common import Head, build_model, drop_path_rates
from tfresnet.models.registry import register_model
from tfresnet.models.resnet_blocks import (
    IMAGENET_BN_MOMENTUM,
    SMALL_BN_MOMENTUM,
    ZeroPadShortcut,
    basic_block_v1,
    basic_block_v2,
    bn_relu,
    bottleneck_block_v1,
    bottleneck_block_v2,
    conv,
    conv3x3,
    stack_blocks,
    stack_blocks_v1,
    stack_blocks_v2,
)

# The blocks are listed too: they were defined here before moving to `resnet_blocks`.
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
# v1 downsamples in the first block of a stage, v2 (TF-slim) in the last one; both end at /32.
V1_STAGE_STRIDES = (1, 2, 2, 2)
V2_STAGE_STRIDES = (2, 2, 2, 1)
SMALL_STAGE_STRIDES = (1, 2, 2)

# Every strided layer here is either preceded by zero padding or is a 1x1 conv/pool, so each one
# maps a side of h pixels to ceil(h / 2) >= 1 and any input of at least one pixel builds and runs.
# Below the total stride (32 with the ImageNet stem, 4 for the small nets) the last stages see a
# 1x1 map, where a 3x3 conv only uses its centre tap: degenerate, but well defined (28x28 MNIST
# digits give resnet18 a 1x1 map from conv5 on). keras.applications' own floor of 32 is a
# convention, not a constraint of these graphs, so it is not imposed.
MIN_INPUT_SIZE = 1

KERAS_APPLICATION_DEPTHS = (50, 101, 152)



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
    x = conv(x, 64, 7, stride=2, use_bias=True, l2=l2, name="conv1_conv")
    if not preact:
        x = bn_relu(x, "conv1", bn_momentum)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    common = {"filters": IMAGENET_STAGE_FILTERS, "drop_path": drop_path, "l2": l2,
              "bn_momentum": bn_momentum}
    if preact:
        x = _stages(x, _BLOCKS_V2[block], stage_blocks, strides=V2_STAGE_STRIDES,
                    strided_block=-1, **common)
        return bn_relu(x, "post", bn_momentum)
    return _stages(x, _BLOCKS_V1[block], stage_blocks, strides=V1_STAGE_STRIDES, strided_block=0,
                   shortcut="projection" if shortcut else None, use_bias=True, **common)


def _small_body(x, *, depth, width, shortcut, l2, drop_path, bn_momentum):
    """The 3x3 stem and three stages of n basic blocks (section 4.2), `width` times 1, 2, 4 filters."""
    filters = tuple(width * f // SMALL_STAGE_FILTERS[0] for f in SMALL_STAGE_FILTERS)
    x = conv3x3(x, filters[0], stride=1, use_bias=False, l2=l2, name="conv1")
    x = bn_relu(x, "conv1", bn_momentum)
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
    weights to stay compatible with. `input_shape`, `num_classes`, `include_top`, `pooling`,
    `classifier_activation`, `l2`, `dropout`, `drop_path` and `preprocessing` are as in `ResNet`.

    Args:
        depth: a key of `SMALL_RESNET_DEPTHS`: 20, 32, 44, 56 or 110.
        shortcut: False gives the plain network: the same layers and names with no shortcut.
        width: filters of the stem and the first stage; the later stages have 2 and 4 times as
            many. The paper's 16 is the default; a narrower network makes a task as easy as MNIST
            hard enough for depth to matter (`tfresnet.reproduce.degradation`).
        bn_momentum: batch-norm moving-average momentum, in [0, 1) (see `SMALL_BN_MOMENTUM`).
        name: model name; defaults to ``"resnet{depth}"`` or ``"plain{depth}"``.

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
