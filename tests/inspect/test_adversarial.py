"""FGSM, PGD and robustness curves (`tfresnet.inspect.adversarial`).

Three kinds of evidence: a linear softmax model whose input gradient has a closed form
(W (p - onehot)), foolbox as an independent implementation of the same attacks (skipped where it
is not installed), and a small convnet trained here on the shipped MNIST sample, where the attacks
must actually fool it.
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import pandas as pd
import pytest

import tfresnet
from tfresnet.inspect.adversarial import fgsm, pgd, plot_adversarial, plot_robustness, robustness

EPS_01 = 0.1 * 255
EPS_03 = 0.3 * 255


# ----------------------------------------------------------------------------- closed form


def _linear_model(weights, bias):
    # Functional, not Sequential: logits_model reads `model.input`, which a Keras 3.15 Sequential
    # does not define.
    inputs = keras.Input((4, 4, 1))
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights.astype("float32"), bias.astype("float32")])
    return model


@pytest.fixture(scope="module")
def linear():
    """A linear softmax model with small weights (unsaturated), images and labels."""
    rng = np.random.default_rng(1)
    weights, bias = rng.normal(0, 0.004, (16, 3)), rng.normal(0, 0.1, 3)
    x = rng.uniform(0, 255, (12, 4, 4, 1)).astype("float32")
    x[0, :2] = 0.0  # pixels on the range's edges, where the step must be clipped
    x[1, :2] = 255.0
    y = rng.integers(0, 3, 12)
    return _linear_model(weights, bias), weights, bias, x, y


def _closed_form_gradient(weights, bias, x, labels):
    """d CE(labels, softmax(x W + b)) / dx = (p - onehot) W^T, in float64."""
    flat = x.reshape(len(x), -1).astype("float64")
    logits = flat @ weights + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return ((p - np.eye(weights.shape[1])[labels]) @ weights.T).reshape(x.shape), p


def test_fgsm_equals_closed_form(linear):
    model, weights, bias, x, y = linear
    grad, _ = _closed_form_gradient(weights, bias, x, y)
    assert np.abs(grad).min() > 1e-6  # far above float32 rounding: no sign is an accident
    expected = np.clip(x + np.float32(10.0) * np.sign(grad).astype("float32"), 0, 255)
    np.testing.assert_array_equal(fgsm(model, x, y, 10.0), expected)
    # Clipping happened where the step left the range, so that part is tested too.
    assert (expected == 0).any() and (expected == 255).any()


def test_targeted_fgsm_steps_down_the_target_loss(linear):
    model, weights, bias, x, _ = linear
    target = np.arange(len(x)) % 3
    grad, p_before = _closed_form_gradient(weights, bias, x, target)
    expected = np.clip(x - np.float32(10.0) * np.sign(grad).astype("float32"), 0, 255)
    x_adv = fgsm(model, x, None, 10.0, target=target)
    np.testing.assert_array_equal(x_adv, expected)
    _, p_after = _closed_form_gradient(weights, bias, x_adv, target)
    rows = np.arange(len(x))
    assert (p_after[rows, target] > p_before[rows, target]).all()


def test_fgsm_steps_through_a_saturated_softmax():
    # Class 0 wins by ~40 logits (0.02 per unit of the image's pixel sum): softmax rounds its
    # probability to exactly 1, so a cross-entropy of the probabilities, clipped to [1e-7, 1 - 1e-7]
    # as Keras clips them, has a zero gradient (checked: this test then fails), while from the
    # logits the gradient is p_1 w_1 + p_2 w_2 with p_1 ~ e^-40, still a float32.
    rng = np.random.default_rng(2)
    u = rng.normal(0, 0.005, 16)
    weights = np.stack([u, u - 0.02, u - 0.04], axis=1)
    x = rng.uniform(60, 200, (4, 4, 4, 1)).astype("float32")
    model = _linear_model(weights, np.zeros(3))
    probs = keras.ops.convert_to_numpy(model(x))
    assert (probs[:, 0] == 1.0).all()
    x_adv = fgsm(model, x, np.zeros(4, int), 5.0)
    expected_sign = np.sign(weights[:, 1]).astype("float32").reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(x_adv, x + 5.0 * expected_sign)


def test_pgd_stays_in_the_ball_and_the_pixel_range(linear):
    model, _, _, x, y = linear
    # A step larger than the ball and a random start: only the projection keeps the iterates in.
    x_adv = pgd(model, x, y, 30.0, steps=5, step_size=45.0, random_start=True, seed=3)
    assert np.abs(x_adv - x).max() <= 30.0 + 1e-4  # float32 rounding of x +- eps
    assert x_adv.min() >= 0.0 and x_adv.max() <= 255.0
    assert np.isclose(np.abs(x_adv - x).max(), 30.0, atol=1e-4)  # the attack uses its budget


def test_pgd_one_full_step_from_x_is_fgsm(linear):
    model, _, _, x, y = linear
    np.testing.assert_array_equal(
        pgd(model, x, y, 12.0, steps=1, step_size=12.0, random_start=False), fgsm(model, x, y, 12.0))


def test_pgd_batching_and_seed(linear):
    model, _, _, x, y = linear
    whole = pgd(model, x, y, 20.0, steps=3, seed=5)
    np.testing.assert_array_equal(pgd(model, x, y, 20.0, steps=3, seed=5, batch_size=5), whole)
    assert not np.array_equal(pgd(model, x, y, 20.0, steps=3, seed=6), whole)


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: fgsm(m, x[..., 0], y, 1.0), r"shape \(N, 4, 4, 1\)"),
    (lambda m, x, y: fgsm(m, np.zeros((2, 5, 4, 1)), y[:2], 1.0), "5 height"),
    (lambda m, x, y: fgsm(m, x, np.full(len(x), 3), 1.0), r"class 3 .*ids 0-2"),
    (lambda m, x, y: fgsm(m, x, y[:3], 1.0), "one per image"),
    (lambda m, x, y: fgsm(m, x, None, 1.0), "Received y=None"),
    (lambda m, x, y: fgsm(m, x, y, -1.0), "eps=-1.0"),
    (lambda m, x, y: fgsm(m, x, y, "big"), "eps='big'"),
    (lambda m, x, y: pgd(m, x, y, float("nan")), "eps=nan"),
    (lambda m, x, y: pgd(m, x, y, 1.0, target=3), r"target holds class 3 .*ids 0-2"),
    (lambda m, x, y: pgd(m, x, y, 1.0, target=-1), "target holds class -1"),
    (lambda m, x, y: pgd(m, x, y, 1.0, steps=0), "steps=0"),
    (lambda m, x, y: pgd(m, x, y, 1.0, step_size=-2.0), "step_size=-2.0"),
    (lambda m, x, y: robustness(m, (x, y), attacks=("fgsm", "cw")), r"'cw'.*Valid attacks: fgsm, pgd"),
    (lambda m, x, y: robustness(m, (x, y), eps=[0, -3]), "eps=-3"),
    (lambda m, x, y: robustness(m, (x, y, y)), "pair"),
])
def test_bad_inputs_name_the_value(linear, call, match):
    model, _, _, x, y = linear
    with pytest.raises(ValueError, match=match):
        call(model, x, y)


# ----------------------------------------------------------------------------- foolbox


def test_matches_foolbox_on_the_linear_model(linear):
    foolbox = pytest.importorskip("foolbox", reason="foolbox (dev extra) is not installed")
    import tensorflow as tf

    model, _, _, x, y = linear
    fmodel = foolbox.TensorFlowModel(tfresnet.inspect.logits_model(model), bounds=(0, 255))
    xt, yt = tf.constant(x), tf.constant(y)
    _, expected, _ = foolbox.attacks.FGSM()(fmodel, xt, yt, epsilons=10.0)
    np.testing.assert_array_equal(fgsm(model, x, y, 10.0), expected.numpy())
    attack = foolbox.attacks.LinfPGD(steps=7, abs_stepsize=4.0, random_start=False)
    _, expected, _ = attack(fmodel, xt, yt, epsilons=15.0)
    np.testing.assert_allclose(pgd(model, x, y, 15.0, steps=7, step_size=4.0, random_start=False),
                               expected.numpy(), atol=1e-4)


# ----------------------------------------------------------------------------- a trained convnet


@pytest.fixture(scope="module")
def digits(trained_digit_model):
    """The session's convnet_fast trained one epoch on the shipped MNIST sample (tests/inspect/conftest.py)."""
    return trained_digit_model


def _accuracy(model, x, y):
    return float(np.mean(keras.ops.convert_to_numpy(model(x)).argmax(axis=1) == y))


def test_attacks_fool_a_trained_convnet(digits):
    model, x, y = digits
    clean = _accuracy(model, x, y)
    x_fgsm = fgsm(model, x, y, EPS_01)
    x_pgd = pgd(model, x, y, EPS_01, steps=10)
    fgsm_accuracy, pgd_accuracy = _accuracy(model, x_fgsm, y), _accuracy(model, x_pgd, y)
    assert clean >= 0.85
    assert fgsm_accuracy <= clean - 0.15, (clean, fgsm_accuracy)
    assert pgd_accuracy <= fgsm_accuracy, (fgsm_accuracy, pgd_accuracy)
    for x_adv in (x_fgsm, x_pgd):
        assert np.abs(x_adv - x).max() <= EPS_01 + 1e-4
        assert x_adv.min() >= 0.0 and x_adv.max() <= 255.0


def test_targeted_pgd_makes_digits_eights(digits):
    # 8 as the target: its strokes cover most digits' (a 1 is the hardest target, ~45% here).
    model, x, y = digits
    others = x[:100][y[:100] != 8]
    x_adv = pgd(model, others, None, EPS_03, steps=10, target=8)
    predicted = keras.ops.convert_to_numpy(model(x_adv)).argmax(axis=1)
    assert np.mean(predicted == 8) >= 0.9
    assert np.abs(x_adv - others).max() <= EPS_03 + 1e-4


def test_matches_foolbox_on_the_convnet(digits):
    foolbox = pytest.importorskip("foolbox", reason="foolbox (dev extra) is not installed")
    import tensorflow as tf

    model, x, y = digits
    x, y = x[:50], y[:50]
    fmodel = foolbox.TensorFlowModel(tfresnet.inspect.logits_model(model), bounds=(0, 255))
    _, expected, _ = foolbox.attacks.FGSM()(fmodel, tf.constant(x), tf.constant(y), epsilons=EPS_01)
    np.testing.assert_array_equal(fgsm(model, x, y, EPS_01), expected.numpy())
    attack = foolbox.attacks.LinfPGD(steps=5, abs_stepsize=8.0, random_start=False)
    criterion = foolbox.criteria.TargetedMisclassification(tf.constant(np.full(50, 3)))
    _, expected, _ = attack(fmodel, tf.constant(x), criterion, epsilons=EPS_01)
    ours = pgd(model, x, None, EPS_01, steps=5, step_size=8.0, random_start=False, target=3)
    # Same float32 graph either way; a sign flip of a near-zero gradient would show up here.
    assert np.mean(np.abs(ours - expected.numpy()) < 1e-3) > 0.999


def test_robustness_frame(digits, tmp_path):
    import tensorflow as tf

    model, x, y = digits
    eps = [0.0, 0.05 * 255, EPS_01, EPS_03]
    frame = robustness(model, (x, y), eps=eps, max_examples=100, pgd_steps=3)
    assert list(frame.columns) == ["attack", "eps", "eps_fraction", "accuracy", "examples"]
    assert frame.shape == (8, 5) and (frame["examples"] == 100).all()
    assert frame["attack"].tolist() == ["fgsm"] * 4 + ["pgd"] * 4
    clean = _accuracy(model, x[:100], y[:100])
    for _, curve in frame.groupby("attack"):
        accuracy = curve.sort_values("eps")["accuracy"].to_numpy()
        assert accuracy[0] == clean
        assert (np.diff(accuracy) <= 0.02).all() and accuracy[-1] < clean - 0.3, accuracy
    # A tf.data dataset of one-hot batches gives the same numbers as the arrays.
    batches = tf.data.Dataset.from_tensor_slices((x, np.eye(10, dtype="float32")[y])).batch(32)
    same = robustness(model, batches, eps=eps[:3], attacks="fgsm", max_examples=100)
    pd.testing.assert_frame_equal(same, frame.iloc[:3].reset_index(drop=True))

    path = plot_robustness(frame, str(tmp_path / "plots" / "robustness.png"))
    assert pathlib.Path(path).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="lacks column"):
        plot_robustness(frame.drop(columns="accuracy"), str(tmp_path / "bad.png"))


def test_plot_adversarial(digits, tmp_path):
    model, x, y = digits
    x_adv = fgsm(model, x[:3], y[:3], EPS_01)
    path = plot_adversarial(model, x[:3], x_adv, str(tmp_path / "examples.png"), y=y[:3],
                            class_names=[f"digit {i}" for i in range(10)])
    assert path.endswith("examples.png") and pathlib.Path(path).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="same shape"):
        plot_adversarial(model, x[:3], x_adv[:2], str(tmp_path / "bad.png"))
    with pytest.raises(ValueError, match="one name per class"):
        plot_adversarial(model, x[:3], x_adv, str(tmp_path / "bad.png"), class_names=["a", "b"])



def test_robustness_plot_title_names_the_split(tmp_path, monkeypatch):
    """An accuracy in a title says which split it is of (issue 23: "Every title names its split")."""
    from tfresnet.inspect import adversarial

    titles = []
    real_save = adversarial.save_figure

    def save(fig, path, **kwargs):
        titles.append(fig.axes[0].get_title())
        return real_save(fig, path, **kwargs)

    monkeypatch.setattr(adversarial, "save_figure", save)
    frame = pd.DataFrame({"attack": ["fgsm", "fgsm"], "eps": [0.0, 8.0], "accuracy": [0.9, 0.4],
                          "examples": [16, 16]})
    plot_robustness(frame, str(tmp_path / "test.png"), split="test")
    plot_robustness(frame, str(tmp_path / "given.png"))
    assert titles == ["Test accuracy under attack (16 test examples)",
                      "Accuracy under attack (16 examples given)"]


def test_the_robustness_plot_draws_chance_when_told_the_classes(tmp_path, monkeypatch):
    from tfresnet.inspect import adversarial

    lines = []
    real_save = adversarial.save_figure

    def save(fig, path, **kwargs):
        lines.append({line.get_label(): list(line.get_ydata()) for line in fig.axes[0].get_lines()})
        return real_save(fig, path, **kwargs)

    monkeypatch.setattr(adversarial, "save_figure", save)
    frame = pd.DataFrame({"attack": ["fgsm", "fgsm"], "eps": [0.0, 8.0], "accuracy": [0.9, 0.1]})
    plot_robustness(frame, str(tmp_path / "three.png"), classes=3)
    plot_robustness(frame, str(tmp_path / "none.png"))
    assert lines[0]["chance (1/3)"] == pytest.approx([1 / 3, 1 / 3])
    assert list(lines[1]) == ["FGSM"]
