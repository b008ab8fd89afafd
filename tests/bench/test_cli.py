"""`tfresnet bench`: bad options fail before anything runs; --smoke writes well-formed JSON."""

import json
import math

import pytest

from tfresnet.cli import main


@pytest.mark.parametrize("args, message", [
    (["--targets", "99"], "--targets are accuracies in (0, 1]. Received 99.0"),
    (["--batch-size", "0"], "--batch-size must be > 0"),
    (["--set", "lrr=0.1"], "lrr"),
    (["--recipes", "no_such.py", "recipes/mnist_fast.py"], "no recipe file 'no_such.py'"),
])
def test_bad_options_fail_before_running(args, message, tmp_path, capsys):
    assert main(["bench", "--out-dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def _finite_positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_smoke_runs_every_suite_and_writes_json(tmp_path, capsys):
    assert main(["bench", "--smoke", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for suite in ("throughput", "time-to-accuracy", "serving"):
        assert f"## {suite}" in out

    throughput = json.loads((tmp_path / "throughput.json").read_text())
    assert throughput["benchmark"] == "throughput" and throughput["smoke"] is True
    assert _finite_positive(throughput["peaks"]["float32"]["flops_per_s"])
    (row,) = throughput["rows"]
    assert row["model"] == "resnet20" and row["macs"] == row["macs_plain"]
    for key in ("tfresnet_examples_per_s", "keras_examples_per_s", "ratio", "tfresnet_fraction_of_peak"):
        assert _finite_positive(row[key]), key

    tta = json.loads((tmp_path / "time_to_accuracy.json").read_text())
    assert [r["recipe"] for r in tta["runs"]] == ["mnist_convnet", "mnist_fast"]
    for run in tta["runs"]:
        assert run["data"] == "mnist-sample" and run["probes"]
        assert set(run["reached"]) == {"0.99", "0.995"}
        assert 0.0 <= run["final_accuracy"] <= 1.0
        assert [p["examples"] for p in run["probes"]] == sorted(p["examples"] for p in run["probes"])
    assert len(tta["speedups"]) == 2

    serving = json.loads((tmp_path / "serving.json").read_text())
    assert [r["batch_size"] for r in serving["rows"]] == [1, 64]
    for row in serving["rows"]:
        for key in ("signature_images_per_s", "predict_images_per_s", "predict_on_batch_images_per_s",
                    "signature_vs_predict"):
            assert _finite_positive(row[key]), key
    assert "| resnet20 |" in out  # the Markdown tables
