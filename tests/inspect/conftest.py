"""Fixtures shared by the inspect tests: one small network trained here on the shipped MNIST sample."""

from __future__ import annotations

import importlib.resources
from typing import NamedTuple

import keras
import numpy as np
import pytest

import tfresnet


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
