"""Gradient flow: per-weight gradient norms, the GradientFlow callback, and the recipe switch.

The norms are checked against a hand-written NumPy backpropagation, on every model family, on
Nielsen's vanishing-gradient network with real MNIST digits, and for leaving training untouched.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

import tfresnet
from tfresnet.inspect import GradientFlow, gradient_norms, plot_gradient_norms
from tfresnet.inspect.gradients import layer_norms


def family_representatives() -> list[str]:
    first = {}
    for name in tfresnet.list_models():  # depth order: the first is the shallowest
        first.setdefault(tfresnet.get_model_spec(name).family, name)
    return sorted(first.values())


@pytest.mark.parametrize("name", family_representatives())
def test_every_family_one_row_per_trainable_weight(name):
    spec = tfresnet.get_model_spec(name)
    size = max(spec.min_input_size, 32)
    extra = {"head": "avg"} if spec.family == "vgg" else {}
    keras.utils.set_random_seed(0)
    model = tfresnet.create_model(name, input_shape=(size, size, 3), num_classes=5,
                                  preprocessing="auto", **extra)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, size, size, 3)).astype("float32")
    # A classifier that starts at zero (Nielsen's network3 softmax layer) passes no gradient down
    # at step 0 by design; random weights there let the check reach every layer below it.
    head = model.get_layer("predictions")
    if not any(np.any(w) for w in head.get_weights()):
        head.set_weights([rng.normal(size=w.shape).astype("float32") for w in head.get_weights()])
    frame = gradient_norms(model, x, [0, 3, 1, 4])

    assert [(r.layer, r.weight) for r in frame.itertuples()] == [
        (w.path.split("/")[0], w.name) for w in model.trainable_weights]
    assert frame["params"].sum() == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    depth = frame["depth"].to_numpy()
    assert depth[0] == 0 and np.all(np.diff(depth) >= 0) and np.all(np.diff(depth) <= 1)
    assert frame.groupby("depth")["layer"].nunique().eq(1).all()  # one layer per depth
    assert np.all(np.isfinite(frame["grad_norm"])) and np.all(frame["grad_norm"] > 0)


def _nielsen_backprop(model, x, y, output):
    """Bias gradients of the mean cross-entropy, by hand, as Nielsen's network2.backprop does."""
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    layers = [layer for layer in model.layers if layer.weights and layer.name != "preprocess"]
    weights = [[np.asarray(w, np.float64) for w in layer.get_weights()] for layer in layers]
    activations = [x.reshape(len(x), -1).astype(np.float64) / 255.0]
    for kernel, bias in weights[:-1]:
        activations.append(sigmoid(activations[-1] @ kernel + bias))
    z = activations[-1] @ weights[-1][0] + weights[-1][1]
    if output == "softmax":
        a = np.exp(z - z.max(axis=1, keepdims=True))
        a /= a.sum(axis=1, keepdims=True)
    else:
        a = sigmoid(z)
    delta = a - np.eye(z.shape[1])[y]  # both costs' output error (Nielsen eq. 66 and BP1)
    norms = [np.linalg.norm(delta.mean(axis=0))]
    for index in range(len(weights) - 2, -1, -1):
        out = activations[index + 1]
        delta = (delta @ weights[index + 1][0].T) * out * (1 - out)
        norms.insert(0, np.linalg.norm(delta.mean(axis=0)))
    return np.array(norms)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_norms_equal_hand_written_backpropagation(output):
    keras.utils.set_random_seed(1)
    model = tfresnet.create_model("sigmoid_mlp_30x3", preprocessing="auto",
                                  classifier_activation=output)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (64, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 64)
    frame = gradient_norms(model, x, y)
    measured = frame[frame["weight"] == "bias"]["grad_norm"].to_numpy()
    np.testing.assert_allclose(measured, _nielsen_backprop(model, x, y, output), rtol=1e-4)
    # Averaging four batches of 16 is the gradient over all 64 (no batch norm here).
    pieces = gradient_norms(model, x, y, batches=4, batch_size=16)
    np.testing.assert_allclose(pieces["grad_norm"], frame["grad_norm"], rtol=1e-4)


def test_saturated_softmax_still_has_a_gradient():
    # A confidently wrong prediction: through the probabilities log(p) underflows and the
    # gradient would vanish; from the logits it is p - onehot, of norm about sqrt(2).
    inputs = keras.Input((1, 1, 1))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", kernel_initializer="zeros",
                                 bias_initializer=keras.initializers.Constant([200.0, -200.0]),
                                 name="predictions")(x)
    model = keras.Model(inputs, outputs)
    frame = gradient_norms(model, np.ones((1, 1, 1, 1)), [1])
    bias = frame[frame["weight"] == "bias"]["grad_norm"].item()
    assert bias == pytest.approx(np.sqrt(2), rel=1e-4)


def test_plain_dense_network_and_logits_output():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(3)])
    x = np.random.default_rng(0).uniform(0, 255, (6, 8, 8, 1))
    frame = gradient_norms(model, x, [0, 1, 2, 0, 1, 2], training=False)
    assert list(frame["depth"]) == [0, 0, 1, 1]
    assert list(frame["weight"]) == ["kernel", "bias", "kernel", "bias"]
    assert np.all(frame["grad_norm"] > 0)
    expected = float(np.mean(keras.losses.sparse_categorical_crossentropy(
        np.array([0, 1, 2, 0, 1, 2]), model(x), from_logits=True)))
    assert frame["loss"].iloc[0] == pytest.approx(expected, rel=1e-5)


def test_bad_inputs_raise_naming_the_value():
    model = tfresnet.create_model("sigmoid_mlp_30x1")
    x = np.zeros((4, 28, 28, 1))
    with pytest.raises(ValueError, match="shape \\(4, 28, 28\\)"):
        gradient_norms(model, x[..., 0], [0, 1, 2, 3])
    with pytest.raises(ValueError, match="label 10 at position 2.*0..9"):
        gradient_norms(model, x, [0, 1, 10, 3])
    with pytest.raises(ValueError, match="not one-hot"):
        gradient_norms(model, x, np.eye(10)[:4])
    with pytest.raises(ValueError, match="3 batches of 2 need 6 examples; x has 4"):
        gradient_norms(model, x, [0, 1, 2, 3], batches=3, batch_size=2)
    with pytest.raises(ValueError, match="batches=0"):
        gradient_norms(model, x, [0, 1, 2, 3], batches=0)


def test_nielsen_first_hidden_layer_learns_far_slower(shared_data_dir):
    # Nielsen ch. 5, [784, 30, 30, 30, 30, 10] at initialisation, 1,000 training digits:
    # bias-gradient norms 0.003, 0.017, 0.070, 0.285 from the first hidden layer to the last.
    with np.load(shared_data_dir / "mnist.npz") as data:
        x = data["x_train"][:1000, :, :, None].astype("float32")
        y = data["y_train"][:1000]
    for seed in (0, 1, 2):
        keras.utils.set_random_seed(seed)
        model = tfresnet.create_model("sigmoid_mlp_30x4", preprocessing="auto")
        frame = gradient_norms(model, x, y, batches=4)
        hidden = frame[(frame["weight"] == "bias") & (frame["layer"] != "predictions")]
        norms = hidden["grad_norm"].to_numpy()
        print(f"seed {seed}: hidden bias-gradient norms {np.round(norms, 4)}")
        assert list(hidden["layer"]) == ["dense1", "dense2", "dense3", "dense4"]
        assert norms[0] * 10 <= norms[-1]
        assert np.all(np.diff(norms) > 0)  # slower at every layer towards the input


def test_plain56_gradients_explode_towards_the_input_at_initialisation():
    # Batch norm does not keep a deep plain net's gradients healthy at initialisation (He et al.
    # 2015, sec. 4.1, say it does): scripts/gradient_flow_depth.py measured the first conv
    # kernel's gradient norm at 756-1,556 times the last's for plain56 (3 seeds, 128 real digits),
    # 3.5-6 for plain20 and 0.8-5.5 for resnet20/56; 738-3,040 on 32 sample digits, 5 seeds.
    digits = tfresnet.data.load("mnist-sample", batch_size=32, validation_split=0, shuffle=False,
                                verbose=0)
    x, y = (t.numpy() for t in next(iter(digits.train)))
    keras.utils.set_random_seed(0)
    model = tfresnet.create_model("plain56", input_shape=(28, 28, 1), num_classes=10,
                                  preprocessing="auto")
    kernels = layer_norms(gradient_norms(model, x, y), weight="kernel")
    convs = kernels[kernels["layer"] != "predictions"]["grad_norm"].to_numpy()
    assert len(convs) == 55
    assert convs[0] > 100 * convs[-1]


def _tiny_bn_net():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    return model


def _fit(x, y, callbacks):
    keras.utils.set_random_seed(7)
    model = _tiny_bn_net()
    model.fit(x, y, batch_size=8, epochs=2, callbacks=callbacks, verbose=0)
    return model


def test_gradient_flow_records_and_leaves_training_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (40, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 40)
    plain = _fit(x, y, [])
    flow = GradientFlow(x[:8], np.eye(3)[y[:8]], every=3, run_dir=str(tmp_path))  # one-hot is fine
    measured = _fit(x, y, [flow])
    for a, b in zip(plain.weights, measured.weights):  # BN statistics and the seed state too
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)

    frame = pd.read_csv(tmp_path / "gradient_flow.csv")
    # 5 steps an epoch, 2 epochs: step 0 (before training) and every third step.
    assert sorted(frame["step"].unique()) == [0, 3, 6, 9]
    assert list(frame.groupby("step")["epoch"].first()) == [0, 0, 1, 1]
    assert list(frame[frame["step"] == 0]["layer"]) == ["conv", "bn", "bn", "predictions", "predictions"]
    assert (frame["grad_norm"] > 0).all()
    for png in ("gradient_flow.png", "gradient_flow_layers.png"):
        assert (tmp_path / png).stat().st_size > 1000, png


def test_probe_measurement_leaves_batch_norm_statistics_alone():
    model = _tiny_bn_net()
    before = [np.asarray(w).copy() for w in model.weights]
    x = np.random.default_rng(2).uniform(0, 255, (8, 8, 8, 1))
    gradient_norms(model, x, [0, 1, 2, 0, 1, 2, 0, 1], training=True)
    for w, value in zip(model.weights, before):
        np.testing.assert_array_equal(np.asarray(w), value, err_msg=w.path)


def test_plot_one_line_per_model(tmp_path):
    rows = pd.DataFrame({"model": ["a"] * 2 + ["b"] * 2, "depth": [0, 1, 0, 1],
                         "layer": ["l0", "l1"] * 2, "weight": ["kernel"] * 4,
                         "grad_norm": [1e-3, 1e-1, 3e-2, 4e-2]})
    path = plot_gradient_norms(rows, str(tmp_path / "norms.png"))
    assert path.endswith("norms.png") and (tmp_path / "norms.png").stat().st_size > 1000
    norms = layer_norms(pd.DataFrame({"depth": [0, 0], "layer": ["d", "d"],
                                      "weight": ["kernel", "bias"], "grad_norm": [3.0, 4.0]}))
    assert norms["grad_norm"].tolist() == [5.0]  # one layer: root of the sum of squares


def test_recipe_switch_records_gradient_flow(tmp_path):
    from tfresnet.training.cli import load_recipe, main
    from tfresnet.training.config import ConfigError, TrainConfig, apply_overrides

    with pytest.raises(ConfigError, match="gradient_flow must be None or >= 1"):
        apply_overrides(TrainConfig(), ["gradient_flow=0"]).validate()
    root = tfresnet.__file__.rsplit("/tfresnet/", 1)[0]
    _, get_config = load_recipe(f"{root}/recipes/mnist_convnet.py")
    run_dir = tmp_path / "run"
    assert main(get_config, ["--set", "smoke=true", "--set", "gradient_flow=2", "--set",
                             "export=false", "--run-dir", str(run_dir)], name="mnist_convnet") == 0
    assert json.loads((run_dir / "config.json").read_text())["gradient_flow"] == 2
    frame = pd.read_csv(run_dir / "gradient_flow.csv")
    assert sorted(frame["step"].unique()) == [0, 2]  # a smoke run trains 3 steps
    assert set(frame["layer"]) == {"block1_conv", "block2_conv", "predictions"}
    assert (run_dir / "gradient_flow.png").exists() and (run_dir / "gradient_flow_layers.png").exists()
