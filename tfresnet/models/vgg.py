"""VGG networks (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", Table 1), with and without batch normalisation.

The four configurations A, B, D and E of Table 1 are rows of `VGG_CONFIGS`, keyed by depth
(11, 13, 16, 19 weight layers). ``vgg16`` and ``vgg19`` have the layer names, weight shapes and
computation of `keras.applications.VGG16` / `VGG19`, so their ImageNet weights transfer by name.
The ``_bn`` variants put batch normalisation between each convolution and its ReLU, as
torchvision's ``vgg*_bn`` do.
"""

from __future__ import annotations

from keras import layers

from tfresnet.models.common import Head, build_model, classifier_head, kernel_regularizer, predictions
from tfresnet.models.layers import FusedBatchNormalization
from tfresnet.models.registry import register_model

__all__ = ["VGG", "VGG_CONFIGS", "VGG_HEADS"]

# Table 1: (filters, convolutions) per block; every block ends in a 2x2 max pool.
VGG_CONFIGS = {
    11: ((64, 1), (128, 1), (256, 2), (512, 2), (512, 2)),  # A
    13: ((64, 2), (128, 2), (256, 2), (512, 2), (512, 2)),  # B
    16: ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),  # D
    19: ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)),  # E
}
VGG_HEADS = ("fc", "avg")
FC_UNITS = 4096

# Five unpadded 2x2 pools: a 32x32 input leaves a 1x1 map; anything smaller leaves none.
MIN_INPUT_SIZE = 32

# torchvision's vgg*_bn statistics (eps=1e-5, momentum=0.1 in torch's convention), so that
# their weights can be ported; keras.applications has no batch-normalised VGG.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def vgg_block(x, filters: int, convs: int, *, block: int, batch_norm: bool, l2: float):
    """`convs` 3x3 convolutions with ReLU, then a 2x2 max pool; names ``block{block}_...``."""
    for i in range(1, convs + 1):
        name = f"block{block}_conv{i}"
        if batch_norm:
            # The bias would be cancelled by the batch-norm mean subtraction.
            x = layers.Conv2D(
                filters, 3, padding="same", use_bias=False,
                kernel_regularizer=kernel_regularizer(l2), name=name,
            )(x)
            x = FusedBatchNormalization(
                epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn"
            )(x)
            x = layers.ReLU(name=f"{name}_relu")(x)
        else:
            # Activation fused into the conv, exactly as keras.applications builds VGG16/19.
            x = layers.Conv2D(
                filters, 3, padding="same", activation="relu",
                kernel_regularizer=kernel_regularizer(l2), name=name,
            )(x)
    return layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)


def vgg_stages(x, config, *, batch_norm: bool, l2: float):
    """The convolutional body: one `vgg_block` per (filters, convs) row of `config`."""
    for block, (filters, convs) in enumerate(config, start=1):
        x = vgg_block(x, filters, convs, block=block, batch_norm=batch_norm, l2=l2)
    return x


def _fc_head(x, head: Head):
    """Flatten -> `fc1` -> `fc2` (4096 wide, ReLU) -> `predictions`, as keras.applications' VGG."""
    # Section 3.1: the two 4096-wide layers are regularised by dropout (0.5 in the paper).
    x = layers.Flatten(name="flatten")(x)
    for fc in ("fc1", "fc2"):
        x = layers.Dense(
            FC_UNITS, activation="relu", kernel_regularizer=kernel_regularizer(head.l2), name=fc
        )(x)
        if head.dropout:
            x = layers.Dropout(head.dropout, name=f"{fc}_dropout")(x)
    return predictions(x, head)


def VGG(
    *, depth: int, batch_norm: bool = False, head: str = "fc", input_shape=(224, 224, 3),
    num_classes: int = 1000, include_top: bool = True, pooling=None,
    classifier_activation="softmax", l2: float = 0.0, dropout: float = 0.0,
    preprocessing: str | None = None, name: str | None = None,
):
    """Builds a VGG network.

    Args:
        depth: number of weight layers, a key of `VGG_CONFIGS` (11, 13, 16 or 19).
        batch_norm: put batch normalisation between every convolution (then bias-free) and
            its ReLU.
        head: the classifier on top when ``include_top=True``:
            - ``"fc"`` (default): flatten -> ``fc1`` (4096, ReLU) -> ``fc2`` (4096, ReLU) ->
              ``predictions``, as in the paper and keras.applications. Flattening fixes the
              input size: the head only fits the size it was built for, and ImageNet weights
              only load at 224x224.
            - ``"avg"``: global average pooling -> ``predictions``. Works at any input size and
              is the usual choice for small images such as 32x32 CIFAR or MNIST.
        input_shape: (height, width, channels); height and width at least 32. ``head="fc"``
            needs them fixed (not None).
        num_classes: size of the `predictions` layer.
        include_top: add the classifier head; otherwise the output is the last block's feature
            map, reduced by `pooling`.
        pooling: None, "avg" or "max"; used only when ``include_top=False``.
        classifier_activation: activation of `predictions` (None for logits).
        l2: L2 penalty on every convolution and dense kernel.
        dropout: dropout rate after ``fc1`` and ``fc2`` (``head="fc"``; the paper used 0.5) or
            before ``predictions`` (``head="avg"``). 0.0 keeps keras.applications' computation.
        preprocessing: a `tfresnet.models.layers.Preprocess` mode to scale raw pixels inside the
            model (``"caffe"`` for ImageNet weights), or None.
        name: model name; defaults to ``vgg{depth}`` (``_bn`` appended with batch norm).

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an unknown depth or head, an input smaller than 32x32, ``head="fc"``
            with an unknown input size, or a bad common argument.
    """
    name = name or f"vgg{depth}{'_bn' if batch_norm else ''}"

    def check(shape):
        if depth not in VGG_CONFIGS:
            raise ValueError(
                f"{name}: depth must be one of {sorted(VGG_CONFIGS)}. Received depth={depth!r}"
            )
        if head not in VGG_HEADS:
            raise ValueError(f"{name}: head must be one of {VGG_HEADS}. Received head={head!r}")
        if include_top and head == "fc" and None in shape[:2]:
            raise ValueError(
                f"{name}: head='fc' flattens the last feature map, so it needs a fixed input "
                f"size; use head='avg' for variable sizes. Received input_shape={input_shape}"
            )

    return build_model(
        name, lambda x: vgg_stages(x, VGG_CONFIGS[depth], batch_norm=batch_norm, l2=l2),
        Head(include_top, num_classes, pooling, dropout, classifier_activation, l2),
        input_shape=input_shape, preprocessing=preprocessing, min_input_size=MIN_INPUT_SIZE,
        check=check, top=_fc_head if head == "fc" else classifier_head,
    )

for _depth in VGG_CONFIGS:
    for _bn in (False, True):
        _name = f"vgg{_depth}{'_bn' if _bn else ''}"
        register_model(
            _name,
            family="vgg",
            min_input_size=MIN_INPUT_SIZE,
            preprocessing="caffe",
            keras_application=f"VGG{_depth}" if _depth in (16, 19) and not _bn else None,
            # The last block, as in the keras.io transfer guide; for the recipes' backbone only, so
            # other depths keep unfreezing the whole backbone (see resnet.FINE_TUNE_FROM).
            fine_tune_from="block5_conv1" if _name == "vgg16" else None,
            depth=_depth,
            batch_norm=_bn,
        )(VGG)
del _depth, _bn, _name
