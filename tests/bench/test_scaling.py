"""The scaling suite: CPU features from lscpu, resumable points, failures and skips recorded with
their reason, commands `tfresnet` accepts, tables and readable figures."""

from __future__ import annotations

import json
import subprocess

import keras
import pytest
from PIL import Image

from tfresnet.bench import common, scaling
from tfresnet.bench.common import machine_info, write_result
from tfresnet.bench.scaling_report import draw_figures, format_tables
from tfresnet.cli import main

LSCPU = """Architecture:            x86_64
Model name:              Intel(R) Xeon(R) Platinum 8480+
Socket(s):               2
Core(s) per socket:      4
Flags:                   fpu sse2 avx2 avx512f amx_tile amx_bf16 avx512_vnni
"""


def test_cpu_features_read_lscpu_flags_and_cores(monkeypatch):
    monkeypatch.setattr(common.shutil, "which", lambda name: "/usr/bin/lscpu")
    monkeypatch.setattr(common.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, LSCPU, ""))
    cpu = scaling.cpu_features()
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+" and cpu["physical_cores"] == 8
    assert cpu["flags"] == {"avx2": True, "avx512f": True, "avx512_bf16": False, "amx_tile": True,
                            "amx_bf16": True, "amx_int8": False}
    assert cpu["amx"] is True


def _fake_batch_point(calls, fail_at=None, out_path=None):
    def measure(name, batch_size, **_):
        if out_path is not None:  # every earlier point is in the file before the next one starts
            saved = {p["key"]: p["status"] for p in json.loads(out_path.read_text())["points"]}
            calls.append((batch_size, saved))
        else:
            calls.append((batch_size, None))
        if batch_size == fail_at:
            raise RuntimeError("out of memory, say")
        return {"input": "28x28x1", "examples_per_s": 100.0 * batch_size}
    return measure


def test_points_are_saved_as_they_finish_and_a_failure_leaves_the_rest(monkeypatch, tmp_path):
    out = tmp_path / "scaling.json"
    calls = []
    monkeypatch.setattr(scaling, "batch_point", _fake_batch_point(calls, fail_at=8, out_path=out))
    result = scaling.run(parts=["batch"], batch_sizes=[8, 32], smoke=True, out_path=str(out), log=lambda _: None)
    key8, key32 = "batch/sigmoid_mlp_30x1/8", "batch/sigmoid_mlp_30x1/32"
    assert calls[1] == (32, {key8: "failed", key32: "running"})
    points = {p["key"]: p for p in json.loads(out.read_text())["points"]}
    assert points[key8]["status"] == "failed" and points[key8]["reason"] == "RuntimeError: out of memory, say"
    assert points[key32]["status"] == "done" and points[key32]["examples_per_s"] == 3200.0
    assert [p.rsplit("/", 1)[-1] for p in result["figures"]] == ["scaling_batch.png"]


def test_a_rerun_keeps_done_points_and_does_not_retry_one_its_process_died_in(monkeypatch, tmp_path):
    out = tmp_path / "scaling.json"
    key8, key32 = "batch/sigmoid_mlp_30x1/8", "batch/sigmoid_mlp_30x1/32"
    write_result(str(out), "scaling", {"smoke": True, "cpu": scaling.cpu_features(), "points": [
        {"key": key8, "part": "batch", "status": "done", "model": "sigmoid_mlp_30x1", "batch_size": 8,
         "input": "28x28x1", "examples_per_s": 5.0},
        {"key": key32, "part": "batch", "status": "running"}]})
    calls = []
    monkeypatch.setattr(scaling, "batch_point", _fake_batch_point(calls))
    scaling.run(parts=["batch"], batch_sizes=[8, 32, 64], smoke=True, out_path=str(out), log=lambda _: None)
    assert [b for b, _ in calls] == [64]
    points = {p["key"]: p for p in json.loads(out.read_text())["points"]}
    assert points[key8]["examples_per_s"] == 5.0
    assert points[key32]["status"] == "died" and "out of memory" in points[key32]["reason"]

    # Another machine's (or backend's) file is not resumed: everything is measured again.
    document = json.loads(out.read_text())
    document["machine"] = dict(machine_info(), device="another CPU")
    out.write_text(json.dumps(document))
    calls.clear()
    scaling.run(parts=["batch"], batch_sizes=[8, 32], smoke=True, out_path=str(out), log=lambda _: None)
    assert [b for b, _ in calls] == [8, 32]


def test_worker_parts_are_skipped_with_the_reason_without_tensorflow(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    result = scaling.run(parts=["tuning", "training"], out_path=None, log=lambda _: None)
    reasons = {p["key"]: (p["status"], p["reason"]) for p in result["points"]}
    assert set(reasons) == {"tuning/1", "tuning/2", "training/1", "training/2"}
    assert reasons["tuning/2"] == ("skipped", "KerasTuner's trials train through tf.data, which needs "
                                              "TensorFlow (KERAS_BACKEND='jax')")
    assert "tf.distribute" in reasons["training/2"][1] and result["figures"] == []


def test_the_worker_commands_are_ones_tfresnet_accepts(tmp_path, capsys):
    (tmp_path / "mnist.npz").write_bytes(b"")  # found by name; --print-config reads no data
    tune = scaling.tune_command(2, str(tmp_path / "search"), smoke=False)
    assert tune[tune.index("--workers") + 1] == "2"
    assert main([*tune[3:], "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["model"] == "convnet" and config["tune"]["model"] is None and config["export"] is False
    train = scaling.train_command(2, str(tmp_path / "run"), data_dir=str(tmp_path), smoke=False)
    assert train[-2:] == ["--workers", "2"] and "--workers" not in scaling.train_command(1, "r", data_dir=None,
                                                                                          smoke=False)
    assert main([*train[3:-2], "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert (config["data"], config["data_dir"], config["epochs"]) == ("mnist", str(tmp_path), 1)


def _result():
    cpu = {"model": "Test CPU", "physical_cores": 2, "usable_cpus": 2,
           "flags": dict.fromkeys(common.CPU_FLAGS, False), "amx": False}
    batch = [{"key": f"batch/resnet20/{b}", "part": "batch", "status": "done", "model": "resnet20",
              "batch_size": b, "input": "28x28x1", "examples_per_s": rate} for b, rate in ((8, 200.0), (64, 600.0),
                                                                                        (256, 550.0))]
    dataset = [{"key": f"dataset/{d}", "part": "dataset", "status": "done", "data": d, "train_examples": n,
                "model": "resnet20", "batch_size": 128, "first_epoch_seconds": 5.0 + s, "steady_epoch_seconds": s,
                "steady_examples_per_s": n / s} for d, n, s in (("mnist-sample", 6000, 10.0), ("mnist", 60000, 95.0))]
    workers = [{"key": f"tuning/{w}", "part": "tuning", "status": "done", "workers": w, "trials": 6,
                "wall_seconds": s, "trials_per_hour": 3600 * 6 / s, "median_trial_seconds": 5.0}
               for w, s in ((1, 60.0), (2, 80.0))]
    skipped = {"key": "training/2", "part": "training", "status": "skipped", "reason": "no TensorFlow"}
    return {"smoke": False, "cpu": cpu, "points": [*batch, *dataset, *workers, skipped]}


def test_tables_mark_the_best_batch_and_compare_with_one_worker():
    text = format_tables(_result())
    assert "| resnet20 | 28x28x1 | 64 | 600 | best |" in text
    assert "| 2 | 6 | 80 | 270 | 5 | 0.75x |" in text  # 270 trials an hour against 360
    assert "- `training/2`: skipped: no TensorFlow" in text


def test_figures_are_large_enough_to_read(tmp_path):
    paths = draw_figures(_result(), str(tmp_path))
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["scaling_batch.png", "scaling_dataset.png",
                                                     "scaling_workers.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.width >= 600 and image.height >= 450, (path, image.size)


def test_an_unknown_part_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="No scaling part \\['cost'\\]; choose from batch, dataset"):
        scaling.run(parts=["cost"], out_path=None)
