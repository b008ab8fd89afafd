"""Distributed search on loopback: chief + 2 workers run every trial once, then all exit; dead
or stuck workers end the search within bounds instead of hanging it."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import keras_tuner as kt
import pandas as pd
import pytest

from tfresnet.tuning import distributed
from tfresnet.tuning.hypermodel import ConfigHyperModel
from tfresnet.tuning.tuners import make_tuner

from .conftest import cli_command, subprocess_env, trial_record


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped by its new parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.timeout(600)
def test_two_workers_on_loopback_run_every_trial_once_and_exit(tmp_path):
    run_dir = tmp_path / "search"
    command = cli_command(run_dir, "--workers", "2", "--timeout", "400", max_trials=4)
    chief = subprocess.run(command, check=False, capture_output=True, text=True, env=subprocess_env(),
                           timeout=500)
    logs = "".join(p.read_text()[-2000:] for p in (run_dir / "logs").glob("*.log"))
    assert chief.returncode == 0, chief.stdout[-3000:] + chief.stderr[-3000:] + logs

    frame = pd.read_csv(run_dir / "results.csv")
    assert list(frame["trial_id"]) == [0, 1, 2, 3] and set(frame["status"]) == {"COMPLETED"}
    ran_by = {trial_record(run_dir, str(i))["tuner_id"] for i in range(4)}
    assert ran_by <= {"tuner0", "tuner1"}  # trained by the workers; the chief only serves the oracle
    pids = json.loads((run_dir / "logs" / "workers.json").read_text())
    assert pids["port"] > 0 and sorted(pids["workers"]) == ["tuner0", "tuner1"]
    assert not any(alive(pid) for pid in pids["workers"].values())
    assert (run_dir / "best" / "model.keras").exists()


@pytest.fixture
def oracle(tiny_config, tmp_path):
    tuner = make_tuner("random", ConfigHyperModel(tiny_config()), str(tmp_path), max_trials=3,
                       objective=kt.Objective("val_accuracy", "max"), max_epochs=1)
    return tuner.oracle


def test_all_workers_dying_ends_the_search_with_their_logs(oracle, tmp_path):
    crash = [sys.executable, "-c", "import sys; print('worker crashed'); sys.exit(3)"]
    with pytest.raises(distributed.WorkersExitedError, match="(?s)All 2 workers exited.*worker crashed"):
        distributed.serve(oracle, address="127.0.0.1:0", workers=2, worker_command=crash,
                          log_dir=str(tmp_path / "logs"), timeout=120, poll_s=0.1)


def test_timeout_stops_the_search_and_its_workers(oracle, tmp_path):
    stuck = [sys.executable, "-c", "import time; time.sleep(600)"]
    with pytest.raises(distributed.SearchTimeoutError, match="within 2 s"):
        distributed.serve(oracle, address="127.0.0.1:0", workers=1, worker_command=stuck,
                          log_dir=str(tmp_path / "logs"), timeout=2, poll_s=0.1)
    pid = json.loads((tmp_path / "logs" / "workers.json").read_text())["workers"]["tuner0"]
    assert not alive(pid)


def test_a_dead_workers_trial_goes_to_another_worker(oracle):
    trial = oracle.create_trial("tuner0")
    assert oracle.release_tuner("tuner0") == trial.trial_id
    again = oracle.create_trial("tuner1")
    assert again.trial_id == trial.trial_id and again.hyperparameters.values == trial.hyperparameters.values
    assert oracle.release_tuner("tuner0") is None  # released once


def test_role_follows_keras_tuner_environment(monkeypatch):
    for name in (distributed.ENV_ORACLE_IP, distributed.ENV_ORACLE_PORT, distributed.ENV_TUNER_ID):
        monkeypatch.delenv(name, raising=False)
    assert distributed.role() == "single"
    monkeypatch.setenv(distributed.ENV_ORACLE_IP, "127.0.0.1")
    with pytest.raises(ValueError, match="KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID is not"):
        distributed.role()
    monkeypatch.setenv(distributed.ENV_ORACLE_PORT, "8000")
    monkeypatch.setenv(distributed.ENV_TUNER_ID, "chief")
    assert distributed.role() == "chief"
    monkeypatch.setenv(distributed.ENV_TUNER_ID, "tuner3")
    assert distributed.role() == "worker"


MIDDLE = """
import os, subprocess, sys, time
env = dict(os.environ)
env[{parent}] = str(os.getpid())
worker = subprocess.Popen([sys.executable, "-c", {worker!r}], env=env)
print(worker.pid, flush=True)
time.sleep(120)
"""
WORKER = "import time; from tfresnet.tuning.distributed import guard_worker; guard_worker(5); time.sleep(120)"


def test_worker_exits_when_its_chief_dies():
    chief = subprocess.Popen(
        [sys.executable, "-c", MIDDLE.format(parent=repr(distributed.ENV_PARENT_PID), worker=WORKER)],
        stdout=subprocess.PIPE, text=True, env=subprocess_env())
    worker = int(chief.stdout.readline())
    chief.kill()  # kill -9 of the chief
    chief.wait()
    deadline = time.monotonic() + 60
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(worker)
