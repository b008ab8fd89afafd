"""Ideal images (`tfresnet.inspect.ideal`): the trained digit model must see each class in its own."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfresnet.inspect import ideal_image, ideal_images, plot_ideal_images

# Digits whose ideal images were the hardest on ResNet-20 (1: a thin stroke on black; 5, 6).
HARD_DIGITS = [1, 5, 6]


def test_ideal_digits_are_classified_as_their_digit(trained_digit_model):
    model = trained_digit_model.model
    images, probabilities = ideal_images(model, HARD_DIGITS)
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 255.0
    assert np.all(probabilities >= 0.9), probabilities
    predicted = keras.ops.convert_to_numpy(model(images)).argmax(axis=1)
    np.testing.assert_array_equal(predicted, HARD_DIGITS)
    # The reported probability is the model's own output for the returned image.
    np.testing.assert_allclose(
        probabilities, keras.ops.convert_to_numpy(model(images))[np.arange(3), HARD_DIGITS], atol=1e-5)


def test_ideal_image_is_one_of_ideal_images_and_seeded(trained_digit_model):
    model = trained_digit_model.model
    image, probability = ideal_image(model, 7, steps=10, seed=3)
    batch, probabilities = ideal_images(model, [7], steps=10, seed=3)
    assert probability == pytest.approx(float(probabilities[0]))
    assert image.shape == (28, 28, 1) and isinstance(probability, float)
    np.testing.assert_array_equal(image, batch[0])
    other, _ = ideal_image(model, 7, steps=10, seed=4)
    assert np.abs(other - image).mean() > 1.0  # another seed starts from other noise


def test_ascent_raises_the_class_probability(trained_digit_model):
    model = trained_digit_model.model
    _, early = ideal_images(model, [2, 8], steps=2, jitter=0)
    _, late = ideal_images(model, [2, 8], steps=40, jitter=0)
    assert np.all(late > early), (early, late)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"steps": 0}, r"steps must be an integer >= 1\. Received steps=0"),
    ({"lr": -1.0}, r"lr must be a finite number > 0\. Received lr=-1\.0"),
    ({"tv_weight": float("nan")}, r"tv_weight must be a finite number >= 0"),
    ({"jitter": 1.5}, r"jitter must be an integer >= 0"),
])
def test_bad_settings_name_the_value(trained_digit_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ideal_image(trained_digit_model.model, 3, **kwargs)


def test_bad_class_names_the_range(trained_digit_model):
    with pytest.raises(ValueError, match=r"Class index 10 is out of range: the model has 10 classes"):
        ideal_images(trained_digit_model.model, [3, 10])
    with pytest.raises(ValueError, match="class_ids is empty"):
        ideal_images(trained_digit_model.model, [])


def test_plot_ideal_images(tmp_path):
    images = np.random.default_rng(0).uniform(0, 255, (3, 8, 8, 1)).astype("float32")
    path = plot_ideal_images(images, [0.9, 0.5, 0.99], str(tmp_path / "sub" / "ideal.png"), class_names=["a", "b", "c"])
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="3 images and 2 probabilities"):
        plot_ideal_images(images, [0.9, 0.5], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="class_names has 1 names for 3 images"):
        plot_ideal_images(images, [0.9, 0.5, 0.1], str(tmp_path / "x.png"), class_names=["a"])
