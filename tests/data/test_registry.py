"""The dataset registry and `load`'s argument checks."""

from __future__ import annotations

import pytest

import tfresnet
from tfresnet import data
from tfresnet.data.registry import register_dataset


def test_every_issue_name_is_registered():
    assert data.list_datasets() == [
        "cats_vs_dogs", "folder:PATH", "mnist", "mnist-sample", "oxford_iiit_pet"
    ]


@pytest.mark.parametrize("name", ["imagenet", "mnist_sample", "folder", "mnist:x"])
def test_unknown_names_list_the_valid_ones(name):
    with pytest.raises(ValueError, match="Valid names: .*mnist-sample"):
        data.load(name)


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("mnist", description="again")(lambda ctx: None)


def test_missing_data_dir_is_reported_with_the_value(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="data_dir="):
        data.load("mnist", data_dir=tmp_path / "nope")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"image_size": (32,)}, "image_size"),
        ({"resize": "squash"}, "resize"),
        ({"augment": "extreme"}, "augment"),
        ({"validation_split": 1.5}, "validation_split"),
    ],
)
def test_bad_arguments_are_rejected_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load("mnist-sample", verbose=0, **kwargs)


def test_model_preprocessing_reads_the_model_registry():
    for name in tfresnet.list_models()[:3]:
        assert data.model_preprocessing(name) == tfresnet.get_model_spec(name).preprocessing


def test_bundle_repr_and_attributes():
    b = data.load("mnist-sample", batch_size=100, verbose=0)
    assert b.num_classes == 10 and b.num_batches == {"train": 50, "validation": 10, "test": 10}
    assert set(b.splits) == {"train", "validation", "test"}
    text = repr(b)
    assert "images float32 in [0, 255], labels int32 class ids" in text
    assert "5,000 examples" in text and "skipped:    0 files" in text


def test_options_object_loads_like_the_keywords():
    by_keywords = data.load("mnist-sample", batch_size=100, image_size=32, seed=4, verbose=0)
    options = data.PipelineOptions(batch_size=100, image_size=32, seed=4)
    by_options = data.load("mnist-sample", options=options, verbose=0)
    assert by_options.input_shape == by_keywords.input_shape == (32, 32, 1)
    assert by_options.num_batches == by_keywords.num_batches
    assert by_options.descriptions == by_keywords.descriptions  # the same seeded split
    x1, y1 = next(iter(by_keywords.validation))
    x2, y2 = next(iter(by_options.validation))
    assert (x1.numpy() == x2.numpy()).all() and (y1.numpy() == y2.numpy()).all()
    with pytest.raises(ValueError, match=r"either as options= or as keywords.*batch_size=64"):
        data.load("mnist-sample", options=options, batch_size=64, verbose=0)
