"""The fully connected family: Nielsen's chapter 5 sigmoid networks.

The registry-wide test (every model builds, gets gradients, round-trips) lives in
test_all_models.py; these tests pin what is specific to the family.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from tfresnet import create_model, get_model_spec, list_models
from tfresnet.models.mlp import MLP


def test_registered_names_and_spec():
    assert list_models("sigmoid_mlp") == [f"sigmoid_mlp_30x{k}" for k in (1, 2, 3, 4)]
    spec = get_model_spec("sigmoid_mlp_30x4")
    assert (spec.family, spec.preprocessing, spec.default_input_shape) == ("mlp", "unit", (28, 28, 1))
    assert spec.fixed["hidden_units"] == (30, 30, 30, 30)
    assert spec.fixed["activation"] == "sigmoid"


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_param_count_from_layer_sizes(depth):
    # [784, 30 x depth, 10]: each layer has n_in * n_out weights and n_out biases.
    sizes = [784] + [30] * depth + [10]
    expected = sum(n_in * n_out + n_out for n_in, n_out in itertools.pairwise(sizes))
    model = create_model(f"sigmoid_mlp_30x{depth}", num_classes=10)
    assert model.count_params() == expected
    assert [layer.name for layer in model.layers] == (
        ["input", "flatten"] + [f"dense{i}" for i in range(1, depth + 1)] + ["predictions"])
    assert create_model("sigmoid_mlp_30x4").count_params() == (
        784 * 30 + 30 + 3 * (30 * 30 + 30) + 30 * 10 + 10)


def test_nielsen_initialisation_statistics():
    # network2.default_weight_initializer: weights N(0, 1/n_in), biases N(0, 1), every layer.
    keras.utils.set_random_seed(3)
    model = create_model("sigmoid_mlp_30x4")
    biases = []
    for name in ("dense1", "dense2", "dense3", "dense4", "predictions"):
        layer = model.get_layer(name)
        assert layer.activation.__name__ == ("softmax" if name == "predictions" else "sigmoid")
        kernel, bias = (np.asarray(w) for w in layer.get_weights())
        fan_in = kernel.shape[0]
        assert abs(kernel.std() * np.sqrt(fan_in) - 1.0) < 0.1, name
        assert abs(kernel.mean()) < 3 / np.sqrt(kernel.size * fan_in), name
        biases.append(bias)
    # A plain Gaussian, not keras's LecunNormal, which truncates at two standard deviations.
    first = np.asarray(model.get_layer("dense1").kernel) * np.sqrt(784)
    assert np.mean(np.abs(first) > 2.5) > 0.005
    biases = np.concatenate(biases)
    assert biases.size == 4 * 30 + 10
    assert abs(biases.mean()) < 0.3 and 0.8 < biases.std() < 1.2


def test_layers_get_independent_initial_weights():
    # A reused unseeded initializer would give dense2, dense3, dense4 the same kernel.
    model = create_model("sigmoid_mlp_30x4")
    kernels = [np.asarray(model.get_layer(f"dense{i}").kernel) for i in (2, 3, 4)]
    assert not np.allclose(kernels[0], kernels[1]) and not np.allclose(kernels[1], kernels[2])
    shared = keras.initializers.RandomNormal(stddev=1.0)
    model = MLP(hidden_units=(8, 8), kernel_initializer=shared, input_shape=(4, 4, 1))
    assert not np.allclose(model.get_layer("dense1").kernel[:8], model.get_layer("dense2").kernel)


def test_preprocessing_unit_scales_pixels_to_0_1():
    model = create_model("sigmoid_mlp_30x1", preprocessing="auto")
    assert model.get_layer("preprocess").mode == "unit"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hidden_units": (30, 0)}, "hidden_units=\\(30, 0\\)"),
        ({"hidden_units": (30,), "kernel_initializer": "nielsen"}, "nielsen_weights"),
        ({"hidden_units": (30,), "input_shape": (None, None, 1)}, "fixed input size"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


def test_include_top_false_leaves_the_image():
    # Every dense layer belongs to the top, as keras.applications' VGG counts fc1 and fc2.
    model = create_model("sigmoid_mlp_30x2", include_top=False, pooling="avg", preprocessing="auto")
    assert model.output_shape == (None, 1) and not model.trainable_weights


def _conv_pool_params(sizes, side=28):
    """Parameters of 'valid' 5x5 conv + 2x2 pool stages on a side x side digit, and the side left."""
    total, channels = 0, 1
    for filters in sizes:
        total += filters * channels * 25 + filters
        side, channels = (side - 4) // 2, filters
    return total, side * side * channels


def _dense_params(sizes):
    return sum(n_in * n_out + n_out for n_in, n_out in itertools.pairwise(sizes))


# Chapter 6's networks, counted from the book's layer sizes (network3.py's layer arguments).
_CONV1 = _conv_pool_params([20])            # 520 weights; 20 x 12 x 12 = 2,880 features
_CONV2 = _conv_pool_params([20, 40])        # 20,560; 40 x 4 x 4 = 640 features
NIELSEN_PARAMS = {
    "nielsen_fc100": _dense_params([784, 100, 10]),
    "nielsen_conv1_sigmoid": _CONV1[0] + _dense_params([_CONV1[1], 100, 10]),
    "nielsen_conv2_sigmoid": _CONV2[0] + _dense_params([_CONV2[1], 100, 10]),
    "nielsen_conv2_relu": _CONV2[0] + _dense_params([_CONV2[1], 100, 10]),
    "nielsen_conv2_fc1000x2": _CONV2[0] + _dense_params([_CONV2[1], 1000, 1000, 10]),
}


def test_nielsen_param_counts_by_hand():
    assert NIELSEN_PARAMS["nielsen_fc100"] == 784 * 100 + 100 + 100 * 10 + 10 == 79_510
    assert NIELSEN_PARAMS["nielsen_conv1_sigmoid"] == 520 + 2880 * 100 + 100 + 1010 == 289_630
    assert NIELSEN_PARAMS["nielsen_conv2_relu"] == 520 + 20_040 + 64_100 + 1010 == 85_670
    assert NIELSEN_PARAMS["nielsen_conv2_fc1000x2"] == 20_560 + 641_000 + 1_001_000 + 10_010


@pytest.mark.parametrize("name", sorted(NIELSEN_PARAMS))
def test_nielsen_param_count_from_layer_sizes(name):
    model = create_model(name, num_classes=10)
    assert model.count_params() == NIELSEN_PARAMS[name]
    assert model.output_shape == (None, 10)


def test_nielsen_conv_shapes_activations_and_dropout():
    model = create_model("nielsen_conv2_fc1000x2")
    # 'valid' 5x5 then 2x2 pool: 28 -> 24 -> 12 -> 8 -> 4.
    assert model.get_layer("block1_conv").output.shape[1:] == (24, 24, 20)
    assert model.get_layer("block2_pool").output.shape[1:] == (4, 4, 40)
    assert model.get_layer("block1_conv").activation.__name__ == "relu"
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.5, 0.5]
    sigmoid = create_model("nielsen_conv1_sigmoid")
    assert sigmoid.get_layer("block1_conv").activation.__name__ == "sigmoid"
    assert sigmoid.get_layer("dense1").activation.__name__ == "sigmoid"


def test_nielsen_network3_initialisation():
    # network3.py: dense N(0, 1/n_out), conv N(0, 4/(filters*25)), softmax layer zeros.
    keras.utils.set_random_seed(0)
    model = create_model("nielsen_conv2_fc1000x2")
    dense = np.asarray(model.get_layer("dense1").kernel)
    assert abs(dense.std() * np.sqrt(1000) - 1.0) < 0.05
    conv = np.asarray(model.get_layer("block2_conv").kernel)
    assert abs(conv.std() * np.sqrt(40 * 25 / 4) - 1.0) < 0.05
    assert not np.any(model.get_layer("predictions").get_weights()[0])
    assert not np.any(model.get_layer("predictions").get_weights()[1])
