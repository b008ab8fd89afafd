"""Validation of image files: used as is, used after conversion, or skipped with a reason."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageFile

from tests.data import fakes
from tfresnet.data import images
from tfresnet.data.images import validate_images


@pytest.fixture(scope="module")
def checks(defects_dir, tmp_path_factory):
    _, paths = defects_dir
    cache = tmp_path_factory.mktemp("images_cache")
    result = validate_images(list(paths.values()), cache_dir=str(cache))
    return paths, {name: result[str(path)] for name, path in paths.items()}, cache


def _tf_decode(path: str) -> np.ndarray:
    data = tf.io.read_file(path)
    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


@pytest.mark.parametrize("name", sorted(fakes.USABLE))
def test_usable_files_decode_in_tf_to_pillows_rgb(checks, name):
    paths, result, _ = checks
    check = result[name]
    assert check.ok, check.reason
    with Image.open(paths[name]) as im:
        expected = np.asarray(im.convert("RGBA" if im.mode == "P" else im.mode).convert("RGB"))
    decoded = _tf_decode(check.decode_path)
    assert decoded.shape == expected.shape
    # Both decoders read the same bytes; JPEG IDCT implementations may differ by a level or two.
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 3


@pytest.mark.parametrize("name", ["cmyk_jpeg", "gif_named_jpg", "png_named_jpg", "rgba_png"])
def test_odd_formats_come_out_with_the_right_colours(checks, name):
    _, result, _ = checks
    decoded = _tf_decode(result[name].decode_path).astype(int)
    w = fakes.SIZE[0]
    # Away from the edge between the halves (JPEG blurs it); the GIF's second frame is blue.
    assert np.abs(decoded[:, : w // 2 - 4] - fakes.LEFT).max() <= 12
    assert np.abs(decoded[:, w // 2 + 4 :] - fakes.RIGHT).max() <= 12


def test_conversion_only_where_tf_cannot_read_the_file(checks):
    paths, result, cache = checks
    converted = {name for name, c in result.items() if c.converted}
    assert converted == {"cmyk_jpeg", "gif_named_jpg"}
    for name in converted:
        # Copies live in the cache, never beside the data.
        assert result[name].decode_path.startswith(str(cache))
        assert result[name].decode_path != str(paths[name])
    assert "first frame of 2" in result["gif_named_jpg"].note
    assert "GIF named .jpg" in result["gif_named_jpg"].note
    assert "PNG named .jpg" in result["png_named_jpg"].note
    assert "alpha dropped" in result["rgba_png"].note
    assert result["gray_jpeg"].mode == "L" and result["gray_jpeg"].native


@pytest.mark.parametrize(
    "name, reason",
    [
        ("truncated_jpeg", "truncated"),
        ("zero_bytes", "empty file (0 bytes)"),
        ("text_named_jpg", "text file"),
        ("mat_file", "MATLAB"),
    ],
)
def test_broken_files_are_skipped_with_a_reason(checks, name, reason):
    _, result, _ = checks
    assert not result[name].ok
    assert reason in result[name].reason


def test_validation_never_turns_on_truncated_loading(checks):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_results_are_cached_until_the_file_changes(tmp_path, monkeypatch):
    data = tmp_path / "data"
    good = fakes.write_jpeg(data / "a.jpg")
    gif = fakes.write_gif(data / "b.jpg")
    cache = str(tmp_path / "cache")
    first = validate_images([good, gif], cache_dir=cache)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached result was decoded again")

    monkeypatch.setattr(images, "check_image", no_decoding)
    assert validate_images([good, gif], cache_dir=cache) == first

    monkeypatch.undo()
    good.write_bytes(b"")  # the file changes: size and mtime differ
    os.utime(good, ns=(1, 1))
    again = validate_images([good, gif], cache_dir=cache)
    assert not again[str(good)].ok and "empty" in again[str(good)].reason
    assert again[str(gif)] == first[str(gif)]


def test_deleted_converted_copy_is_made_again(tmp_path):
    gif = fakes.write_gif(tmp_path / "data" / "a.gif")
    cache = str(tmp_path / "cache")
    copy = validate_images([gif], cache_dir=cache)[str(gif)].decode_path
    os.remove(copy)
    assert validate_images([gif], cache_dir=cache)[str(gif)].decode_path == copy
    assert os.path.isfile(copy)


def test_report_only_validation_writes_no_copies(tmp_path):
    cmyk = fakes.write_jpeg(tmp_path / "data" / "c.jpg", mode="CMYK")
    cache = tmp_path / "cache"
    check = validate_images([cmyk], cache_dir=str(cache), convert=False)[str(cmyk)]
    assert check.ok and check.converted and check.decode_path == ""
    assert not (cache / "converted").exists()
