"""Resume: the same command after a kill -9 finishes the search; no trial is lost, re-run or doubled."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import keras_tuner as kt
import pandas as pd
import pytest

from tfresnet.tuning import kt_compat
from tfresnet.tuning.hypermodel import ConfigHyperModel
from tfresnet.tuning.tuners import make_tuner

from .conftest import cli_command, subprocess_env, trial_record, trial_states


@pytest.mark.timeout(600)
def test_kill_9_then_same_command_finishes_the_search(tmp_path):
    run_dir = tmp_path / "search"
    command = cli_command(run_dir, max_trials=4)
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115 (closed below, after the kill)
    first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env())
    deadline = time.monotonic() + 300
    while not any(s["status"] == "COMPLETED" for s in trial_states(run_dir).values()):
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    log.close()
    finished = {i: trial_record(run_dir, i) for i, s in trial_states(run_dir).items()
                if s["status"] in ("COMPLETED", "FAILED")}
    assert 1 <= len(finished) < 4, "the kill should land mid-search"

    second = subprocess.run(command, check=False, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Reloading Tuner" in second.stdout

    frame = pd.read_csv(run_dir / "results.csv")
    assert list(frame["trial_id"]) == [0, 1, 2, 3]  # as many as asked for, each once
    assert set(frame["status"]) == {"COMPLETED"}
    assert sorted(trial_states(run_dir)) == ["0", "1", "2", "3"]
    for trial_id, record in finished.items():
        assert trial_record(run_dir, trial_id) == record  # finished before the kill: not re-run


def test_reload_repairs_what_a_kill_between_two_writes_leaves(tiny_config, tmp_path):
    def new_tuner():
        return make_tuner("random", ConfigHyperModel(tiny_config()), str(tmp_path), max_trials=3,
                          objective=kt.Objective("val_accuracy", "max"), max_epochs=1)

    tuner = new_tuner()
    trial = tuner.oracle.create_trial("tuner0")  # trial 0 handed out, then the process dies
    assert trial.trial_id == "0"
    trials = tmp_path / "trials"
    # Killed after trial 0 ended in its trial.json but before oracle.json was rewritten ...
    state = json.loads((trials / "trial_0" / "trial.json").read_text())
    state.update(status="COMPLETED", score=0.5)
    (trials / "trial_0" / "trial.json").write_text(json.dumps(state))
    # ... and a trial.json written for a trial that was never handed out.
    (trials / "trial_1").mkdir()
    (trials / "trial_1" / "trial.json").write_text(json.dumps({**state, "trial_id": "1", "status": "RUNNING"}))

    oracle = new_tuner().oracle
    assert sorted(oracle.trials) == ["0"] and not (trials / "trial_1").exists()
    assert oracle.end_order == ["0"] and kt_compat.retry_queue(oracle) == []  # finished: not run again
    assert oracle.create_trial("tuner0").trial_id == "1"


def test_reload_runs_the_interrupted_trial_again_once(tiny_config, tmp_path):
    def new_tuner():
        return make_tuner("random", ConfigHyperModel(tiny_config()), str(tmp_path), max_trials=3,
                          objective=kt.Objective("val_accuracy", "max"), max_epochs=1)

    first = new_tuner().oracle.create_trial("tuner0")
    oracle = new_tuner().oracle
    again = oracle.create_trial("tuner0")
    assert again.trial_id == first.trial_id and again.hyperparameters.values == first.hyperparameters.values
    assert oracle.create_trial("tuner1").trial_id == "1"
