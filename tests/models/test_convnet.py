"""The convnet family: keras.io's baseline kept exactly, and the stride-2 `convnet_fast` twin.

The registry-wide test (every model builds, gets gradients, round-trips) lives in
test_all_models.py; these tests pin what is specific to the family.
"""

from __future__ import annotations

import pytest

from tfresnet import create_model, get_model_spec, list_models
from tfresnet.models.convnet import ConvNet, min_input_size

# At 28x28x1 with 10 classes. keras.io's count for its example is 34,826.
PARAMS = {"convnet": 34_826, "convnet_fast": 104_426, "convnet_narrow": 215_194}


def test_registered_names():
    assert list_models("convnet") == ["convnet", "convnet_fast", "convnet_narrow"]
    for name in PARAMS:
        spec = get_model_spec(name)
        assert (spec.family, spec.preprocessing, spec.default_input_shape) == ("convnet", "unit", (28, 28, 1))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_param_counts(name):
    assert create_model(name, num_classes=10).count_params() == PARAMS[name]


def test_baseline_layers_are_keras_io_s():
    model = create_model("convnet", num_classes=10)
    assert [layer.name for layer in model.layers] == [
        "input", "block1_conv", "block1_pool", "block2_conv", "block2_pool", "flatten",
        "top_dropout", "predictions"]
    assert model.get_layer("block2_pool").output.shape[1:] == (5, 5, 64)


def test_fast_variant_never_convolves_at_full_resolution():
    model = create_model("convnet_fast", num_classes=10)
    assert model.get_layer("block1_conv").strides == (2, 2)
    assert model.get_layer("block1_conv").output.shape[1:] == (13, 13, 32)
    assert model.get_layer("block3_conv").output.shape[1:] == (3, 3, 128)
    assert "block1_pool" not in {layer.name for layer in model.layers}  # stride, no pool


@pytest.mark.parametrize("name, size", [("convnet", 10), ("convnet_fast", 18)])
def test_minimum_input_size_leaves_a_1x1_map(name, size):
    assert get_model_spec(name).min_input_size == size
    features = create_model(name, input_shape=(size, size, 1), include_top=False)
    assert features.output.shape[1:3] == (1, 1)
    with pytest.raises(ValueError, match=f"at least {size}.*input_shape=\\({size - 1}, {size - 1}, 1\\)"):
        create_model(name, input_shape=(size - 1, size - 1, 1))


def test_two_number_stages_are_keras_io_s():
    assert min_input_size(((32, 3), (64, 3))) == 10
    model = ConvNet(stages=((32, 3), (64, 3)), input_shape=(28, 28, 1))
    assert model.count_params() == PARAMS["convnet"]


def test_narrow_variant_is_tuomasos_net():
    model = create_model("convnet_narrow", num_classes=10)
    assert model.get_layer("block1_conv").kernel.shape == (5, 5, 1, 24)
    assert model.get_layer("block2_pool").output.shape[1:] == (5, 5, 32)
    assert model.get_layer("dense1").units == 256


def test_batch_norm_options_and_dirac_init():
    model = create_model("convnet_narrow", num_classes=10, batch_norm=True, bn_scale=False, bn_momentum=0.9,
                         conv_init="dirac")
    bn = model.get_layer("block2_bn")
    assert (bn.scale, bn.center, bn.momentum) == (False, True, 0.9)
    assert not model.get_layer("block2_conv").use_bias  # batch norm's shift replaces the bias
    # No learned scale: the BN layers hold 2 x 32 moving statistics and 32 shifts, not 32 more scales.
    assert model.count_params() == PARAMS["convnet_narrow"] - 24 - 32 + 3 * (24 + 32)
    kernel = model.get_layer("block2_conv").kernel.numpy()  # 3x3, 24 -> 32 channels
    assert kernel[1, 1, 5, 5] == 1.0 and kernel[0, 1, 5, 5] == 0.0 and kernel[1, 1, 5, 6] != 0.0
    with pytest.raises(ValueError, match="conv_init='identity'"):
        create_model("convnet_narrow", conv_init="identity")
