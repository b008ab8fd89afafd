"""Pictures of inputs are large enough to see: each image at least 256 x 256 pixels in the PNG."""

from __future__ import annotations

import keras
import numpy as np
from PIL import Image

from tfresnet.inspect import plot_adversarial, plot_grad_cam, plot_ideal_images

RED = np.zeros((8, 8, 3), "float32")
RED[..., 0] = 255.0  # a tiny all-red input: its area in the PNG is the area it is drawn at


def _red_pixels(path) -> int:
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)).sum())


def test_small_inputs_are_drawn_at_least_256_pixels_square(tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    drawn = {
        "ideal": (plot_ideal_images(RED[None], [0.9], str(tmp_path / "ideal.png"), class_names=["red"]), 1),
        "grad_cam": (plot_grad_cam(RED, np.zeros((8, 8)), str(tmp_path / "cam.png")), 1),  # the image panel
        "adversarial": (plot_adversarial(model, RED[None], RED[None], str(tmp_path / "adv.png")), 2),
    }
    for name, (path, images) in drawn.items():
        assert _red_pixels(path) >= images * 256 * 256, (name, _red_pixels(path))
