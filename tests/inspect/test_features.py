"""Feature maps (`tfresnet.inspect.features`): which layers, the values, the errors, the figures."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tfresnet
from tfresnet.inspect import feature_maps, plot_feature_maps
from tfresnet.inspect.common import conv_layer_names

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_default_layers_are_first_conv_and_each_resolution_end(trained_digit_model):
    model, x, _ = trained_digit_model
    maps = feature_maps(model, x[0])
    # convnet_fast: 28 -> 13 (block1_conv) -> 11 (block2_conv) -> 5 (block2_pool) -> 3 (block3_conv)
    assert list(maps) == ["block1_conv", "block2_conv", "block2_pool", "block3_conv"]
    assert [m.shape for m in maps.values()] == [(13, 13, 32), (11, 11, 64), (5, 5, 64), (3, 3, 128)]
    assert all(m.dtype == np.float32 for m in maps.values())


def test_first_map_equals_the_convolution_computed_by_hand(trained_digit_model):
    model, x, _ = trained_digit_model
    got = feature_maps(model, x[1], layers="block1_conv")["block1_conv"]
    kernel, bias = model.get_layer("block1_conv").get_weights()  # 4x4, stride 2, valid, ReLU
    unit = x[1] / 255.0  # the model's Preprocess("unit")
    patches = np.stack([[unit[2 * i:2 * i + 4, 2 * j:2 * j + 4] for j in range(13)] for i in range(13)])
    expected = np.maximum(np.einsum("ijabc,abck->ijk", patches, kernel) + bias, 0.0)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_resnet_defaults_are_stage_outputs_and_all_is_every_feature_map():
    keras.utils.set_random_seed(0)
    model = tfresnet.create_model("resnet20", input_shape=(32, 32, 3), num_classes=3, preprocessing="auto")
    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype("float32")
    maps = feature_maps(model, image)
    assert list(maps) == ["conv1_conv", "conv2_block3_out", "conv3_block3_out", "conv4_block3_out"]
    assert [m.shape for m in maps.values()] == [(32, 32, 16), (32, 32, 16), (16, 16, 32), (8, 8, 64)]
    every = feature_maps(model, image, layers="all")
    assert list(every) == conv_layer_names(model)
    np.testing.assert_array_equal(every["conv3_block3_out"], maps["conv3_block3_out"])


def test_bad_layers_and_images_name_the_problem(trained_digit_model):
    model, x, _ = trained_digit_model
    with pytest.raises(ValueError, match=r"no layer 'block9_conv'.*Closest: block\d_conv"):
        feature_maps(model, x[0], layers=["block9_conv"])
    with pytest.raises(ValueError, match=r"'flatten'.*not a feature map.*block3_conv"):
        feature_maps(model, x[0], layers="flatten")
    with pytest.raises(ValueError, match=r"one H x W x C image \(28x28x1.*Received shape \(28, 28\)"):
        feature_maps(model, x[0, ..., 0])
    with pytest.raises(ValueError, match=r"image has 3 channels"):
        feature_maps(model, np.zeros((28, 28, 3)))


def test_plot_one_png_per_layer_or_one_for_all(trained_digit_model, tmp_path):
    model, x, _ = trained_digit_model
    maps = feature_maps(model, x[0])
    paths = plot_feature_maps(maps, str(tmp_path / "maps"), max_channels=16)
    assert [p.rsplit("/", 1)[-1] for p in paths] == [
        "00_block1_conv.png", "01_block2_conv.png", "02_block2_pool.png", "03_block3_conv.png"]
    single = plot_feature_maps(maps, str(tmp_path / "all.png"))
    assert single == [str(tmp_path / "all.png")]
    for path in [*paths, *single]:
        with open(path, "rb") as f:
            assert f.read(8) == PNG_SIGNATURE
    with pytest.raises(ValueError, match="max_channels must be an integer >= 1"):
        plot_feature_maps(maps, str(tmp_path / "x.png"), max_channels=0)
    with pytest.raises(ValueError, match=r"H x W x channels.*\(1, 13, 13, 32\)"):
        plot_feature_maps({"block1_conv": maps["block1_conv"][None]}, str(tmp_path / "x.png"))
