"""Fixtures shared by the inspect tests: a small network trained here on the shipped MNIST sample,
and the real ImageNet MobileNet from ``../shared/data`` (skipped where that folder is absent)."""

from __future__ import annotations

import importlib.resources
import pathlib
from typing import NamedTuple

import keras
import numpy as np
import pytest

import tfresnet

IMAGENET_FILE = "mobilenet_2_5_128_tf.h5"  # keras.applications' MobileNet 0.25 at 128 px, with classifier


class DigitModel(NamedTuple):
    """A trained digit classifier and held-out digits it was not trained on."""

    model: keras.Model
    x: np.ndarray  # (200, 28, 28, 1) float32 raw pixels of the sample's test split
    y: np.ndarray  # (200,) int64 labels


@pytest.fixture(scope="session")
def trained_digit_model() -> DigitModel:
    """`convnet_fast` trained one epoch on the 6,000 digits of mnist-sample (a few seconds on 2 cores).

    About 92% accurate on the sample's test digits: trained enough that its gradients mean
    something (ideal images, Grad-CAM, attacks), small enough to share across the session.
    Treat it as read-only: tests that train or change weights must build their own model.
    """
    data = np.load(importlib.resources.files("tfresnet.data") / "mnist_sample.npz")
    keras.utils.set_random_seed(0)
    model = tfresnet.create_model("convnet_fast", input_shape=(28, 28, 1), num_classes=10,
                                  preprocessing="auto")
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(data["x_train"][..., None].astype("float32"), data["y_train"].astype("int64"),
              batch_size=64, epochs=1, verbose=0)
    return DigitModel(model, data["x_test"][:200, ..., None].astype("float32"),
                      data["y_test"][:200].astype("int64"))


class ImageNetNet(NamedTuple):
    """The real ImageNet MobileNet v1 (alpha 0.25, 128 px, with its classifier) and where it lies."""

    model: keras.Model
    weights_dir: pathlib.Path  # the shared folder of ImageNet files (class names included)
    pets_dir: pathlib.Path  # the Oxford-IIIT Pet sample (Abyssinian, Bengal, american_bulldog)


@pytest.fixture(scope="session")
def imagenet_mobilenet(shared_data_dir) -> ImageNetNet:
    """MobileNet v1 0.25 with keras.applications' real ImageNet weights (half a second to build).

    Skipped, with the reason, where ``../shared/data/imagenet_weights`` is absent. Read-only.
    """
    from tfresnet.models import load_keras_applications_weights

    weights_dir = shared_data_dir / "imagenet_weights"
    if not (weights_dir / IMAGENET_FILE).is_file():
        pytest.skip(f"ImageNet weights not found at {weights_dir / IMAGENET_FILE}")
    model = tfresnet.create_model("mobilenetv1", alpha=0.25, input_shape=(128, 128, 3), num_classes=1000,
                                  preprocessing="auto")
    load_keras_applications_weights(model, str(weights_dir / IMAGENET_FILE), alpha=0.25)
    return ImageNetNet(model, weights_dir, shared_data_dir / "oxford_iiit_pet_sample")


@pytest.fixture
def imagenet_names(imagenet_mobilenet, monkeypatch):
    """Points $TFRESNET_WEIGHTS_DIR at the shared folder, where the ImageNet class names are."""
    monkeypatch.setenv("TFRESNET_WEIGHTS_DIR", str(imagenet_mobilenet.weights_dir))
    return imagenet_mobilenet
