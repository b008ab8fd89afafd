"""The `reproduce` suite's machinery, smoke-sized: rung 1 runs, is saved and tabled beside the book."""

import dataclasses
import json
import time
import types

import pytest

from tfresnet.bench import reproduce
from tfresnet.bench.cli import main


def test_rung1_smoke_saves_json_and_prints_the_table(tmp_path, capsys):
    assert main(["--suite", "reproduce", "--rungs", "1", "--seeds", "2", "--smoke",
                 "--out-dir", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "reproduce.json").read_text())
    assert saved["benchmark"] == "reproduce" and saved["items"] == ["1"]
    assert [(r["item"], r["seed"], r["book"]) for r in saved["runs"]] == [("1", 0, 97.8), ("1", 1, 97.8)]
    assert all(0 <= r["ours"] <= 100 and r["wall_seconds"] > 0 for r in saved["runs"])
    out = capsys.readouterr().out
    assert "| rung | settings | book % | ours % (mean +- sd) | diff (points) | wall time |" in out
    assert "| 1 | batch 10, eta 0.1 (book) | 97.80 |" in out and "(n=2)" in out


def test_suite_runs_in_pieces_keeping_earlier_rows_and_resuming_run_dirs(tmp_path, capsys):
    """A ladder is run over several invocations: each adds its rows, a left run dir is resumed."""
    args = ["--suite", "reproduce", "--smoke", "--out-dir", str(tmp_path / "out"),
            "--run-root", str(tmp_path / "runs")]
    assert main([*args, "--rungs", "1"]) == 0
    first = json.loads((tmp_path / "out" / "reproduce.json").read_text())["runs"][0]["wall_seconds"]
    assert main([*args, "--rungs", "1", "--batch-size", "40"]) == 0  # eta 0.4: linear scaling
    # Again at the book's batch: the finished run dir is taken as it is, not refused or retrained,
    # and its wall time is the training's, not the check's.
    assert main([*args, "--rungs", "1"]) == 0
    saved = json.loads((tmp_path / "out" / "reproduce.json").read_text())
    assert [(r["item"], r["batch_size"], r["lr"]) for r in saved["runs"]] == [("1", 40, 0.4), ("1", 10, 0.1)]
    assert saved["runs"][1]["wall_seconds"] == first > 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["rung1-seed0", "rung1-seed0-batch40"]
    out = capsys.readouterr().out
    assert "| 1 | batch 40, eta 0.4 |" in out and "| 1 | batch 10, eta 0.1 (book) |" in out


def test_summary_mean_sd_and_difference():
    runs = [{"item": "4", "book": 99.23, "ours": v, "wall_seconds": 10.0} for v in (99.0, 99.2)]
    [row] = reproduce.summarise(runs)
    assert row["ours"] == "99.10 +- 0.14 (n=2)" and row["diff"] == "-0.13" and row["wall"] == "20 s"


def test_a_seed_of_unknown_wall_time_makes_its_rows_time_unknown_not_smaller():
    runs = [{"item": "4", "book": 99.23, "ours": 99.0, "wall_seconds": 10.0},
            {"item": "4", "book": 99.23, "ours": 99.2, "wall_seconds": None},
            {"item": "5", "book": 99.38, "ours": 99.4, "wall_seconds": 30.0}]
    assert [row["wall"] for row in reproduce.summarise(runs)] == ["-", "30 s"]


def test_a_finished_run_that_kept_no_wall_file_reports_an_unknown_time(tmp_path, capsys):
    args = ["--suite", "reproduce", "--smoke", "--out-dir", str(tmp_path / "out"),
            "--run-root", str(tmp_path / "runs"), "--rungs", "1"]
    assert main(args) == 0
    (tmp_path / "runs" / "rung1-seed0" / reproduce.WALL_FILE).unlink()  # finished by a tool that kept none
    assert main(args) == 0
    [row] = json.loads((tmp_path / "out" / "reproduce.json").read_text())["runs"]
    assert row["wall_seconds"] is None and row["ours"] > 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 1 | batch 10")][-1:]
    assert line.endswith("| - |")


def test_unknown_rung_fails_before_training(capsys):
    assert main(["--suite", "reproduce", "--rungs", "1,9", "--smoke"]) == 2
    assert "ch5" in capsys.readouterr().err
    with pytest.raises(ValueError, match="degradation"):
        reproduce.parse_rungs("8")


def test_rows_another_suite_saves_meanwhile_are_kept(tmp_path, monkeypatch):
    """Two suites (ch5 beside a rung) may share one results file: neither overwrites the other."""
    out = tmp_path / "reproduce.json"
    other = {"item": "ch5 30x1", "seed": 0, "batch_size": 10, "book": 96.48, "ours": 96.5, "wall_seconds": 1.0}

    def fake_rung(rung, seed, run_root, **options):
        # The other suite saves its row while this one trains.
        reproduce.write_result(str(out), "reproduce", {"smoke": True, "runs": [other], "gradient_norms": None})
        return {"item": str(rung), "seed": seed, "batch_size": 10, "book": 97.8, "ours": 97.7, "wall_seconds": 2.0}

    monkeypatch.setattr(reproduce, "_run_rung", fake_rung)
    reproduce.run(rungs="1", smoke=True, out_path=str(out), run_root=str(tmp_path / "runs"))
    saved = json.loads(out.read_text())
    assert sorted(r["item"] for r in saved["runs"]) == ["1", "ch5 30x1"]


@pytest.mark.slow
def test_ch5_and_degradation_items_run_smoke_sized(tmp_path, capsys):
    """The suite's other paths: four ch5 depths and their gradient norms, and the degradation
    curves of four networks, drawn side by side. (Rung 7's vote trains five rung 6 networks; its
    path is `test_rung7_votes_rung6_runs_already_finished_without_training_them_again`, with two.)"""
    runs = tmp_path / "runs"
    assert main(["--suite", "reproduce", "--rungs", "ch5,degradation-cpu", "--smoke",
                 "--out-dir", str(tmp_path), "--run-root", str(runs)]) == 0
    saved = json.loads((tmp_path / "reproduce.json").read_text())
    items = [r["item"] for r in saved["runs"]]
    assert items == [*(f"ch5 30x{k}" for k in (1, 2, 3, 4)),
                     *(f"degradation-cpu {m}" for m in ("plain20", "plain56", "resnet20", "resnet56"))]
    norms = saved["gradient_norms"]
    for key in ("ours", "ours_softmax"):
        assert len(norms[key]) == 4
        assert norms[key][-1] > 10 * norms[key][0]  # the gradient vanishes towards the input
    assert norms["ours"][0] > norms["ours_softmax"][0]  # sigmoid outputs pass back more
    # Real digits (the shipped sample) through the book's network: each layer within 3x of the book.
    assert all(b / 3 < o < 3 * b for b, o in zip(norms["book"], norms["ours"]))
    curves = [r for r in saved["runs"] if r["item"].startswith("degradation")]
    assert all(len(r["train_error"]) == 1 and r["budget"] == "cpu" for r in curves)  # smoke: one epoch
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert figures == ["reproduce_degradation-cpu.png", "reproduce_gradients.png"]
    assert "last / first" in capsys.readouterr().out


def test_each_degradation_network_is_saved_as_it_finishes(tmp_path, monkeypatch):
    """Four networks take hours at the paper's budget: a suite killed in the third keeps two rows."""
    out = tmp_path / "reproduce.json"
    trained = []

    def fake_train(config, run_root, label):
        if len(trained) == 2:
            raise KeyboardInterrupt  # stands in for the kill
        trained.append(label)
        history = {"accuracy": [0.9], "val_accuracy": [0.8]}
        return types.SimpleNamespace(history=history, metrics={"accuracy": 0.85}), 1.0

    monkeypatch.setattr(reproduce, "_train", fake_train)
    with pytest.raises(KeyboardInterrupt):
        reproduce.run(rungs="degradation-cpu-augmented", smoke=True, out_path=str(out),
                      run_root=str(tmp_path / "runs"))
    saved = json.loads(out.read_text())
    assert [r["item"] for r in saved["runs"]] == [f"degradation-cpu-augmented {m}" for m in ("plain20", "plain56")]
    assert saved["runs"][0]["train_error"] == [pytest.approx(0.1)]


def test_rung7_votes_rung6_runs_already_finished_without_training_them_again(tmp_path, monkeypatch):
    monkeypatch.setitem(reproduce.nielsen.RUNGS, 7, dataclasses.replace(reproduce.nielsen.RUNGS[7], votes=2))
    options = {"data_dir": None, "smoke": True}
    rung6 = [reproduce._run_rung(6, seed, str(tmp_path), **options) for seed in (0, 1)]
    history = {p: p.read_bytes() for p in tmp_path.glob("rung6-seed*/history.csv")}
    vote = reproduce._run_rung(7, 0, str(tmp_path), **options)
    assert {p: p.read_bytes() for p in tmp_path.glob("rung6-seed*/history.csv")} == history  # no new epoch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rung6-seed0", "rung6-seed1"]
    assert [v["ours"] for v in vote["voters"]] == pytest.approx([r["ours"] for r in rung6])
    # The trainings' time, not a reload's (each row is rounded to 0.1 s, hence the tolerance).
    assert vote["wall_seconds"] == pytest.approx(sum(r["wall_seconds"] for r in rung6), abs=0.11)


def test_ch5_rows_of_each_output_layer_are_kept_and_tabled_apart():
    row = {"item": "ch5 30x1", "seed": 0, "batch_size": 10, "lr": 0.1, "book": 96.48, "wall_seconds": 1.0}
    runs = [{**row, "ours": 96.9}, {**row, "ours": 96.6, "output": "sigmoid"}]  # the first: saved before outputs
    assert reproduce._key(runs[0]) != reproduce._key(runs[1])
    table = reproduce.summarise(runs)
    assert [(r["settings"], r["diff"]) for r in table] == [
        ("batch 10, eta 0.1 (book), softmax outputs", "+0.42"), ("batch 10, eta 0.1 (book), sigmoid outputs", "+0.12")]


def test_a_killed_run_keeps_its_wall_time_up_to_its_last_epoch(tmp_path, monkeypatch):
    """Rung 6 takes ~40 min a network and is often resumed: the time of an attempt killed after
    some epochs counts, as the epochs it trained are not trained again."""
    import keras

    from tfresnet.training import trainer

    config = reproduce._prepare(reproduce.nielsen.rung_config(1), seed=0, data_dir=None, smoke=True)
    # Smoke-sized by hand: smoke mode itself trains one epoch.
    config = dataclasses.replace(config, smoke=False, epochs=3, steps_per_epoch=2, batch_size=16, verbose=0)
    real_train = trainer.train

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                time.sleep(0.5)  # so the killed attempt's time is measurably there
                raise KeyboardInterrupt  # stands in for the kill, after the second epoch's backup

    def killed_train(*args, callbacks=(), **kwargs):
        return real_train(*args, callbacks=[*callbacks, Kill()], **kwargs)

    monkeypatch.setattr(trainer, "train", killed_train)
    with pytest.raises(KeyboardInterrupt):
        reproduce._train(config, str(tmp_path), "rung1-seed0")
    wall = tmp_path / "rung1-seed0" / reproduce.WALL_FILE
    killed = json.loads(wall.read_text())["seconds"]
    assert killed > 0  # before: nothing was written until the run finished
    monkeypatch.setattr(trainer, "train", real_train)
    result, seconds = reproduce._train(config, str(tmp_path), "rung1-seed0")
    assert len(result.history["accuracy"]) == 3  # resumed: the third epoch trained, the first two kept
    assert seconds > killed and json.loads(wall.read_text())["seconds"] == seconds


def test_saving_waits_while_another_suite_holds_the_results_lock(tmp_path):
    """Two suites share one results file: the second waits for the first's save, never fails."""
    import threading

    from tfresnet.runs import lock_dir

    out = tmp_path / "reproduce.json"
    held = lock_dir(str(tmp_path), lock_file="reproduce.json.lock")
    held.__enter__()
    threading.Timer(0.3, held.__exit__, (None, None, None)).start()
    start = time.monotonic()
    with reproduce._locked(str(out)):
        waited = time.monotonic() - start
    assert waited >= 0.25
