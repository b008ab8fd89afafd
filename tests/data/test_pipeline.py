"""tf.data pipelines: resize modes, caches, deterministic order, decode-failure counting."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.data import fakes
from tfresnet.data.pipeline import RESIZE_MODES, DecodeCounter, PipelineOptions, make_dataset
from tfresnet.data.sources import SplitSource

BLUE, RED = (0, 0, 255), (255, 0, 0)


def _split(paths, labels) -> SplitSource:
    paths = [str(p) for p in paths]
    labels = np.asarray(labels, np.int32)
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    return SplitSource(ds, "path", labels, "test split", "fingerprint")


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


@pytest.fixture(scope="module")
def wide_image(tmp_path_factory):
    """40 wide x 20 high: blue outer quarters, red centre half."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:] = BLUE
    arr[:, 10:30] = RED
    path = tmp_path_factory.mktemp("wide") / "wide.png"
    Image.fromarray(arr).save(path)
    return path


def _one(wide_image, resize):
    ds = make_dataset(
        _split([wide_image], [0]), training=False, image_size=(16, 16), channels=3, resize=resize
    )
    (images, labels), = _batches(ds)
    return images[0], labels


def test_resize_stretches_the_whole_image(wide_image):
    image, labels = _one(wide_image, "resize")
    assert image.shape == (16, 16, 3) and image.dtype == np.float32 and labels.dtype == np.int32
    assert np.allclose(image[8, 0], BLUE) and np.allclose(image[8, 8], RED)


def test_crop_keeps_the_centre_at_the_target_aspect_ratio(wide_image):
    image, _ = _one(wide_image, "crop")
    assert np.allclose(image, RED)


def test_pad_keeps_everything_and_fills_with_black(wide_image):
    image, _ = _one(wide_image, "pad")
    assert np.allclose(image[0], 0) and np.allclose(image[-1], 0)  # padding rows
    assert np.allclose(image[8, 0], BLUE) and np.allclose(image[8, 8], RED)


def test_unknown_resize_mode_is_rejected(wide_image):
    with pytest.raises(ValueError, match="resize"):
        make_dataset(_split([wide_image], [0]), training=False, image_size=(8, 8), channels=3,
                     resize="squash")


def _keras_resized(image, size, mode):
    layer = keras.layers.Resizing(*size, crop_to_aspect_ratio=mode == "crop", pad_to_aspect_ratio=mode == "pad")
    return np.clip(np.round(layer(image.astype(np.float32))), 0, 255)


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_files_and_arrays_resize_like_keras_resizing(tmp_path, mode):
    # Odd sizes on both sides, so that the crop and pad boxes' rounding shows.
    image = np.random.default_rng(7).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "odd.png")
    from_file = _batches(make_dataset(_split([tmp_path / "odd.png"], [0]), training=False, channels=3,
                                      image_size=(16, 20), resize=mode))[0][0][0]
    digits = image[None, :28, :28, :1]
    arrays = SplitSource(tf.data.Dataset.from_tensor_slices((digits, [0])), "image", np.zeros(1, np.int32),
                         "one digit", "digit")
    from_array = _batches(make_dataset(arrays, training=False, channels=1, source_size=(28, 28),
                                       image_size=(30, 32), resize=mode))[0][0][0]
    np.testing.assert_array_equal(from_file, _keras_resized(image, (16, 20), mode))
    np.testing.assert_array_equal(from_array, _keras_resized(digits[0], (30, 32), mode))


def test_training_and_serving_decode_to_the_same_pixels(tmp_path):
    from tfresnet.export import decode_images

    image = np.random.default_rng(8).integers(0, 256, (41, 29, 3), dtype=np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(image).save(path, quality=90)
    for mode in RESIZE_MODES:
        trained = _batches(make_dataset(_split([path], [0]), training=False, channels=3, image_size=(24, 24),
                                        resize=mode))[0][0][0]
        served = decode_images([path.read_bytes()], (24, 24), 3, mode).numpy()[0]
        np.testing.assert_array_equal(trained, served)


def test_options_are_checked_once_when_made():
    with pytest.raises(ValueError, match=r"resize must be one of .*Received resize='squash'"):
        PipelineOptions(resize="squash")
    with pytest.raises(ValueError, match=r"Received image_size=\(0, 8\)"):
        PipelineOptions(image_size=(0, 8))
    with pytest.raises(ValueError, match="batch_size=0"):
        PipelineOptions(batch_size=0)
    assert PipelineOptions(image_size=8).image_size == (8, 8)
    resolved = PipelineOptions(augment="strong").resolved((28, 28))
    assert resolved.image_size == (28, 28) and resolved.label_mode == "categorical"
    with pytest.raises(ValueError, match="mixes labels"):
        PipelineOptions(augment="strong", label_mode="int").resolved((28, 28))


def test_options_object_gives_the_same_batches_as_keywords(small_folder):
    paths, labels = small_folder
    kwargs = {"image_size": (8, 8), "batch_size": 5, "seed": 3, "deterministic": True}
    by_keywords = make_dataset(_split(paths, labels), training=True, channels=3, **kwargs)
    by_options = make_dataset(_split(paths, labels), PipelineOptions(**kwargs), training=True, channels=3)
    for a, b in zip(_batches(by_keywords), _batches(by_options)):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    fakes.write_class_folders(root, {"a": 12, "b": 12})
    paths = sorted(root.glob("*/*.jpg"))
    labels = [0 if p.parent.name == "a" else 1 for p in paths]
    return paths, labels


@pytest.mark.parametrize("cache", ["memory", "file"])
def test_cached_split_gives_the_same_batches(small_folder, tmp_path, cache):
    paths, labels = small_folder
    kwargs = {"training": False, "image_size": (16, 16), "channels": 3, "batch_size": 5}
    plain = _batches(make_dataset(_split(paths, labels), **kwargs))
    cache_arg = "memory" if cache == "memory" else str(tmp_path / "tfdata")
    cached = make_dataset(_split(paths, labels), cache=cache_arg, cache_name="small-val", **kwargs)
    for _ in range(2):  # the first pass fills the cache, the second reads it
        got = _batches(cached)
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(got, plain))
    if cache == "file":
        assert any(p.name.startswith("small-val-") for p in (tmp_path / "tfdata").iterdir())


def _train_order(paths, labels, **kwargs):
    ds = make_dataset(
        _split(paths, labels), training=True, image_size=(8, 8), channels=3, batch_size=4,
        seed=5, **kwargs,
    )
    return [np.concatenate([x.reshape(len(x), -1)[:, :3] for x, _ in _batches(ds)]) for _ in range(2)]


@pytest.mark.parametrize("cache", [None, "memory"])
def test_deterministic_order_repeats_across_runs_and_reshuffles_each_epoch(small_folder, cache):
    paths, labels = small_folder
    first = _train_order(paths, labels, deterministic=True, cache=cache)
    second = _train_order(paths, labels, deterministic=True, cache=cache)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])  # a new order every epoch


def test_decode_failures_are_counted_not_silently_dropped(small_folder, tmp_path):
    # Files that bypass validation (changed on disk after it) must not crash an epoch.
    paths, labels = small_folder
    garbage = tmp_path / "garbage.jpg"
    garbage.write_text("not an image")
    missing = tmp_path / "deleted.jpg"
    counter = DecodeCounter()
    ds = make_dataset(
        _split([*paths, garbage, missing], [*labels, 0, 1]),
        training=False, image_size=(8, 8), channels=3, batch_size=7, counter=counter,
    )
    batches = _batches(ds)
    assert counter.failures == 2
    # The two dropped elements are replaced by the split's first two, so the number of
    # examples (and batches) per pass is the one Keras and the schedules were told.
    assert int(ds.cardinality()) == len(batches) == 4
    labels = np.concatenate([y for _, y in batches])
    assert len(labels) == len(paths) + 2 and labels[-2:].tolist() == labels[:2].tolist()


def test_categorical_labels(small_folder):
    paths, labels = small_folder
    ds = make_dataset(_split(paths, labels), training=False, image_size=(8, 8), channels=3,
                      label_mode="categorical", num_classes=2, batch_size=24)
    (_, onehot), = _batches(ds)
    assert onehot.dtype == np.float32 and np.array_equal(onehot.argmax(-1), labels)


def test_file_broken_after_validation_keeps_the_batches_per_epoch(tmp_path):
    # Validation ran before; the file then breaks on disk. The pass is topped up from the next
    # one, so Keras and the learning-rate schedule see the same number of steps every epoch.
    paths = [fakes.write_jpeg(tmp_path / f"{i}.jpg") for i in range(10)]
    counter = DecodeCounter()
    ds = make_dataset(_split(paths, list(range(10))), training=True, image_size=(8, 8), channels=3,
                      batch_size=4, counter=counter)
    assert int(ds.cardinality()) == 3
    paths[3].write_bytes(b"broken since validation")
    for _ in range(2):
        batches = _batches(ds)
        assert [len(y) for _, y in batches] == [4, 4, 2]
        assert 3 not in np.concatenate([y for _, y in batches])
    assert counter.failures == 2
