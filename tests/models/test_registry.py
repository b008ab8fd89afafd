import keras
import pytest

import tfresnet
from tfresnet.models import registry
from tfresnet.models.registry import register_model


def test_list_models_filters_by_substring_and_wildcard():
    names = tfresnet.list_models()
    assert len(names) == len(set(names))
    assert "resnet50" in names and "vgg16" in names and "mobilenetv2" in names
    assert set(tfresnet.list_models("vgg1?")) == {"vgg11", "vgg13", "vgg16", "vgg19"}
    assert all("mobilenet" in n for n in tfresnet.list_models("mobilenet"))
    # Depth order, not string order.
    resnets = tfresnet.list_models("resnet*v2")
    assert resnets.index("resnet18v2") < resnets.index("resnet101v2")


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet50", family="test")(lambda **kw: None)
    assert tfresnet.get_model_spec("resnet50").family != "test"


def test_unknown_name_lists_closest():
    with pytest.raises(ValueError, match="Unknown model name 'resnet5'.*resnet50"):
        tfresnet.create_model("resnet5")


def test_fixed_variant_arguments_cannot_be_overridden():
    fixed = sorted(tfresnet.get_model_spec("resnet50").fixed)
    assert fixed, "resnet50's depth should be registry data"
    with pytest.raises(ValueError, match="cannot be overridden"):
        tfresnet.create_model("resnet50", **{fixed[0]: 1})


def test_registry_entries_are_complete():
    for name in tfresnet.list_models():
        spec = registry.get_model_spec(name)
        assert spec.name == name
        assert len(spec.default_input_shape) == 3
        assert spec.min_input_size <= min(spec.default_input_shape[:2])
        assert spec.preprocessing in ("caffe", "tf", "torch", "unit")


# Where `recipes/pets_transfer.py` fine-tunes from: the last stage, as in the keras.io guide.
FINE_TUNE_FROM = {
    "mobilenetv2": "block_13_expand",
    "resnet50": "conv5_block1_1_conv",
    "resnet50v2": "conv5_block1_preact_bn",
    "vgg16": "block5_conv1",
}


def test_fine_tune_from_is_a_layer_of_the_model():
    for name, layer in FINE_TUNE_FROM.items():
        assert registry.get_model_spec(name).fine_tune_from == layer
    families = {}
    for name in tfresnet.list_models():
        spec = registry.get_model_spec(name)
        if spec.fine_tune_from is not None:
            families.setdefault(spec.family, name)
    assert sorted(families) == ["mobilenet_v2", "resnet_v1", "resnet_v2", "vgg"]
    for name in families.values():  # the shallowest of each family: the names repeat in depth
        extra = {"head": "avg"} if registry.get_model_spec(name).family == "vgg" else {}
        model = tfresnet.create_model(name, input_shape=(32, 32, 3), **extra)
        assert registry.get_model_spec(name).fine_tune_from in [layer.name for layer in model.layers]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": (224, 224)}, "input_shape=\\(224, 224\\)"),
        ({"num_classes": 0}, "num_classes=0"),
        ({"pooling": "mean", "include_top": False}, "pooling='mean'"),
        ({"l2": -1.0}, "l2=-1.0"),
        ({"dropout": 1.5}, "dropout=1.5"),
        ({"weights": 3}, "weights=3"),
        ({"weights": "missing.weights.h5"}, "not found"),
    ],
)
def test_bad_arguments_raise_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tfresnet.create_model("resnet50", **kwargs)


@pytest.mark.parametrize("name", ["vgg16", "mobilenetv1", "mobilenetv2", "mobilenetv3_small"])
def test_below_minimum_input_names_minimum_and_value(name):
    size = tfresnet.get_model_spec(name).min_input_size - 1
    with pytest.raises(ValueError, match=f"at least {size + 1}.*input_shape=\\({size}, {size}, 1\\)"):
        tfresnet.create_model(name, input_shape=(size, size, 1))


def test_preprocessing_auto_uses_the_variants_scaling():
    model = tfresnet.create_model("resnet50", input_shape=(32, 32, 3), preprocessing="auto")
    assert model.get_layer("preprocess").mode == tfresnet.get_model_spec("resnet50").preprocessing


def test_weights_path_round_trip(tmp_path):
    import numpy as np

    model = tfresnet.create_model("resnet20", input_shape=(32, 32, 3), num_classes=3)
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    again = tfresnet.create_model("resnet20", input_shape=(32, 32, 3), num_classes=3,
                                  weights=str(path))
    x = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(model(x)))


def test_imagenet_weights_offline_fail_fast_with_instructions(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure on https://example/resnet50.h5: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty keras cache
    monkeypatch.delenv("TFRESNET_WEIGHTS_DIR", raising=False)
    with pytest.raises(FileNotFoundError,
                       match="resnet50_weights_tf_dim_ordering_tf_kernels.h5.*could not be downloaded.*weights=PATH"):
        tfresnet.create_model("resnet50", weights="imagenet")


def test_imagenet_weights_need_a_keras_counterpart():
    with pytest.raises(ValueError, match="No ImageNet weights.*resnet20"):
        tfresnet.create_model("resnet20", weights="imagenet")
