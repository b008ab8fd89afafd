"""Augmentation presets: what they contain, and that they touch the training split only."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.data import fakes
from tfresnet import data
from tfresnet.data.augment import AUGMENT_PRESETS, build_augmentation


def test_preset_names():
    assert set(data.list_augmentations()) == {"none", "light", "standard", "strong", "mnist-shift"}


@pytest.mark.parametrize("name", [n for n in AUGMENT_PRESETS if n != "none"])
def test_every_preset_builds_from_keras_layers(name):
    aug = build_augmentation(name, seed=0)
    assert aug.missing == ()  # the pinned Keras has every layer the presets name
    images = tf.random.uniform((4, 32, 32, 3), 0, 255)
    labels = tf.one_hot([0, 1, 2, 0], 3)
    out_images, out_labels = aug(images, labels)
    assert out_images.shape == images.shape and out_labels.shape == labels.shape
    assert float(tf.reduce_min(out_images)) >= 0 and float(tf.reduce_max(out_images)) <= 255


def test_strong_mixes_labels_and_others_do_not():
    assert build_augmentation("strong").mixes_labels
    assert not any(build_augmentation(n).mixes_labels for n in ("light", "standard", "mnist-shift"))
    assert build_augmentation("none") is None and build_augmentation(None) is None


def test_layers_missing_from_keras_are_left_out(monkeypatch):
    monkeypatch.delattr(keras.layers, "RandAugment")
    monkeypatch.delattr(keras.layers, "CutMix")
    aug = build_augmentation("strong")
    assert aug.missing == ("RandAugment", "CutMix")
    assert "RandAugment" not in repr(aug) and "MixUp" in repr(aug)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="standard"):
        build_augmentation("extreme")


def test_mnist_shift_moves_digits_by_at_most_one_pixel():
    images = np.zeros((16, 28, 28, 1), np.float32)
    images[:, 10:18, 10:18] = 255.0
    out, _ = build_augmentation("mnist-shift", seed=1)(tf.constant(images), tf.zeros((16, 10)))
    out = out.numpy()
    assert set(np.unique(out)) <= {0.0, 255.0}  # nearest interpolation, zero fill
    for image in out:
        rows, cols = np.nonzero(image[..., 0])
        assert abs(rows.min() - 10) <= 1 and abs(cols.min() - 10) <= 1
        assert rows.max() - rows.min() == 7  # shifted, not resized


@pytest.fixture(scope="module")
def strong_and_plain(tmp_path_factory):
    root = fakes.write_class_folders(tmp_path_factory.mktemp("aug"), {"a": 10, "b": 10})
    kwargs = {"image_size": 24, "batch_size": 4, "verbose": 0, "seed": 3}
    return (
        data.load(f"folder:{root}", augment="strong", **kwargs),
        data.load(f"folder:{root}", augment="none", label_mode="categorical", **kwargs),
    )


def _all(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


@pytest.mark.parametrize("split", ["validation", "test"])
def test_augmentation_never_touches_validation_or_test(strong_and_plain, split):
    strong, plain = strong_and_plain
    first, second, reference = (_all(getattr(b, split)) for b in (strong, strong, plain))
    for a, b, c in zip(first, second, reference):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[0], c[0])
        assert np.array_equal(a[1], c[1])  # one-hot labels, unmixed


def test_augmentation_changes_training_batches(strong_and_plain):
    strong, _ = strong_and_plain
    assert strong.label_mode == "categorical" and strong.augment == "strong"
    x1 = np.concatenate([x for x, _ in _all(strong.train)])
    x2 = np.concatenate([x for x, _ in _all(strong.train)])
    assert not np.array_equal(np.sort(x1, axis=None), np.sort(x2, axis=None))
    labels = np.concatenate([y for _, y in _all(strong.train)])
    assert np.allclose(labels.sum(-1), 1.0)  # mixed labels still sum to one


def test_label_mixing_needs_categorical_labels(tmp_path):
    root = fakes.write_class_folders(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(ValueError, match="categorical"):
        data.load(f"folder:{root}", augment="strong", label_mode="int", verbose=0)


def test_label_dtype_survives_augmentation():
    import numpy as np

    from tfresnet.data import build_augmentation

    images = np.full((2, 16, 16, 3), 128.0, "float32")
    labels = np.array([0, 1], "int32")
    for preset in ("light", "standard", "mnist-shift"):
        _, out = build_augmentation(preset, seed=0)(images, labels)
        assert out.dtype == "int32", preset


def test_shift1_expansion_is_nielsens_four_one_pixel_shifts():
    from tfresnet.data.augment import expand_arrays

    x = np.zeros((2, 4, 4), np.uint8)
    x[0, 1, 2] = 7
    x[1, 0, 0] = 9  # shifted up or left, it leaves the frame
    y = np.array([3, 5])
    big_x, big_y = expand_arrays(x, y, "shift1")
    assert big_x.shape == (10, 4, 4) and big_y.tolist() == [3, 5] * 5
    assert np.array_equal(big_x[:2], x)  # the originals first
    where = [tuple(np.argwhere(img)[0]) if img.any() else None for img in big_x[0::2]]
    assert where == [(1, 2), (0, 2), (2, 2), (1, 1), (1, 3)]  # original, up, down, left, right
    assert [img.any() for img in big_x[1::2]] == [True, False, True, False, True]
    assert big_x.sum() == 7 * 5 + 9 * 3  # zero fill: no pixel invented
