import keras
import numpy as np
import pytest

from tfresnet.models.layers import PREPROCESSING_MODES, Preprocess, StochasticDepth


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_preprocess_matches_keras_applications(mode):
    images = np.random.default_rng(0).integers(0, 256, size=(2, 8, 8, 3)).astype("uint8")
    expected = keras.applications.imagenet_utils.preprocess_input(
        images.astype("float32"), mode=mode)
    np.testing.assert_allclose(np.asarray(Preprocess(mode)(images)), expected, atol=1e-4)


def test_preprocess_single_channel_uses_mean_statistics():
    gray = np.full((1, 4, 4, 1), 255, dtype="uint8")
    np.testing.assert_allclose(np.asarray(Preprocess("unit")(gray)), 1.0)
    caffe = np.asarray(Preprocess("caffe")(gray))
    np.testing.assert_allclose(caffe, 255 - (123.68 + 116.779 + 103.939) / 3, atol=1e-3)


def test_preprocess_rejects_unknown_mode_and_channels():
    with pytest.raises(ValueError, match="'bgr'"):
        Preprocess("bgr")
    with pytest.raises(ValueError, match="1 or 3 channels"):
        Preprocess("tf")(np.zeros((1, 4, 4, 4), "float32"))
    assert set(PREPROCESSING_MODES) == {"caffe", "tf", "torch", "unit"}


def test_stochastic_depth_drops_whole_examples_and_rescales():
    x = np.ones((512, 2, 2, 3), "float32")
    layer = StochasticDepth(0.25, seed=1)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    y = np.asarray(layer(x, training=True))
    per_example = y.reshape(512, -1)
    # Each example is either dropped whole or kept whole and scaled by 1 / (1 - rate).
    assert set(np.unique(per_example)) <= {0.0, np.float32(1 / 0.75)}
    assert np.all(per_example.min(axis=1) == per_example.max(axis=1))
    assert 0.15 < np.mean(per_example[:, 0] == 0) < 0.35
    with pytest.raises(ValueError, match="rate=1.0"):
        StochasticDepth(1.0)
