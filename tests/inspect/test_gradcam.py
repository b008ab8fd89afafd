"""Grad-CAM, saliency and SmoothGrad (`tfresnet.inspect.gradcam`).

Two closed forms check the numbers: on a network that ends in global average pooling and a linear
classifier, Grad-CAM is Zhou et al.'s CAM, relu(sum_k w_kc A_k) (Selvaraju et al. 2017, section
3.1); on a linear model the input gradient is the weight vector, so saliency is |w_c| and
SmoothGrad, averaging a constant gradient, equals it.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tfresnet
from tfresnet.inspect import grad_cam, plot_grad_cam, saliency, smoothgrad


def _cam_network(seed: int = 0):
    """Image -> 1x1 conv (the feature map A) -> global average pool -> linear classifier -> softmax."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    features = keras.layers.Conv2D(4, 1, name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(pooled)
    return keras.Model(inputs, outputs)


def test_grad_cam_equals_cam_on_a_global_pooling_network():
    model = _cam_network(seed=4)  # each class has positive and negative locations: the ReLU counts
    image = np.random.default_rng(0).uniform(0, 255, (6, 6, 2)).astype("float32")
    kernel, bias = model.get_layer("features").get_weights()
    classifier = model.get_layer("predictions").get_weights()[0]
    activations = image @ kernel[0, 0] + bias
    for class_id in range(3):
        cam = np.maximum(activations @ classifier[:, class_id], 0.0)
        assert cam.max() > 0  # a class with evidence somewhere: the normalisation is tested too
        expected = cam / cam.max()
        np.testing.assert_allclose(grad_cam(model, image, class_id), expected, atol=1e-5)
    # No location speaks for class 0 of this network (relu(sum_k w_k0 A_k) = 0 everywhere).
    np.testing.assert_array_equal(grad_cam(_cam_network(seed=0), image, 0), np.zeros((6, 6)))


def test_grad_cam_on_the_trained_digits(trained_digit_model):
    model, x, y = trained_digit_model
    image, label = x[0], int(y[0])
    own = grad_cam(model, image, label)
    other = grad_cam(model, image, (label + 1) % 10)
    assert own.shape == (28, 28) and own.dtype == np.float32  # block3_conv's 3x3, upsampled
    assert own.min() >= 0.0 and own.max() == pytest.approx(1.0)
    assert np.abs(own - other).mean() > 0.05
    earlier = grad_cam(model, image, label, layer="block2_conv")
    assert earlier.shape == (28, 28) and not np.allclose(earlier, own)


def test_layer_errors_name_the_valid_layers(trained_digit_model):
    model, x, _ = trained_digit_model
    with pytest.raises(ValueError, match=r"no layer 'block4_conv'.*Closest: block\d_conv"):
        grad_cam(model, x[0], 0, layer="block4_conv")
    with pytest.raises(ValueError, match=r"'flatten'.*not a feature map.*block3_conv"):
        grad_cam(model, x[0], 0, layer="flatten")
    with pytest.raises(ValueError, match="Class index 12 is out of range"):
        saliency(model, x[0], 12)


def test_saliency_and_smoothgrad_of_a_linear_model_are_the_weights():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((5, 5, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    weights = model.layers[-1].get_weights()[0][:, 1].reshape(5, 5, 3)
    magnitude = np.abs(weights).max(axis=-1)
    expected = np.clip(magnitude / np.percentile(magnitude, 99), 0, 1)
    image = np.random.default_rng(0).uniform(0, 255, (5, 5, 3)).astype("float32")
    np.testing.assert_allclose(saliency(model, image, 1), expected, atol=1e-5)
    np.testing.assert_allclose(smoothgrad(model, image, 1, samples=5), expected, atol=1e-4)


def test_three_channel_network_shapes():
    keras.utils.set_random_seed(0)
    model = tfresnet.create_model("resnet20", input_shape=(32, 32, 3), num_classes=4, preprocessing="auto")
    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype("float32")
    heatmap = grad_cam(model, image, 2)  # conv4_block3_out: 8x8 -> 32x32
    assert heatmap.shape == (32, 32) and heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    for values in (saliency(model, image, 2), smoothgrad(model, image, 2, samples=3)):
        assert values.shape == (32, 32) and values.min() >= 0.0 and values.max() == pytest.approx(1.0)


def test_smoothgrad_is_seeded_and_checks_its_arguments(trained_digit_model):
    model, x, y = trained_digit_model
    first = smoothgrad(model, x[2], int(y[2]), samples=4, seed=5)
    np.testing.assert_array_equal(first, smoothgrad(model, x[2], int(y[2]), samples=4, seed=5))
    assert not np.array_equal(first, smoothgrad(model, x[2], int(y[2]), samples=4, seed=6))
    with pytest.raises(ValueError, match=r"samples must be an integer >= 1\. Received samples=0"):
        smoothgrad(model, x[2], 0, samples=0)
    with pytest.raises(ValueError, match=r"noise must be a fraction.*Received noise=1\.5"):
        smoothgrad(model, x[2], 0, noise=1.5)


def test_plot_grad_cam(trained_digit_model, tmp_path):
    model, x, y = trained_digit_model
    heatmap = grad_cam(model, x[0], int(y[0]))
    path = plot_grad_cam(x[0], heatmap, str(tmp_path / "gc.png"), saliency=saliency(model, x[0], int(y[0])),
                         title="a digit")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"Grad-CAM map has shape \(3, 3\); the image is 28x28"):
        plot_grad_cam(x[0], heatmap[:3, :3], str(tmp_path / "bad.png"))
