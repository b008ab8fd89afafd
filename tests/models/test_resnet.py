"""Tests for `tfresnet.models.resnet`: keras.applications parity, the papers' parameter counts,
the plain twins, the regularisation knobs and the argument checks.

Every model here is built small (or not run at all) so the file stays fast on a laptop CPU;
building every registered model, gradients and save/load are the registry-wide test's job.
"""

import re

import keras
import numpy as np
import pytest

from tfresnet.models import create_model, get_model_spec, list_models
from tfresnet.models.resnet import (
    MIN_INPUT_SIZE,
    RESNET_DEPTHS,
    SMALL_RESNET_DEPTHS,
    ResNet,
    SmallResNet,
    ZeroPadShortcut,
)

# keras.applications at 224x224x3 and 1000 classes (its own count_params()).
KERAS_APPLICATION_PARAMS = {
    "resnet50": 25_636_712,
    "resnet101": 44_707_176,
    "resnet152": 60_419_944,
    "resnet50v2": 25_613_800,
    "resnet101v2": 44_675_560,
    "resnet152v2": 60_380_648,
}
# He et al. 2015, section 4.2 (Table 6), with 10 classes at 32x32x3. The paper counts learned
# parameters, so batch norm's moving statistics (which Keras' count_params() includes, and which
# would make resnet32 0.47M and resnet56 0.86M) are left out; the exact counts pin the build.
SMALL_RESNET_PARAMS = {
    "resnet20": (0.27, 269_722),
    "resnet32": (0.46, 464_154),
    "resnet44": (0.66, 658_586),
    "resnet56": (0.85, 853_018),
    "resnet110": (1.7, 1_727_962),
}

LAYER_NAME = re.compile(
    r"^(input|preprocess|conv1_(pad|conv|bn|relu)|pool1_(pad|pool)"
    r"|conv\d_block\d+_(\d_(pad|conv|bn|relu|pool)|preact_(bn|relu)|add|out|drop_path)"
    r"|post_(bn|relu)|avg_pool|max_pool|top_dropout|predictions)$"
)


def copy_weights_by_name(model, source):
    """Copies every weighted layer of `source` into the layer of `model` with the same name."""
    for layer in source.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())


# Stand-in for `tfresnet.models.load_keras_applications_weights(model, source)` until
# transfer.py lands; swapping this one name moves the parity test onto the library function.
transfer_weights = copy_weights_by_name


def randomise_non_kernel_weights(model, seed=0):
    """Gives batch norm (moving statistics included) and biases non-default values.

    Kernels are already random; without this, gamma=1, beta=0, mean=0, var=1 and zero biases
    would let a misplaced batch norm or bias go unnoticed.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shape).astype("float32"),
                    rng.normal(0.0, 0.2, shape).astype("float32"),
                    rng.normal(0.0, 0.2, shape).astype("float32"),
                    rng.uniform(0.5, 2.0, shape).astype("float32"),
                ]
            )
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0.0, 0.1, bias.shape).astype("float32")])


def weighted_layers(model):
    return {layer.name: [tuple(w.shape) for w in layer.weights] for layer in model.layers
            if layer.weights}


def images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, *shape)).astype("float32")


# --- registry entries -------------------------------------------------------------------------


def test_registered_names_and_metadata():
    expected = {
        "resnet_v1": [f"resnet{d}" for d in RESNET_DEPTHS],
        "resnet_v2": [f"resnet{d}v2" for d in RESNET_DEPTHS],
        "resnet_plain": [f"plain{d}" for d in RESNET_DEPTHS],
        "resnet_small": [f"resnet{d}" for d in SMALL_RESNET_DEPTHS],
        "resnet_plain_small": [f"plain{d}" for d in SMALL_RESNET_DEPTHS],
    }
    preprocessing = {"resnet_v1": "caffe", "resnet_v2": "tf", "resnet_plain": "caffe",
                     "resnet_small": "unit", "resnet_plain_small": "unit"}
    for family, names in expected.items():
        for name in names:
            spec = get_model_spec(name)
            assert spec.family == family
            assert spec.preprocessing == preprocessing[family]
            assert spec.min_input_size == MIN_INPUT_SIZE
            small = family.endswith("small")
            assert spec.default_input_shape == ((32, 32, 3) if small else (224, 224, 3))
    assert {n: get_model_spec(n).keras_application for n in KERAS_APPLICATION_PARAMS} == {
        "resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152",
        "resnet50v2": "ResNet50V2", "resnet101v2": "ResNet101V2", "resnet152v2": "ResNet152V2",
    }
    assert get_model_spec("resnet18").keras_application is None
    assert len(list_models("plain")) == 10


# --- parameter counts -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(KERAS_APPLICATION_PARAMS))
def test_keras_application_param_counts(name):
    model = create_model(name, input_shape=(224, 224, 3), num_classes=1000)
    assert model.count_params() == KERAS_APPLICATION_PARAMS[name]
    if name in ("resnet50", "resnet50v2"):
        constructor = getattr(keras.applications, get_model_spec(name).keras_application)
        reference = constructor(weights=None, input_shape=(224, 224, 3), classes=1000)
        assert reference.count_params() == KERAS_APPLICATION_PARAMS[name]


@pytest.mark.parametrize("name", list(SMALL_RESNET_PARAMS))
def test_small_resnet_param_counts_match_paper(name):
    paper_millions, exact = SMALL_RESNET_PARAMS[name]
    model = create_model(name, input_shape=(32, 32, 3), num_classes=10)
    n = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert float(f"{n / 1e6:.2g}") == paper_millions
    assert n == exact


def test_small_resnet_width_scales_every_stage():
    # width w gives stages of w, 2w and 4w filters: at 4, a quarter of the paper's 16/32/64.
    model = create_model("resnet20", input_shape=(28, 28, 1), num_classes=10, width=4)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert sorted({layer.filters for layer in convs}) == [4, 8, 16]
    assert convs[0].filters == 4 and convs[-1].filters == 16
    assert model.count_params() == 17_598
    wide = create_model("resnet20", input_shape=(28, 28, 1), num_classes=10)
    assert sorted({layer.filters for layer in wide.layers if isinstance(layer, keras.layers.Conv2D)}) == [16, 32, 64]


# --- keras.applications parity ----------------------------------------------------------------


@pytest.fixture(scope="module", params=["resnet50", "resnet50v2"])
def keras_pair(request):
    """(ours, keras.applications twin) at 64x64x3 and 10 classes, sharing randomised weights."""
    name = request.param
    constructor = getattr(keras.applications, get_model_spec(name).keras_application)
    keras.utils.set_random_seed(0)
    source = constructor(weights=None, input_shape=(64, 64, 3), classes=10)
    randomise_non_kernel_weights(source)
    model = create_model(name, input_shape=(64, 64, 3), num_classes=10)
    return model, source


def test_keras_parity_same_weighted_layers(keras_pair):
    model, source = keras_pair
    assert weighted_layers(model) == weighted_layers(source)


def test_keras_parity_same_layer_output_shapes(keras_pair):
    # Covers stride placement: v1 strides the first block of stages 3-5, v2 the last of 2-4.
    model, source = keras_pair
    ours = {layer.name: tuple(layer.output.shape) for layer in model.layers}
    theirs = {layer.name: tuple(layer.output.shape) for layer in source.layers}
    common = set(ours) & set(theirs)
    assert len(common) > 0.9 * len(theirs)
    assert {n: ours[n] for n in common} == {n: theirs[n] for n in common}


def test_stage_output_sizes(keras_pair):
    model, _ = keras_pair
    size = {n: model.get_layer(n).output.shape[1] for n in (
        "conv2_block1_out", "conv2_block3_out", "conv3_block1_out", "conv3_block4_out",
        "conv4_block6_out", "conv5_block3_out")}
    if model.name == "resnet50":  # 64 -> stem /4 = 16, then /2 entering conv3, conv4, conv5
        assert size == {"conv2_block1_out": 16, "conv2_block3_out": 16, "conv3_block1_out": 8,
                        "conv3_block4_out": 8, "conv4_block6_out": 4, "conv5_block3_out": 2}
    else:  # v2: /2 leaving conv2, conv3, conv4; conv5 keeps its size
        assert size == {"conv2_block1_out": 16, "conv2_block3_out": 8, "conv3_block1_out": 8,
                        "conv3_block4_out": 4, "conv4_block6_out": 2, "conv5_block3_out": 2}


def test_keras_parity_identical_outputs(keras_pair):
    model, source = keras_pair
    transfer_weights(model, source)
    x = images((64, 64, 3), n=2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x, training=False)),
        keras.ops.convert_to_numpy(source(x, training=False)),
        rtol=0, atol=1e-4,
    )
    # The softmax alone could hide a difference in saturated logits: compare the features too.
    features = [keras.Model(m.input, m.get_layer("avg_pool").output) for m in (model, source)]
    ours, theirs = (keras.ops.convert_to_numpy(f(x, training=False)) for f in features)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


# --- plain twins ------------------------------------------------------------------------------


@pytest.mark.parametrize("plain, residual", [
    ("plain18", "resnet18"), ("plain50", "resnet50"), ("plain20", "resnet20"),
])
def test_plain_twin_is_the_residual_net_without_shortcuts(plain, residual):
    p = create_model(plain, input_shape=(32, 32, 3), num_classes=10)
    r = create_model(residual, input_shape=(32, 32, 3), num_classes=10)
    assert not any(isinstance(layer, keras.layers.Add) for layer in p.layers)
    assert not any(isinstance(layer, ZeroPadShortcut) for layer in p.layers)
    is_projection = re.compile(r"_0_(conv|bn)$").search
    projections = {n: s for n, s in weighted_layers(r).items() if is_projection(n)}
    assert weighted_layers(p) == {
        n: s for n, s in weighted_layers(r).items() if n not in projections
    }
    projection_params = sum(r.get_layer(n).count_params() for n in projections)
    assert p.count_params() == r.count_params() - projection_params
    if residual in SMALL_RESNET_PARAMS:  # option A shortcuts are parameter-free
        assert projection_params == 0 and p.count_params() == r.count_params()
    # Same strides: every layer the twins share has the same output shape.
    shapes = {layer.name: layer.output.shape for layer in r.layers}
    assert all(layer.output.shape == shapes[layer.name] for layer in p.layers)


# --- option A shortcut ------------------------------------------------------------------------


def test_zero_pad_shortcut_subsamples_and_pads():
    x = images((5, 5, 3), n=2)
    layer = ZeroPadShortcut(8, strides=2, name="s")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 3, 3, 8) == (2, *layer.compute_output_shape((2, 5, 5, 3))[1:])
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    assert not y[..., 3:].any()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, ZeroPadShortcut)
    assert (clone.filters, clone.strides) == (8, 2)


# --- regularisation knobs ---------------------------------------------------------------------


def test_l2_penalises_every_conv_and_dense_kernel_once():
    model = create_model("resnet20", input_shape=(8, 8, 3), l2=1e-4, dropout=0.2)
    kernels = [layer for layer in model.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(kernels) == 20  # 19 convs and the classifier
    assert all(layer.kernel_regularizer is not None for layer in kernels)
    assert len(model.losses) == len(kernels)
    assert model.get_layer("top_dropout").rate == 0.2
    assert not create_model("resnet20", input_shape=(8, 8, 3)).losses


@pytest.mark.parametrize("name", ["resnet20", "resnet18v2"])
def test_drop_path_layers_follow_the_linear_rule(name):
    model = create_model(name, input_shape=(8, 8, 3), num_classes=10, drop_path=0.3)
    drop = [layer for layer in model.layers if layer.name.endswith("_drop_path")]
    n_blocks = 9 if name == "resnet20" else 8
    assert [layer.name for layer in drop][:2] == ["conv2_block1_drop_path",
                                                   "conv2_block2_drop_path"]
    np.testing.assert_allclose([layer.rate for layer in drop], np.linspace(0, 0.3, n_blocks))
    assert not any(
        layer.name.endswith("_drop_path")
        for layer in create_model(name, input_shape=(8, 8, 3), num_classes=10).layers
    )


def test_drop_path_is_identity_at_inference_and_random_in_training():
    keras.utils.set_random_seed(1)
    base = create_model("resnet20", input_shape=(8, 8, 3))
    dropped = create_model("resnet20", input_shape=(8, 8, 3), drop_path=0.5)
    copy_weights_by_name(dropped, base)
    x = images((8, 8, 3), n=8)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(dropped(x, training=False)),
        keras.ops.convert_to_numpy(base(x, training=False)),
        atol=1e-6,
    )
    # Batch norm uses batch statistics in both, so only the dropped branches differ.
    diff = np.abs(keras.ops.convert_to_numpy(dropped(x, training=True))
                  - keras.ops.convert_to_numpy(base(x, training=True)))
    assert diff.max() > 1e-3


# --- argument checks --------------------------------------------------------------------------


@pytest.mark.parametrize("name, kwargs, echoed", [
    ("resnet50", {"input_shape": (0, 64, 3)}, "input_shape=(0, 64, 3)"),
    ("resnet20", {"input_shape": (32, 32)}, "input_shape=(32, 32)"),
    ("resnet18", {"include_top": False, "pooling": "mean"}, "pooling='mean'"),
    ("resnet18v2", {"l2": -1e-4}, "l2=-0.0001"),
    ("resnet20", {"drop_path": 1.0}, "drop_path=1.0"),
    ("plain18", {"drop_path": 0.1}, "drop_path=0.1"),
    ("plain20", {"drop_path": 0.1}, "drop_path=0.1"),
    ("resnet20", {"width": 0}, "width=0"),
    ("plain56", {"width": 4.0}, "width=4.0"),
    ("resnet50", {"num_classes": 0}, "num_classes=0"),
])
def test_bad_arguments_raise_with_the_value_echoed(name, kwargs, echoed):
    with pytest.raises(ValueError, match=re.escape(echoed)):
        create_model(name, **kwargs)


def test_builders_reject_unknown_depths_and_plain_v2():
    with pytest.raises(ValueError, match="depth=19"):
        ResNet(depth=19)
    with pytest.raises(ValueError, match="depth=18"):
        SmallResNet(depth=18)
    with pytest.raises(ValueError, match="shortcut=False"):
        ResNet(depth=18, preact=True, shortcut=False)
    with pytest.raises(ValueError, match="fixes depth=50"):
        create_model("resnet50", depth=101)


# --- input sizes and names --------------------------------------------------------------------


@pytest.mark.parametrize("name, shape", [
    ("resnet20", (28, 28, 1)), ("resnet18", (28, 28, 1)), ("resnet18v2", (28, 28, 1)),
    ("resnet18", (MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3)),
    ("plain20", (MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3)),
])
def test_small_and_grayscale_inputs(name, shape):
    model = create_model(name, input_shape=shape, num_classes=10, preprocessing="unit")
    y = keras.ops.convert_to_numpy(model(np.full((2, *shape), 128.0, "float32"), training=False))
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name, kwargs", [
    ("resnet18", {"drop_path": 0.1, "dropout": 0.1}),
    ("resnet18v2", {"drop_path": 0.1, "preprocessing": "tf"}),
    ("plain18", {"include_top": False, "pooling": "max"}),
    ("resnet20", {"drop_path": 0.1, "preprocessing": "unit"}),
    ("plain20", {}),
])
def test_every_layer_has_a_hierarchical_name(name, kwargs):
    model = create_model(name, input_shape=(32, 32, 3), num_classes=10, **kwargs)
    assert [layer.name for layer in model.layers if not LAYER_NAME.match(layer.name)] == []
