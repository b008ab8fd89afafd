"""The real keras.applications ImageNet files in ../shared/data/imagenet_weights, offline.

Every shipped file, loaded into tfresnet's builder, must give keras.applications' outputs on real
pet photos; ``weights="imagenet"`` must find the files offline and, where they are absent, fail
in seconds naming the file; a width or size that was never published must fail naming the ones
that were.
"""

import time

import keras
import numpy as np
import pytest
from PIL import Image

import tfresnet
from tfresnet.models import pretrained
from tfresnet.models.transfer import load_keras_applications_weights
from tfresnet.training import TrainConfig
from tfresnet.training.config import ConfigError

V1_TOP = "mobilenet_2_5_128_tf.h5"
V2_035 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
# file -> (registry name, keras.applications constructor, alpha, size, with the classifier)
SHIPPED = {
    V1_TOP: ("mobilenetv1", "MobileNet", 0.25, 128, True),
    "mobilenet_2_5_224_tf_no_top.h5": ("mobilenetv1", "MobileNet", 0.25, 224, False),
    V2_035: ("mobilenetv2", "MobileNetV2", 0.35, 224, False),
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5":
        ("mobilenetv2", "MobileNetV2", 0.5, 224, False),
}


def pet_photos(shared_data_dir, size: int, count: int = 20) -> np.ndarray:
    """`count` real pet photos (every breed), resized to size x size, raw 0-255 pixels."""
    images = sorted((shared_data_dir / "oxford_iiit_pet_sample" / "images").glob("*_1*.jpg"))
    picked = images[:: max(1, len(images) // count)][:count]
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size)), dtype="float32")
                     for p in picked])


@pytest.fixture
def offline_weights(imagenet_weights_dir, monkeypatch, tmp_path):
    """$TFRESNET_WEIGHTS_DIR at the shared files, keras' cache at an empty folder."""
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(imagenet_weights_dir))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return imagenet_weights_dir


@pytest.mark.parametrize("file_name", list(SHIPPED))
def test_shipped_file_gives_keras_applications_outputs(file_name, imagenet_weights_dir, shared_data_dir):
    name, application, alpha, size, top = SHIPPED[file_name]
    path = str(imagenet_weights_dir / file_name)
    ours = tfresnet.create_model(name, alpha=alpha, input_shape=(size, size, 3), weights=path,
                                 include_top=top, pooling=None if top else "avg", preprocessing="auto")
    reference = getattr(keras.applications, application)(
        alpha=alpha, input_shape=(size, size, 3), weights=None, include_top=top,
        pooling=None if top else "avg")
    reference.load_weights(path)  # keras' own loader, the ground truth
    x = pet_photos(shared_data_dir, size)
    expected = np.asarray(reference.predict(x / 127.5 - 1.0, verbose=0))
    got = np.asarray(ours.predict(x, verbose=0))
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    if top:  # probabilities: the same top-1 class for every photo
        np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))
        assert got.shape == (20, 1000)
    else:  # pooled features: the photos are told apart, not a constant output
        assert got.std(axis=0).mean() > 0.01


def test_weights_file_without_repeating_alpha(imagenet_weights_dir):
    # The file is read by layer name: the model's own alpha decides, nothing is passed twice.
    model = tfresnet.create_model("mobilenetv2", alpha=0.35, num_classes=3)
    report = load_keras_applications_weights(model, str(imagenet_weights_dir / V2_035))
    assert report["not_in_source"] == ["predictions"]
    assert len(report["transferred"]) == 104


def test_with_top_file_into_new_classifier_leaves_the_imagenet_head_out(imagenet_weights_dir):
    model = tfresnet.create_model("mobilenetv1", alpha=0.25, input_shape=(128, 128, 3), num_classes=3)
    head_before = model.get_layer("conv_preds").get_weights()[0].copy()
    report = load_keras_applications_weights(model, str(imagenet_weights_dir / V1_TOP))
    assert report["head_left_out"] == ["conv_preds"]
    np.testing.assert_array_equal(model.get_layer("conv_preds").get_weights()[0], head_before)


def test_wrong_width_names_the_layer_that_does_not_fit(imagenet_weights_dir):
    model = tfresnet.create_model("mobilenetv2", alpha=1.0, num_classes=3)
    before = model.get_layer("Conv1").get_weights()[0].copy()
    with pytest.raises(ValueError, match=r"'Conv1'.*\(3, 3, 3, 16\).*\(3, 3, 3, 32\).*alpha"):
        tfresnet.create_model("mobilenetv2", alpha=1.0, num_classes=3,
                              weights=str(imagenet_weights_dir / V2_035))
    with pytest.raises(ValueError, match="do not fit"):
        load_keras_applications_weights(model, str(imagenet_weights_dir / V2_035))
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0], before)  # untouched


def test_imagenet_offline_from_weights_dir(offline_weights):
    model = tfresnet.create_model("mobilenetv2", alpha=0.35, num_classes=3, weights="imagenet")
    reference = tfresnet.create_model("mobilenetv2", alpha=0.35, num_classes=3,
                                      weights=str(offline_weights / V2_035))
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0],
                                  reference.get_layer("Conv1").get_weights()[0])


def test_model_renamed_with_name_keeps_its_keras_applications_twin(offline_weights):
    """The twin is found by the registry name `create_model` records, not by the model's name:
    a model called ``pet_classifier`` is still a MobileNetV2 to the ImageNet files."""
    reference = tfresnet.create_model("mobilenetv2", alpha=0.35, num_classes=3,
                                      weights=str(offline_weights / V2_035))
    model = tfresnet.create_model("mobilenetv2", alpha=0.35, num_classes=3, name="pet_classifier")
    assert model.name == "pet_classifier"
    report = load_keras_applications_weights(model, "imagenet", alpha=0.35)
    assert report["not_in_source"] == ["predictions"] and len(report["transferred"]) == 104
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0],
                                  reference.get_layer("Conv1").get_weights()[0])
    # The same through create_model's own `weights=`.
    renamed = tfresnet.create_model("mobilenetv2", alpha=0.35, num_classes=3, weights="imagenet",
                                    name="pet_classifier")
    np.testing.assert_array_equal(renamed.get_layer("Conv1").get_weights()[0],
                                  reference.get_layer("Conv1").get_weights()[0])


def test_imagenet_offline_from_keras_cache(imagenet_weights_dir, monkeypatch, tmp_path):
    cache = tmp_path / "keras-home" / "models"
    cache.mkdir(parents=True)
    (cache / V1_TOP).symlink_to(imagenet_weights_dir / V1_TOP)
    monkeypatch.delenv(pretrained.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    model = tfresnet.create_model("mobilenetv1", alpha=0.25, input_shape=(128, 128, 3),
                                  num_classes=1000, weights="imagenet", preprocessing="auto")
    assert model.get_layer("conv_preds").get_weights()[0].std() > 0.01  # ImageNet's, not random


def test_imagenet_missing_fails_fast_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))

    def no_network(*args, **kwargs):  # what a machine without network answers
        raise Exception("URL fetch failure on https://...: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as caught:
        tfresnet.create_model("mobilenetv2", alpha=0.5, num_classes=3, weights="imagenet")
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5" in message
    assert "TFRESNET_WEIGHTS_DIR" in message and str(tmp_path / "empty") in message


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": 0.3}, r"alpha=0.3; published widths: 0.35, 0.5, 0.75, 1.0, 1.3, 1.4"),
])
def test_unpublished_width_is_named_with_the_published_ones(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tfresnet.create_model("mobilenetv2", num_classes=3, weights="imagenet", **kwargs)


def test_unpublished_resolution_of_the_classifier_is_named():
    with pytest.raises(ValueError, match=r"128x128, 160x160, 192x192, 224x224 only. Received image size 100"):
        tfresnet.create_model("mobilenetv1", alpha=0.25, input_shape=(100, 100, 3), num_classes=1000,
                              weights="imagenet")


def test_file_names_follow_keras_applications():
    files = pretrained.imagenet_files("MobileNet", {"alpha": 0.25}, include_top=False, image_size=128)
    # No-top at the model's size first; the with-classifier file of that size also serves.
    assert [f.file_name for f in files][:2] == ["mobilenet_2_5_128_tf_no_top.h5", "mobilenet_2_5_128_tf.h5"]
    assert files[0].origin.endswith("/keras-applications/mobilenet/mobilenet_2_5_128_tf_no_top.h5")
    v3 = pretrained.imagenet_files("MobileNetV3Small", {"alpha": 1.0, "minimalistic": True},
                                   include_top=False, image_size=224)
    assert v3[0].file_name == "weights_mobilenet_v3_small_minimalistic_224_1.0_float_no_top_v2.h5"
    assert v3[0].file_hash == "cde8136e733e811080d9fcd8a252f7e4"


@pytest.mark.parametrize("weights, match", [
    ("imagent", "Weights file not found .the only word it takes is 'imagenet'"),
    ("/nope/backbone.h5", "Weights file not found"),
])
def test_bad_weights_fail_when_the_config_is_checked(weights, match):
    config = TrainConfig(model="mobilenetv2", weights=weights, data="oxford_iiit_pet")
    with pytest.raises(ConfigError, match=match):
        config.validate()


def test_unpublished_width_fails_when_the_config_is_checked():
    config = TrainConfig(model="mobilenetv2", model_args={"alpha": 0.3}, weights="imagenet")
    with pytest.raises(ConfigError, match="published widths"):
        config.validate()
    with pytest.raises(ConfigError, match="no keras.applications counterpart"):
        TrainConfig(model="resnet20", weights="imagenet").validate()
