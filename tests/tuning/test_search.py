"""Smoke searches with every tuner: the results table, its files, and the best model kept as trained."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tfresnet.cli import main
from tfresnet.training.config import ConfigError
from tfresnet.tuning import TUNERS, tune
from tfresnet.tuning.search import SETTINGS_FILE

from .conftest import CLI_SETS, RECIPE, SPACE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_search(run_dir, *, trials: int, min_accuracy: float | None = None) -> pd.DataFrame:
    """What every finished search writes: one row per trial, the plot, and the best model.

    With `min_accuracy`, the best trial must also reach it, on validation and on test: for
    searches whose trials train long enough to learn.
    """
    frame = pd.read_csv(run_dir / "results.csv")
    assert list(frame["trial_id"]) == list(range(trials))
    assert set(frame["status"]) == {"COMPLETED"}
    assert {"trial_id", "status", "lr", "dropout", "val_accuracy", "best_epoch", "wall_seconds",
            "parameters", "reason"} <= set(frame.columns)
    assert frame["lr"].between(1e-4, 1e-2).all() and frame["dropout"].isin([0.0, 0.25]).all()
    assert frame["val_accuracy"].between(0, 1).all() and (frame["wall_seconds"] > 0).all()
    assert (frame["parameters"] == 34_826).all()  # keras.io's ConvNet: the registry model, not a copy
    assert (run_dir / "results.png").read_bytes()[:8] == PNG_MAGIC

    best = frame.loc[frame["val_accuracy"].idxmax()]
    metrics = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert metrics["val_accuracy"] == pytest.approx(best["val_accuracy"])
    # Loaded from the trial's best-epoch checkpoint, not retrained: it scores what the search recorded.
    assert metrics["validation_accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-6)
    assert metrics["split"] == "test" and metrics["examples"] > 0  # smoke runs score 3 batches
    if min_accuracy is not None:
        assert metrics["examples"] == 1_000  # all the sample's test digits
        assert best["val_accuracy"] >= min_accuracy and metrics["accuracy"] >= min_accuracy, (
            f"the best trial is too close to chance (0.1): val {best['val_accuracy']:.3f}, "
            f"test {metrics['accuracy']:.3f}; results:\n{frame}")
    config = json.loads((run_dir / "best" / "config.json").read_text())
    assert config["lr"] == pytest.approx(best["lr"]) and config["dropout"] == best["dropout"]
    assert config["tune"] == {}  # a plain training config, ready to train the winner longer
    assert json.loads((run_dir / "best" / "class_names.json").read_text()) == [str(d) for d in range(10)]
    assert (run_dir / "best" / "model.keras").exists()
    return frame


@pytest.mark.parametrize("tuner", ["bayesian", "grid", "hyperband"])
def test_smoke_search_per_tuner(tuner, tiny_config, tmp_path):
    space = dict(SPACE)
    if tuner == "grid":
        space["lr"] = [1e-3, 3e-3]  # a grid needs finite choices
    result = tune(tiny_config(tune=space, lr=1e-3), tmp_path, tuner=tuner, max_trials=3)
    assert result.error is None and result.role == "single"
    frame = check_search(tmp_path, trials=3)
    assert list(result.results["trial_id"].astype(int)) == list(frame["trial_id"])
    assert list(result.results["val_accuracy"]) == pytest.approx(list(frame["val_accuracy"]))
    if tuner == "grid":
        # The grid starts from the recipe as written, then walks the combinations once each.
        assert (frame.loc[0, "lr"], frame.loc[0, "dropout"]) == (1e-3, 0.0)
        assert not frame.duplicated(["lr", "dropout"]).any()
    if tuner == "hyperband":
        assert (frame["tuner/epochs"] == 1).all()  # smoke trials run one epoch; Hyperband obeys it


def test_cli_random_search_prints_table_writes_files_and_exports(tmp_path, capsys):
    run_dir = tmp_path / "search"
    args = ["tune", str(RECIPE), "--max-trials", "3", "--run-dir", str(run_dir), *CLI_SETS,
            "--set", "smoke=false", "--set", "epochs=1", "--set", "steps_per_epoch=25",
            "--set", "batch_size=32", "--set", "verbose=0", "--set", "jit_compile=false",
            "--set", "export=true"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "trial_id" in out and "val_accuracy" in out and "best trial" in out and "SavedModel" in out
    # 25 steps of 32 per trial: the best of 3 learning rates reached 0.735 (val and test) when
    # measured, against 0.1 for chance.
    check_search(run_dir, trials=3, min_accuracy=0.5)
    assert (run_dir / "best" / "export" / "saved_model" / "saved_model.pb").exists()
    settings = json.loads((run_dir / SETTINGS_FILE).read_text())
    assert settings["tuner"] == "random" and settings["config"]["tune"] == SPACE

    # TensorBoard: the HParams experiment at the root, one session per trial beside its curves.
    assert plugins_in(run_dir / "tensorboard", recursive=False) >= {"hparams"}
    for trial_id in range(3):
        assert plugins_in(run_dir / "tensorboard" / str(trial_id)) >= {"hparams"}
        assert list((run_dir / "tensorboard" / str(trial_id)).rglob("validation/*tfevents*"))

    # The same run directory with another tuner or config would mix two searches.
    assert main(["tune", str(RECIPE), "--tuner", "bayesian", "--run-dir", str(run_dir), *CLI_SETS]) == 2
    assert "holds a random search" in capsys.readouterr().err
    assert main([*args, "--set", "l2=0.001"]) == 2
    assert "l2: 0.0 -> 0.001" in capsys.readouterr().err


def plugins_in(folder, recursive: bool = True) -> set[str]:
    """Names of the TensorBoard plugins whose summaries the event files under `folder` hold."""
    import tensorflow as tf

    names = set()
    for path in folder.rglob("*tfevents*") if recursive else folder.glob("*tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                names.add(value.metadata.plugin_data.plugin_name)
    return names


def test_bad_search_settings_fail_before_any_trial(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="grid search needs a step"):
        tune(tiny_config(), tmp_path / "a", tuner="grid")
    with pytest.raises(ConfigError, match="Hyperband decides each trial's epochs"):
        tune(tiny_config(tune={**SPACE, "epochs": [1, 2]}), tmp_path / "b", tuner="hyperband")
    with pytest.raises(ConfigError, match="no search space"):
        tune(tiny_config(tune={}), tmp_path / "c")
    with pytest.raises(ConfigError, match="Unknown tuner 'annealing'"):
        tune(tiny_config(), tmp_path / "d", tuner="annealing")
    assert not (tmp_path / "a").exists()  # nothing written for a search that cannot start


def test_tuners_by_name():
    assert set(TUNERS) == {"random", "bayesian", "grid", "hyperband"}


# 2 trials of 2 epochs of 3 batches, shown as a user sees them (verbose=1): KerasTuner's log and
# Keras' per-epoch lines.
LOGGED = ["--set", "smoke=false", "--set", "epochs=2", "--set", "steps_per_epoch=3", "--set", "batch_size=16",
          "--set", "verbose=1", "--set", "jit_compile=false"]


def test_log_to_a_file_has_no_escape_codes_and_numbers_as_the_csv_and_summary(tmp_path):
    import re
    import subprocess

    from .conftest import cli_command, subprocess_env

    run_dir = tmp_path / "search"
    with open(tmp_path / "out.log", "wb") as out, open(tmp_path / "err.log", "wb") as err:
        code = subprocess.run(cli_command(run_dir, *LOGGED, max_trials=2), stdout=out, stderr=err,
                              env=subprocess_env(), timeout=300, check=False).returncode
    log, errors = (tmp_path / "out.log").read_bytes(), (tmp_path / "err.log").read_bytes()
    assert code == 0, errors[-3000:].decode(errors="replace")
    assert b"\x1b[" not in log and b"\x1b[" not in errors  # KerasTuner's "clear" wrote ESC[2K here
    text = log.decode()

    frame = pd.read_csv(run_dir / "results.csv")
    numbers = [str(n) for n in frame["trial"]]
    assert numbers == ["1", "2"]
    assert re.findall(r"Running Trial #(\d+)", text) == numbers
    assert re.findall(r"Trial (\d+) Complete", text) == numbers

    trial, epoch = re.search(r"best trial\s+(\d+) .*\nbest val_accuracy\s+\S+ \(epoch (\d+)\)", text).groups()
    best = frame.loc[frame["val_accuracy"].idxmax()]
    assert int(trial) == best["trial"] and int(epoch) == best["best_epoch"]
    metrics = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert (metrics["trial"], metrics["best_epoch"]) == (best["trial"], best["best_epoch"])
    # The best epoch is the one Keras' log shows the best score at: "Epoch E/2", then its line.
    block = text.split("Running Trial #")[int(trial)]
    logged = dict(re.findall(r"Epoch (\d+)/2\n.* val_accuracy: ([0-9.]+)", block))
    assert float(logged[epoch]) == pytest.approx(best["val_accuracy"], abs=5e-5)


def test_a_failed_write_of_the_best_model_leaves_the_previous_one_whole(tiny_config, tmp_path, monkeypatch):
    import errno

    from tfresnet.files import WriteError
    from tfresnet.runs import RunDir

    config = tiny_config()
    tune(config, tmp_path, max_trials=1)
    best = tmp_path / "best"
    before = {path.name: path.read_bytes() for path in best.iterdir()}

    def disk_full(self, metrics):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RunDir, "write_metrics", disk_full)
    # The same search again: no trial is left to run, and the best model is written anew.
    with pytest.raises(WriteError, match="could not write .*best: No space left on device"):
        tune(config, tmp_path, max_trials=1)
    assert {path.name: path.read_bytes() for path in best.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".partial")] == []
    assert RunDir(best).load_model().count_params() == 34_826
