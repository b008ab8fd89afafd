"""`benchmarks/transfer.py`'s bookkeeping: rows per seed, files saved before seeds, the table over seeds."""

import importlib.util
import json
import os
import pathlib
import shutil

import pytest

BENCHMARK = pathlib.Path(__file__).parents[2] / "benchmarks" / "transfer.py"


@pytest.fixture(scope="module")
def transfer():
    spec = importlib.util.spec_from_file_location("transfer_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(accuracy, seconds=10.0):
    return {"test_accuracy": accuracy, "train_seconds": seconds, "epochs": 5}


def test_a_file_saved_before_seeds_keeps_its_rows_as_seed_0(transfer, tmp_path):
    path = tmp_path / "transfer.json"
    path.write_text(json.dumps({"machine": {}, "runs": {"mobilenetv2-0.35/breeds/fine-tuning": _run(0.95),
                                                        "mobilenetv2-0.35/breeds/scratch/seed1": _run(0.3)}}))
    assert sorted(transfer._load(str(path))["runs"]) == ["mobilenetv2-0.35/breeds/fine-tuning/seed0",
                                                         "mobilenetv2-0.35/breeds/scratch/seed1"]


def test_the_table_gives_the_median_and_range_over_seeds_and_one_seed_as_it_is(transfer):
    runs = {f"mobilenetv2-0.35/breeds/fine-tuning/seed{seed}": _run(accuracy, seconds)
            for seed, (accuracy, seconds) in enumerate([(0.95, 18.0), (0.9833, 20.0), (0.9667, 30.0)])}
    runs["mobilenetv2-0.35/breeds/scratch/seed0"] = _run(1 / 3, 16.0)
    row = next(line for line in transfer.table(runs).splitlines() if line.startswith("| mobilenetv2-0.35 | breeds |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2:] == ["-", "96.7% (95.0%-98.3%, 3 seeds; 20 s)", "33.3% (16 s, 5 ep)", "-", "-", "-"]


def test_bad_seeds_are_refused_before_anything_trains(transfer, tmp_path, capsys):
    with pytest.raises(SystemExit):
        transfer.main(["--seeds", "0,x", "--out", str(tmp_path / "out.json")])
    assert "--seeds takes comma-separated integers" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_the_fine_tuning_variants_set_what_their_names_say(transfer):
    paths = {"weights_dir": "/w", "data_dir": "/d"}
    recipe = transfer.run_config("mobilenetv2-0.35", "breeds", "fine-tuning", **paths)
    whole = transfer.run_config("mobilenetv2-0.35", "breeds", "whole backbone", **paths)
    decay = transfer.run_config("mobilenetv2-0.35", "breeds", "layer decay", **paths)
    distilled = transfer.run_config("mobilenetv1-0.25", "breeds", "distilled", teacher="/runs/t", **paths)
    assert (recipe.fine_tune_layer(), recipe.layer_decay) == ("block_13_expand", None)
    assert (whole.fine_tune_layer(), whole.layer_decay) == ("Conv1", None)
    assert (decay.fine_tune_layer(), decay.layer_decay) == ("Conv1", 0.8)
    assert transfer.run_config("mobilenetv1-0.25", "breeds", "layer decay", **paths).fine_tune_layer() == "conv1"
    assert (distilled.teacher, distilled.model, distilled.distill_alpha) == ("/runs/t", "mobilenetv1", 0.5)
    assert recipe.teacher is None and whole.fine_tune_epochs == recipe.fine_tune_epochs > 0
    # Every row is a deterministic run, so two modes differ by their settings, not by run noise.
    assert all(config.deterministic for config in (recipe, whole, decay, distilled))


class _Result:
    def __init__(self, run_dir):
        self.run_dir, self.history = run_dir, [{}]
        self.metrics = {"accuracy": 0.9, "loss": 0.3, "examples": 60, "split": "test", "train_seconds": 1.0}


def test_a_distilled_row_trains_its_teacher_first_and_again_when_its_run_dir_is_gone(transfer, tmp_path,
                                                                                    monkeypatch):
    trained = []

    def fake_train(config, run_dir, resume, recipe):
        trained.append((os.path.basename(run_dir), config.teacher))
        os.makedirs(run_dir, exist_ok=True)
        return _Result(run_dir)

    monkeypatch.setattr(transfer, "train", fake_train)
    out, root = tmp_path / "out.json", tmp_path / "runs"
    argv = ["--backbones", "mobilenetv1-0.25,mobilenetv2-0.5", "--tasks", "breeds", "--modes", "distilled",
            "--out", str(out), "--run-root", str(root)]
    transfer.main(argv)
    teacher_dir = str(root / "mobilenetv2-0.5-breeds-fine-tuning-seed0")
    assert trained == [("mobilenetv2-0.5-breeds-fine-tuning-seed0", None),
                       ("mobilenetv1-0.25-breeds-distilled-seed0", teacher_dir)]
    assert sorted(json.loads(out.read_text())["runs"]) == ["mobilenetv1-0.25/breeds/distilled/seed0",
                                                           "mobilenetv2-0.5/breeds/fine-tuning/seed0"]
    shutil.rmtree(teacher_dir)
    transfer.main(argv)  # both rows kept: the student needs no teacher
    assert len(trained) == 2
    transfer.main([*argv, "--seeds", "1"])
    transfer.main([*argv, "--seeds", "0,1", "--modes", "distilled,scratch"])
    shutil.rmtree(root / "mobilenetv2-0.5-breeds-fine-tuning-seed1")
    transfer.main([*argv, "--seeds", "1", "--again"])
    assert [name for name, _ in trained[2:]] == [
        "mobilenetv2-0.5-breeds-fine-tuning-seed1", "mobilenetv1-0.25-breeds-distilled-seed1",
        "mobilenetv1-0.25-breeds-scratch-seed0", "mobilenetv2-0.5-breeds-scratch-seed0",
        "mobilenetv1-0.25-breeds-scratch-seed1", "mobilenetv2-0.5-breeds-scratch-seed1",
        "mobilenetv2-0.5-breeds-fine-tuning-seed1", "mobilenetv1-0.25-breeds-distilled-seed1"]


def test_the_loss_table_skips_rows_saved_without_a_loss(transfer):
    runs = {f"mobilenetv1-0.25/breeds/layer decay/seed{seed}": {**_run(0.9), "test_loss": loss}
            for seed, loss in enumerate([0.25, 0.2, 0.3])}
    runs["mobilenetv1-0.25/breeds/scratch/seed0"] = _run(1 / 3)
    row = next(line for line in transfer.table(runs, "test_loss").splitlines()
               if line.startswith("| mobilenetv1-0.25 | breeds |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2:] == ["-", "-", "-", "-", "0.250 (0.200-0.300, 3 seeds; 10 s)", "-"]
