"""VGG: keras.applications parity, the two heads, the batch-norm variants and validation.

The registry-wide test (every model builds, trains a step, round-trips) lives elsewhere; these
tests pin what is specific to VGG.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfresnet import create_model, get_model_spec, list_models
from tfresnet.models import load_keras_applications_weights
from tfresnet.models.vgg import VGG_CONFIGS

# The fc head at 224x224 with 1000 classes: 7*7*512 -> 4096 -> 4096 -> 1000.
FC_HEAD_224 = (7 * 7 * 512 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 1000


def _weighted_layers(model):
    return {
        layer.name: [tuple(w.shape) for w in layer.weights]
        for layer in model.layers if layer.weights
    }


def test_registered_names():
    assert list_models("vgg") == [
        "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"
    ]
    for name in list_models("vgg"):
        spec = get_model_spec(name)
        assert (spec.family, spec.preprocessing, spec.min_input_size) == ("vgg", "caffe", 32)
    assert get_model_spec("vgg16").keras_application == "VGG16"
    assert get_model_spec("vgg19").keras_application == "VGG19"
    assert get_model_spec("vgg16_bn").keras_application is None


@pytest.mark.parametrize("name, expected", [("vgg16", 138_357_544), ("vgg19", 143_667_240)])
def test_imagenet_parameter_counts(name, expected):
    assert create_model(name, input_shape=(224, 224, 3)).count_params() == expected


@pytest.mark.parametrize(
    "name, expected",
    [
        # torchvision's vgg11/vgg13 (132,863,336 / 133,047,848) minus the fc head plus a
        # 512 -> 1000 classifier: the same convolutional bodies.
        ("vgg11", 132_863_336 - FC_HEAD_224 + 513_000),
        ("vgg13", 133_047_848 - FC_HEAD_224 + 513_000),
        ("vgg16", 138_357_544 - FC_HEAD_224 + 513_000),
        # Batch norm adds 4 weights per channel and drops the conv bias: 3 per channel.
        ("vgg11_bn", 132_863_336 - FC_HEAD_224 + 513_000 + 3 * 2_752),
    ],
)
def test_avg_head_parameter_counts(name, expected):
    assert create_model(name, input_shape=(32, 32, 3), head="avg").count_params() == expected


@pytest.mark.parametrize("name, keras_ctor", [
    ("vgg16", keras.applications.VGG16),
    ("vgg19", keras.applications.VGG19),
])
def test_keras_applications_weights_give_the_same_outputs(name, keras_ctor):
    shape, classes = (32, 32, 3), 10
    reference = keras_ctor(
        weights=None, input_shape=shape, classes=classes, classifier_activation=None
    )
    model = create_model(name, input_shape=shape, num_classes=classes, classifier_activation=None)
    assert _weighted_layers(model) == _weighted_layers(reference)
    assert model.count_params() == reference.count_params()

    report = load_keras_applications_weights(model, reference)
    assert report["not_in_source"] == [] and report["channel_summed"] == []
    # Caffe-preprocessed pixels: roughly zero-centred, in the hundreds.
    x = np.random.default_rng(0).uniform(-120.0, 130.0, (2, *shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(reference(x, training=False))
    got = keras.ops.convert_to_numpy(model(x, training=False))
    # Absolute and relative: the logits of random weights can be small.
    assert np.max(np.abs(got - expected)) < 1e-4 * min(1.0, np.max(np.abs(expected)))


def test_avg_head_takes_32x32_grayscale_and_any_size():
    model = create_model("vgg11", input_shape=(32, 32, 1), num_classes=10, head="avg")
    y = model(np.zeros((2, 32, 32, 1), "float32"), training=False)
    assert y.shape == (2, 10)
    assert "fc1" not in {layer.name for layer in model.layers}

    flexible = create_model("vgg11", input_shape=(None, None, 3), num_classes=10, head="avg")
    for size in (32, 48):
        assert flexible(np.zeros((1, size, size, 3), "float32")).shape == (1, 10)


def test_fc_head_needs_a_fixed_input_size():
    with pytest.raises(ValueError, match=r"head='fc'.*input_shape=\(None, None, 3\)"):
        create_model("vgg11", input_shape=(None, None, 3))
    features = create_model("vgg11", input_shape=(None, None, 3), include_top=False, pooling="max")
    assert features.output.shape == (None, 512)


@pytest.mark.parametrize("head, dropout_layers", [
    ("fc", ["fc1_dropout", "fc2_dropout"]),
    ("avg", ["top_dropout"]),
])
def test_dropout_placement(head, dropout_layers):
    model = create_model("vgg11", input_shape=(32, 32, 3), head=head, dropout=0.5)
    dropouts = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == dropout_layers
    default = create_model("vgg11", input_shape=(32, 32, 3), head=head)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in default.layers)


def test_batch_norm_variants():
    model = create_model("vgg13_bn", input_shape=(32, 32, 3), head="avg", num_classes=10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(convs) == len(bns) == sum(n for _, n in VGG_CONFIGS[13])
    assert not any(conv.use_bias for conv in convs)
    assert [bn.name for bn in bns] == [f"{conv.name}_bn" for conv in convs]
    names = {layer.name for layer in model.layers}
    assert {"block1_conv1", "block1_conv1_bn", "block1_conv1_relu"} <= names


def test_l2_regularises_every_kernel_once():
    model = create_model("vgg11_bn", input_shape=(32, 32, 3), head="fc", l2=1e-4)
    # 8 convolutions + fc1, fc2, predictions.
    assert len(model.losses) == 11


def test_below_minimum_input_size_raises():
    with pytest.raises(ValueError, match=r"at least 32.*input_shape=\(28, 28, 1\)"):
        create_model("vgg16", input_shape=(28, 28, 1), head="avg")


def test_unknown_head_raises():
    with pytest.raises(ValueError, match="head='gap'"):
        create_model("vgg16", input_shape=(32, 32, 3), head="gap")
