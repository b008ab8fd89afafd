"""scripts/gpu_check.py's path for the lent GPU machines (JAX, no TensorFlow), tried on this CPU
with TensorFlow hidden from the import path: the race runs on arrays, the TF-only pipeline
benchmark is skipped with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..conftest import REPO_ROOT

# Runs a script with every `tensorflow*` import failing, as on a machine without TensorFlow.
HIDE_TENSORFLOW = """
import importlib.abc, runpy, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith("tensorflow"):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
sys.meta_path.insert(0, Hide())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.timeout(120)
def test_gpu_check_smoke_runs_without_tensorflow(tmp_path, shared_data_dir):
    pytest.importorskip("jax", reason="jax[cpu] is in the dev extras")
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-c", HIDE_TENSORFLOW, str(REPO_ROOT / "scripts" / "gpu_check.py"), "--smoke",
         "--data-dir", str(shared_data_dir), "--out", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=100, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["backend"] == "jax" and result["tensorflow_importable"] is False
    assert result["throughput"]["rows"][0]["tfresnet_examples_per_s"] > 0
    race = result["time_to_accuracy"]
    assert race["method"] == "arrays" and [r["recipe"] for r in race["runs"]] == ["mnist_convnet", "mnist_fast"]
    assert race["runs"][1]["stopped_by"] == "targets"  # mnist_fast reached 50% on 2,048 digits
    assert "needs KERAS_BACKEND=tensorflow (backend 'jax')" in result["input_pipeline"]["skipped"]
    assert "input_pipeline: the input-pipeline benchmark runs tf.data" in done.stdout  # the reason, printed
    assert "needs 2 or more" in result["data_parallel"]["skipped"]
    assert set(result["part_seconds"]) == {"throughput", "time_to_accuracy", "input_pipeline", "data_parallel"}
