"""`benchmarks/transfer.py`'s bookkeeping: rows per seed, files saved before seeds, the table over seeds."""

import importlib.util
import json
import pathlib

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
    assert cells[2:] == ["-", "96.7% (95.0%-98.3%, 3 seeds; 20 s)", "33.3% (16 s, 5 ep)"]


def test_bad_seeds_are_refused_before_anything_trains(transfer, tmp_path, capsys):
    with pytest.raises(SystemExit):
        transfer.main(["--seeds", "0,x", "--out", str(tmp_path / "out.json")])
    assert "--seeds takes comma-separated integers" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
