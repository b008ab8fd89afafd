"""MobileNet V1/V2/V3: keras.applications parity, width arguments, small inputs, validation.

The registry-wide test (every model builds, trains a step, round-trips) lives elsewhere; these
tests pin what is specific to the MobileNets.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfresnet import create_model, get_model_spec
from tfresnet.models import load_keras_applications_weights, mobilenet

KERAS_CTORS = {
    "mobilenetv1": keras.applications.MobileNet,
    "mobilenetv2": keras.applications.MobileNetV2,
    "mobilenetv3_small": keras.applications.MobileNetV3Small,
    "mobilenetv3_large": keras.applications.MobileNetV3Large,
}


def _keras_app(name, **kwargs):
    if name.startswith("mobilenetv3"):
        # Our V3 takes its input scaling from `preprocessing`, not a built-in Rescaling.
        kwargs["include_preprocessing"] = False
    return KERAS_CTORS[name](weights=None, **kwargs)


def _randomise_batch_norm(model, rng):
    # Fresh BN layers are the identity (mean 0, variance 1): random statistics make the test
    # see a wrong epsilon, a missing BN or statistics copied to the wrong layer.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = (w.shape for w in layer.get_weights())
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma), rng.uniform(-0.2, 0.2, beta),
                rng.uniform(-0.2, 0.2, mean), rng.uniform(0.5, 1.5, var),
            ])


def _weighted_layers(model):
    return {
        layer.name: [tuple(w.shape) for w in layer.weights]
        for layer in model.layers if layer.weights
    }


# keras.applications' counts at 224x224x3 with 1000 classes.
IMAGENET_PARAMS = {
    "mobilenetv1": 4_253_864,
    "mobilenetv2": 3_538_984,
    "mobilenetv3_small": 2_554_968,
    "mobilenetv3_large": 5_507_432,
}


@pytest.mark.parametrize("name", sorted(IMAGENET_PARAMS))
def test_imagenet_parameter_counts(name):
    assert create_model(name, input_shape=(224, 224, 3)).count_params() == IMAGENET_PARAMS[name]


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("mobilenetv1", {}),
        ("mobilenetv1", {"alpha": 0.5, "depth_multiplier": 2}),
        ("mobilenetv2", {}),
        ("mobilenetv2", {"alpha": 1.3}),  # alpha > 1 also widens the last 1x1 conv
        ("mobilenetv3_small", {}),
        ("mobilenetv3_small", {"alpha": 0.75}),
        ("mobilenetv3_large", {}),
        ("mobilenetv3_large", {"minimalistic": True}),
    ],
)
def test_keras_applications_weights_give_the_same_outputs(name, kwargs):
    shape, classes = (64, 64, 3), 10
    rng = np.random.default_rng(0)
    reference = _keras_app(
        name, input_shape=shape, classes=classes, classifier_activation=None, **kwargs
    )
    model = create_model(
        name, input_shape=shape, num_classes=classes, classifier_activation=None, **kwargs
    )
    assert _weighted_layers(model) == _weighted_layers(reference)

    _randomise_batch_norm(reference, rng)
    report = load_keras_applications_weights(model, reference)
    assert report["not_in_source"] == [] and report["channel_summed"] == []
    x = rng.uniform(-1.0, 1.0, (2, *shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(reference(x, training=False))
    got = keras.ops.convert_to_numpy(model(x, training=False))
    # Absolute and relative: the logits of random weights can be small.
    assert np.max(np.abs(got - expected)) < 1e-4 * min(1.0, np.max(np.abs(expected)))


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("mobilenetv3_large", {"alpha": 1.25}),  # alpha > 1 also widens conv_2
        ("mobilenetv3_small", {"minimalistic": True}),
    ],
)
def test_width_arguments_change_parameters_as_keras_does(name, kwargs):
    # No layer's size depends on the input size, so the 224 counts are the defaults here.
    shape = (32, 32, 3)
    count = create_model(name, input_shape=shape, **kwargs).count_params()
    assert count != IMAGENET_PARAMS[name]
    assert count == _keras_app(name, input_shape=shape, **kwargs).count_params()


@pytest.mark.parametrize("name", sorted(KERAS_CTORS))
def test_28x28_grayscale(name):
    model = create_model(name, input_shape=(28, 28, 1), num_classes=10, preprocessing="unit")
    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype("float32")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_registry_entries():
    for name, family, keras_name in [
        ("mobilenetv1", "mobilenet_v1", "MobileNet"),
        ("mobilenetv2", "mobilenet_v2", "MobileNetV2"),
        ("mobilenetv3_small", "mobilenet_v3", "MobileNetV3Small"),
        ("mobilenetv3_large", "mobilenet_v3", "MobileNetV3Large"),
    ]:
        spec = get_model_spec(name)
        assert (spec.family, spec.keras_application, spec.preprocessing) == (
            family, keras_name, "tf"
        )


def test_layer_names_are_deterministic():
    # Auto-generated names carry a session-wide counter, so a second build would differ.
    first, second = (
        [layer.name for layer in create_model("mobilenetv3_small", input_shape=(32, 32, 3)).layers]
        for _ in range(2)
    )
    assert first == second
    assert "expanded_conv_squeeze_excite_hard_sigmoid" in first
    assert "conv_2_act" in first


@pytest.mark.parametrize("name", ["mobilenetv1", "mobilenetv3_small"])
def test_l2_regularises_every_kernel_once(name):
    model = create_model(name, input_shape=(32, 32, 3), num_classes=10, l2=1e-4)
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            assert layer.depthwise_regularizer is not None, layer.name
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            assert layer.kernel_regularizer is not None, layer.name
    kernels = [w for w in model.weights if w.path.endswith("/kernel")]
    assert len(model.losses) == len(kernels)


def test_features_without_top():
    model = create_model("mobilenetv3_small", input_shape=(32, 32, 3), include_top=False,
                         pooling="avg")
    assert model.output.shape == (None, 576)
    assert "conv_2" not in {layer.name for layer in model.layers}


def test_dropout_defaults_follow_keras():
    rates = {}
    for name in ("mobilenetv1", "mobilenetv3_small"):
        model = create_model(name, input_shape=(32, 32, 3))
        rates[name] = model.get_layer("dropout").rate
    assert rates == {"mobilenetv1": 1e-3, "mobilenetv3_small": 0.2}


def test_below_minimum_input_size_raises():
    with pytest.raises(ValueError, match=r"at least 16.*input_shape=\(15, 15, 3\)"):
        create_model("mobilenetv2", input_shape=(15, 15, 3))


@pytest.mark.parametrize(
    "builder, kwargs, echo",
    [
        (mobilenet.MobileNetV1, {"alpha": 0.0}, "alpha=0.0"),
        (mobilenet.MobileNetV1, {"alpha": 0.01}, "alpha=0.01"),
        (mobilenet.MobileNetV1, {"depth_multiplier": 0}, "depth_multiplier=0"),
        (mobilenet.MobileNetV1, {"depth_multiplier": 1.5}, "depth_multiplier=1.5"),
        (mobilenet.MobileNetV2, {"alpha": -1}, "alpha=-1"),
        (mobilenet.MobileNetV3, {"variant": "small", "alpha": 0}, "alpha=0"),
        (mobilenet.MobileNetV3, {"variant": "small", "minimalistic": "yes"}, "minimalistic='yes'"),
        (mobilenet.MobileNetV3, {"variant": "tiny"}, "variant='tiny'"),
    ],
)
def test_bad_family_arguments_raise(builder, kwargs, echo):
    with pytest.raises(ValueError, match=echo.replace("(", r"\(")):
        builder(input_shape=(32, 32, 3), **kwargs)
