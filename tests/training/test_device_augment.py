"""Augmentation in the train step (`augment_on="model"`): the CPU path's distribution, no trace in
what is saved, and bit-identical deterministic runs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfresnet.data.augment import build_augmentation
from tfresnet.data.pipeline import make_dataset
from tfresnet.data.sources import SplitSource
from tfresnet.runs import load_keras
from tfresnet.training import augment as device_augment
from tfresnet.training import report
from tfresnet.training.config import TrainConfig
from tfresnet.training.trainer import train


class _Seen(device_augment.DeviceAugmented):
    """Records the images and labels its train step hands to the loss (run eagerly)."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        self.seen.append((np.asarray(x), np.asarray(y)))
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)


def _device_batches(images, labels, preset, *, batch_size, seed=0):
    """What `fit` on a `DeviceAugmented` model trains on, batch by batch."""
    inputs = keras.Input(images.shape[1:])
    outputs = keras.layers.Dense(labels.shape[-1])(keras.layers.GlobalAveragePooling2D()(inputs))
    augmentation = build_augmentation(preset, seed=seed)
    model = _Seen(inputs, outputs, augmentation=augmentation, seed=seed)
    model.seen = []
    model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True), run_eagerly=True)
    model.fit(images, labels, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    return np.concatenate([x for x, _ in model.seen]), np.concatenate([y for _, y in model.seen])


def _cpu_batches(images, labels, preset, *, batch_size, seed=0):
    """What the tf.data pipeline delivers with the same preset (the CPU path)."""
    split = SplitSource(tf.data.Dataset.from_tensor_slices((images, labels.argmax(-1).astype("int32"))),
                        "image", labels.argmax(-1), "train", "fp")
    ds = make_dataset(split, training=True, channels=images.shape[-1], image_size=images.shape[1:3],
                      source_size=images.shape[1:3], batch_size=batch_size, shuffle=False, seed=seed,
                      augment=preset, label_mode="categorical", num_classes=labels.shape[-1])
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def _one_hot(n, classes=2):
    return keras.utils.to_categorical(np.arange(n) % classes, classes).astype("float32")


def test_flips_on_the_device_are_as_frequent_as_on_the_cpu():
    images = np.zeros((384, 16, 16, 3), np.uint8)
    images[:, :, :4] = 255  # a bright left edge; a horizontal flip moves it right
    labels = _one_hot(len(images))
    fractions = []
    for batches in (_cpu_batches, _device_batches):
        out, _ = batches(images, labels, "light", batch_size=64)
        assert out.shape == images.shape
        fractions.append(np.mean(out[:, :, 8:].sum((1, 2, 3)) > out[:, :, :8].sum((1, 2, 3))))
    cpu, device = fractions
    assert abs(cpu - 0.5) < 0.08 and abs(device - 0.5) < 0.08, fractions  # sd of one: 0.026
    assert abs(cpu - device) < 0.1, fractions


def _shifts(out):
    """(row, column) offset of each image's 8x8 block from its place at (10, 10)."""
    return [(int(r.min()) - 10, int(c.min()) - 10)
            for r, c in (np.nonzero(image[..., 0]) for image in out)]


def test_shifts_on_the_device_have_the_cpu_distribution():
    images = np.zeros((576, 28, 28, 1), np.uint8)
    images[:, 10:18, 10:18] = 255
    labels = _one_hot(len(images))
    histograms = []
    for batches in (_cpu_batches, _device_batches):
        out, _ = batches(images, labels, "mnist-shift", batch_size=64)
        shifts = _shifts(out)
        assert {s for pair in shifts for s in pair} <= {-1, 0, 1}
        histograms.append({s: shifts.count(s) / len(shifts) for s in set(shifts)})
    cpu, device = histograms
    assert cpu.get((0, 0), 0) < 0.6 and device.get((0, 0), 0) < 0.6, histograms  # most images move
    for shift in set(cpu) | set(device):
        assert abs(cpu.get(shift, 0) - device.get(shift, 0)) < 0.07, (shift, histograms)


def test_mixing_on_the_device_makes_soft_labels_that_sum_to_one():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 12, 12, 3), dtype=np.uint8)
    labels = _one_hot(len(images), 4)
    out, mixed = _device_batches(images, labels, "strong", batch_size=16)
    assert out.min() >= 0 and out.max() <= 255 and not np.array_equal(out, images)
    np.testing.assert_allclose(mixed.sum(-1), 1.0, atol=1e-5)
    # Mixed, not the one-hot labels given (about half of them: MixUp's Beta(0.2, 0.2) is U-shaped).
    assert (mixed.max(-1) < 0.99).mean() > 0.25


def _config(**changes):
    return TrainConfig(model="convnet", data="mnist-sample", augment="mnist-shift", augment_on="model",
                       batch_size=16, steps_per_epoch=3, epochs=2, validation_split=0.02, deterministic=True,
                       tensorboard=False, jit_compile=False, export=False, verbose=0, **changes)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("device_augment")
    with pytest.MonkeyPatch.context() as patch:  # the plots take longer than the training here
        patch.setattr(report, "plot_run", lambda *args, **kwargs: None)
        runs = [train(_config(), str(root / name)) for name in ("a", "b")]
        with pytest.raises(_Killed):
            train(_config(), str(root / "resumed"), callbacks=[_KillAfterFirstEpoch()])
        return [*runs, train(_config(), str(root / "resumed"), resume=True)]


class _Killed(Exception):
    pass


class _KillAfterFirstEpoch(keras.callbacks.Callback):
    """Stops the run once epoch 1's backup is written (it runs after the backup callback)."""

    def on_epoch_end(self, epoch, logs=None):
        raise _Killed


@pytest.mark.parametrize("which", ["second run", "killed and resumed"])
def test_a_deterministic_run_with_device_augmentation_repeats_bit_for_bit(two_runs, which):
    # Resumed, the augmentation's generators continue from the backup's states.
    first, other = two_runs[0], two_runs[1 if which == "second run" else 2]
    assert len(first.history) == 2 and first.history.equals(other.history)
    for a, b in zip(first.model.get_weights(), other.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_saved_model_has_no_augmentation_and_predicts_as_the_trained_one(two_runs):
    result = two_runs[0]
    saved = load_keras(f"{result.run_dir}/model.keras")
    assert not isinstance(saved, device_augment.DeviceAugmented)
    assert not isinstance(result.model, device_augment.DeviceAugmented)
    kinds = {type(layer).__name__ for layer in saved.layers}
    assert not {k for k in kinds if k.startswith("Random")}, kinds
    images = np.random.default_rng(1).integers(0, 256, (8, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(saved.predict(images, verbose=0), result.model.predict(images, verbose=0))
