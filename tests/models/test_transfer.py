"""Weight transfer from keras.applications: every parity pair gives the same outputs."""

import keras
import numpy as np
import pytest

import tfresnet
from tfresnet.models import load_keras_applications_weights

# (keras.applications constructor, registry name, constructor kwargs). The other parity pairs
# (ResNet50/50V2, VGG16/19, the MobileNets, with width variants) are checked in their family's
# test file; together every keras.applications counterpart is covered once.
PARITY = [
    ("ResNet101", "resnet101", {}),
    ("ResNet152", "resnet152", {}),
    ("ResNet101V2", "resnet101v2", {}),
    ("ResNet152V2", "resnet152v2", {}),
]
SHAPE = (32, 32, 3)
CLASSES = 7


def randomised(model, seed=0):
    """Random weights everywhere, BN moving statistics included (variances kept positive)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(0.0, 0.2, size=w.shape)
        if "variance" in w.path:
            value = rng.uniform(0.5, 1.5, size=w.shape)
        w.assign(value.astype(w.dtype))
    return model


@pytest.mark.parametrize("application, name, kwargs", PARITY, ids=[p[1] for p in PARITY])
def test_transfer_gives_identical_outputs(application, name, kwargs):
    source = randomised(getattr(keras.applications, application)(
        weights=None, input_shape=SHAPE, classes=CLASSES, **kwargs))
    model = tfresnet.create_model(name, input_shape=SHAPE, num_classes=CLASSES)
    report = load_keras_applications_weights(model, source)
    assert report["not_in_source"] == []
    x = np.random.default_rng(1).uniform(-1, 1, size=(2, *SHAPE)).astype("float32")
    expected = np.asarray(source(x, training=False))
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-4, rtol=0)


def test_transfer_from_weights_file_without_top_keeps_new_head(tmp_path):
    source = randomised(keras.applications.MobileNetV2(weights=None, include_top=False,
                                                       input_shape=SHAPE))
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(path)
    model = tfresnet.create_model("mobilenetv2", input_shape=SHAPE, num_classes=3)
    head_before = model.get_layer("predictions").get_weights()[0].copy()
    report = load_keras_applications_weights(model, str(path))
    assert report["not_in_source"] == ["predictions"]
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[0], head_before)
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0],
                                  source.get_layer("Conv1").get_weights()[0])


def test_grayscale_model_receives_summed_rgb_kernels():
    source = randomised(keras.applications.ResNet50(weights=None, include_top=False,
                                                    input_shape=SHAPE))
    model = tfresnet.create_model("resnet50", input_shape=(32, 32, 1), include_top=False)
    report = load_keras_applications_weights(model, source)
    assert report["channel_summed"] == ["conv1_conv"]
    gray = np.random.default_rng(2).uniform(size=(2, 32, 32, 1)).astype("float32")
    rgb = np.repeat(gray, 3, axis=-1)
    np.testing.assert_allclose(np.asarray(model(gray)), np.asarray(source(rgb)), atol=1e-4)


def test_mismatched_architectures_raise():
    source = keras.applications.ResNet101(weights=None, input_shape=SHAPE, classes=CLASSES)
    model = tfresnet.create_model("resnet50", input_shape=SHAPE, num_classes=CLASSES)
    with pytest.raises(ValueError, match="no layer of the same name"):
        load_keras_applications_weights(model, source)
    narrow = tfresnet.create_model("mobilenetv2", input_shape=SHAPE, num_classes=CLASSES, alpha=0.5)
    wide = keras.applications.MobileNetV2(weights=None, input_shape=SHAPE, classes=CLASSES)
    with pytest.raises(ValueError, match="do not fit"):
        load_keras_applications_weights(narrow, wide)
