"""benchmarks/batchnorm_kernels.py: each kernel timed per thread count, in its own process."""

import importlib.util
import json
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "batchnorm_kernels.py")
_SPEC = importlib.util.spec_from_file_location("batchnorm_kernels", _PATH)
batchnorm_kernels = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(batchnorm_kernels)


def test_each_kernel_is_timed_for_each_thread_count(tmp_path, capsys):
    out = tmp_path / "bn.json"
    # One dtype: each thread count is a process importing TensorFlow, the bulk of this test's time.
    assert batchnorm_kernels.main(["--shape", "2,4,4,8", "--dtypes", "bfloat16",
                                   "--threads", "1", "2", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["shape"] == [2, 4, 4, 8]
    rows = document["rows"]
    assert [(r["dtype"], r["kernel"]) for r in rows] == [("bfloat16", kernel) for kernel in batchnorm_kernels.KERNELS]
    assert all(r["ms_1"] > 0 and r["ms_2"] > 0 for r in rows)
    assert "| bfloat16 | fused forward |" in capsys.readouterr().out


def test_the_timed_kernels_compute_what_they_are_named_for():
    import numpy as np
    import tensorflow as tf

    fns = batchnorm_kernels._kernels([2, 3, 3, 4], "float32")
    x = tf.random.stateless_normal([2, 3, 3, 4], (0, 1)).numpy()
    dy = tf.random.stateless_normal([2, 3, 3, 4], (0, 2)).numpy()
    # Each returns the first element of its output.
    for name in ("reduction pass", "channel sums as a matmul"):
        np.testing.assert_allclose(fns[name]().numpy(), x[..., 0].sum(), rtol=1e-4)
    np.testing.assert_allclose(fns["whole-tensor sum"]().numpy(), x.sum(), rtol=1e-4)
    np.testing.assert_allclose(fns["add + ReLU"]().numpy(), max(x.flat[0] + dy.flat[0], 0), rtol=1e-5)
    channel = x[..., 0]
    normalised = (x.flat[0] - channel.mean()) / np.sqrt(channel.var() + 1.001e-5)
    for name in ("fused forward", "built from parts"):
        np.testing.assert_allclose(fns[name]().numpy(), normalised, rtol=1e-3)
    np.testing.assert_allclose(fns["normalising pass"]().numpy(), x.flat[0] / np.sqrt(1 + 1.001e-5), rtol=1e-5)


@pytest.mark.parametrize("shape", ["32,56,56", "a,b,c,d", "0,2,2,2"])
def test_a_bad_shape_names_the_value_and_the_form(shape, capsys):
    with pytest.raises(SystemExit):
        batchnorm_kernels.main(["--shape", shape])
    err = capsys.readouterr().err
    assert "N,H,W,C, four positive integers" in err and repr(shape) in err
