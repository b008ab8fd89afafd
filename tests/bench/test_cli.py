"""`tfresnet bench`: bad options fail before anything runs; --smoke writes well-formed JSON."""

import json
import math

import pytest

from tfresnet.cli import main


@pytest.mark.parametrize("args, message", [
    (["--targets", "99"], "--targets are accuracies in (0, 1]. Received 99.0"),
    (["--batch-size", "0"], "--batch-size must be > 0"),
    (["--suite", "scaling", "--batch-sizes", "8", "0"], "--batch-sizes must be > 0. Received --batch-sizes 0"),
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
    for suite in ("throughput", "time-to-accuracy", "serving", "scaling"):
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

    scaling = json.loads((tmp_path / "scaling.json").read_text())
    assert set(scaling["cpu"]["flags"]) >= {"avx2", "avx512f", "avx512_bf16", "amx_tile"}
    status = {p["key"]: p["status"] for p in scaling["points"]}
    assert status == {"batch/sigmoid_mlp_30x1/8": "done", "batch/sigmoid_mlp_30x1/32": "done",
                      "dataset/mnist-sample": "done", "dataset/mnist": "done", "tuning/1": "skipped",
                      "tuning/2": "skipped", "training/1": "skipped", "training/2": "skipped"}
    points = {p["key"]: p for p in scaling["points"]}
    assert _finite_positive(points["batch/sigmoid_mlp_30x1/32"]["examples_per_s"])
    assert [points[f"dataset/{d}"]["train_examples"] for d in ("mnist-sample", "mnist")] == [128, 512]
    assert all(len(points[f"dataset/{d}"]["epoch_seconds"]) == 2 for d in ("mnist-sample", "mnist"))
    assert sorted(p.rsplit("/", 1)[-1] for p in scaling["figures"]) == ["scaling_batch.png", "scaling_dataset.png"]
    assert all((tmp_path / p.rsplit("/", 1)[-1]).is_file() for p in scaling["figures"])
