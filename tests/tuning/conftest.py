"""Shared pieces of the tuning tests: a tiny search config and the recipe's command line.

Every search here is smoke-sized (the MNIST ConvNet, one epoch of at most 3 batches of 16, 3
validation batches): the tests check what a search records and where, not how well it learns.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

import pytest

from tfresnet.training.config import TrainConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tune_mnist.py"
SPACE = {"lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"}, "dropout": [0.0, 0.25]}
# The recipe, shrunk: ConvNet only, smoke-sized trials, no export (one test exports).
CLI_SETS = ["--set", "smoke=true", "--set", "export=false", "--set", f"tune={json.dumps(SPACE)}"]


@pytest.fixture
def tiny_config():
    """``tiny_config(**changes)``: a smoke-sized ConvNet search config over `SPACE`."""

    def make(**changes) -> TrainConfig:
        values = dict(model="convnet", data="mnist-sample", smoke=True, jit_compile=False,
                      export=False, verbose=0, tune=SPACE)
        values.update(changes)
        return TrainConfig(**values)

    return make


def cli_command(run_dir, *extra: str, max_trials: int = 4) -> list[str]:
    """``python -m tfresnet tune recipes/tune_mnist.py`` with the smoke settings."""
    return [sys.executable, "-m", "tfresnet", "tune", str(RECIPE), "--max-trials", str(max_trials),
            "--run-dir", str(run_dir), *CLI_SETS, *extra]


def subprocess_env() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("KERASTUNER_ORACLE_IP", None)  # a search of its own, whatever the caller's environment
    return env


def trial_states(run_dir) -> dict[str, dict]:
    """trial id -> KerasTuner's trial.json, for the trials written so far."""
    states = {}
    for path in pathlib.Path(run_dir, "trials").glob("trial_*/trial.json"):
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        states[state["trial_id"]] = state
    return states


def trial_record(run_dir, trial_id: str) -> dict:
    """tfresnet's per-trial record (wall time, tuner id, finish time)."""
    return json.loads(pathlib.Path(run_dir, "trials", f"trial_{trial_id}", "tfresnet_trial.json").read_text())
