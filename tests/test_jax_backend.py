"""The JAX backend under test: weights saved here (TensorFlow) are loaded in a subprocess with
``KERAS_BACKEND=jax`` that runs tests/jax; see tests/jax/test_backend.py for what it checks."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from .conftest import REPO_ROOT
from .jax.common import BATCH, ENV_REFERENCE, FAMILY_MODELS, build


def _save_references(folder) -> None:
    rng = np.random.default_rng(0)
    for family, (_, shape, _) in FAMILY_MODELS.items():
        model = build(family)
        # Batch norm's moving statistics away from their 0/1 start, so inference-mode batch
        # norm is compared too.
        for variable in model.non_trainable_variables:
            if "moving_mean" in variable.path:
                variable.assign(rng.normal(0, 0.1, variable.shape))
            elif "moving_variance" in variable.path:
                variable.assign(rng.uniform(0.5, 2.0, variable.shape))
        x = rng.uniform(0, 255, (BATCH, *shape)).astype("float32")
        model.save_weights(os.path.join(folder, f"{family}.weights.h5"))
        np.savez(os.path.join(folder, f"{family}.npz"), x=x,
                 logits=np.asarray(model(x, training=False)))
        if family == "convnet":
            from tfresnet.inspect import fgsm, grad_cam, gradient_norms

            y = np.arange(BATCH) % 10
            np.savez(os.path.join(folder, "inspect.npz"), x=x, y=y,
                     grad_norm=gradient_norms(model, x, y, training=False)["grad_norm"].to_numpy(),
                     grad_cam=grad_cam(model, x[0], int(y[0])), fgsm=fgsm(model, x, y, eps=8.0))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_jax_backend_suite(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the references are computed with TensorFlow")
    pytest.importorskip("jax", reason="jax[cpu] is in the dev extras")
    _save_references(str(tmp_path))
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu",
               **{ENV_REFERENCE: str(tmp_path)})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--timeout=240", "--durations=15", str(REPO_ROOT / "tests" / "jax")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=280, check=False,
    )
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
