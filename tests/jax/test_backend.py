"""The JAX backend, run by tests/test_jax_backend.py in a process with ``KERAS_BACKEND=jax``.

TensorFlow is installed (tf.data feeds JAX), but Keras computes with JAX. Every registry family
gives the logits TensorFlow gave for the same weights, a smoke recipe learns, the inspect tools
give TensorFlow's answers, and what needs TensorFlow itself (export, tf.distribute) fails at once
in one line saying so.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from tfresnet.training import TrainConfig, train
from tfresnet.training.config import ConfigError

from .common import FAMILY_MODELS, RELATIVE_TOLERANCE, build, reference_dir


def test_backend_is_jax():
    assert keras.backend.backend() == "jax"


@pytest.mark.parametrize("family", sorted(FAMILY_MODELS))
def test_family_gives_tensorflows_logits(family):
    model = build(family)
    model.load_weights(os.path.join(reference_dir(), f"{family}.weights.h5"))
    reference = np.load(os.path.join(reference_dir(), f"{family}.npz"))
    # One compiled call: eager JAX dispatches op by op, 10-20 s for a MobileNet on 2 cores.
    logits = model.predict(reference["x"], batch_size=len(reference["x"]), verbose=0)
    diff = float(np.abs(logits - reference["logits"]).max())
    scale = max(1.0, float(np.abs(reference["logits"]).max()))
    print(f"{family} ({FAMILY_MODELS[family][0]}): max abs logit difference JAX vs TF {diff:.2e} "
          f"(largest logit {scale:.2f})")
    assert diff <= RELATIVE_TOLERANCE * scale


def test_inspect_tools_give_tensorflows_answers():
    from tfresnet.inspect import fgsm, grad_cam, gradient_norms

    model = build("convnet")
    model.load_weights(os.path.join(reference_dir(), "convnet.weights.h5"))
    ref = np.load(os.path.join(reference_dir(), "inspect.npz"))
    norms = gradient_norms(model, ref["x"], ref["y"], training=False)["grad_norm"].to_numpy()
    np.testing.assert_allclose(norms, ref["grad_norm"], rtol=1e-3)
    heatmap = grad_cam(model, ref["x"][0], int(ref["y"][0]))
    np.testing.assert_allclose(heatmap, ref["grad_cam"], atol=1e-3)
    adversarial = fgsm(model, ref["x"], ref["y"], eps=8.0)
    # A sign flips only where the gradient is ~0 on one backend: nearly all pixels agree.
    assert np.mean(np.isclose(adversarial, ref["fgsm"], atol=1e-3)) > 0.99


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    config = TrainConfig(
        model="convnet_fast", data="mnist-sample", validation_split=0.0, epochs=2,
        steps_per_epoch=60, batch_size=64, optimizer="adam", lr=3e-3, schedule="constant",
        dropout=0.0, label_smoothing=0.0, export=False, tensorboard=False, verbose=0, seed=0,
    )
    return train(config, str(tmp_path_factory.mktemp("jax") / "run"), recipe="jax_smoke")


def test_smoke_recipe_learns_on_jax(smoke_run):
    accuracy = smoke_run.metrics["accuracy"]
    print(f"convnet_fast on mnist-sample, 120 steps of 64 on JAX: test accuracy {accuracy:.4f} "
          f"on {smoke_run.metrics['examples']} digits")
    assert accuracy > 0.8


def test_export_says_it_needs_tensorflow(smoke_run, capsys):
    from tfresnet.cli import main

    assert main(["export", smoke_run.run_dir]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "KERAS_BACKEND=tensorflow" in err[0], err
    assert not os.path.exists(os.path.join(smoke_run.run_dir, "export"))


@pytest.mark.parametrize("strategy", ["mirrored", "multiworker"])
def test_tf_distribute_strategy_fails_before_a_run_dir(strategy, tmp_path):
    with pytest.raises(ConfigError, match="needs KERAS_BACKEND=tensorflow"):
        train(TrainConfig(strategy=strategy, data="mnist-sample"), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_a_search_runs_its_trials_on_jax(tmp_path):
    from tfresnet.tuning import tune

    config = TrainConfig(model="convnet", data="mnist-sample", smoke=True, jit_compile=False,
                         export=False, verbose=0, tensorboard=False, tune={"lr": [1e-3, 3e-3]})
    result = tune(config, str(tmp_path / "search"), tuner="grid", max_trials=2)
    assert list(result.results["status"]) == ["COMPLETED", "COMPLETED"]
    assert (tmp_path / "search" / "best" / "model.keras").exists()


def test_kernel_ceiling_pullbacks_on_jax():
    from tfresnet.bench import kernels
    from tfresnet.models.profile import count_macs

    rng = np.random.default_rng(0)
    x, k, dy = (rng.standard_normal(shape).astype("float32") for shape in ((5, 3), (3, 4), (5, 4)))
    for wrt, expected in ((None, x @ k), (0, dy @ k.T), (1, x.T @ dy)):
        fn = kernels._compiled(keras.ops.matmul, wrt)
        got = keras.ops.convert_to_numpy(fn(x, k) if wrt is None else fn(x, k, dy))
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    model = build("convnet")
    ceiling = kernels.kernel_ceiling(model, 2, seconds=0.001, repeats=1)
    assert ceiling["macs"] == count_macs(model)
    assert ceiling["ceiling_examples_per_s"] > 0
