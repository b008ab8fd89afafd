"""The one trainer every recipe runs: `model.fit` with the run directory around it.

A run directory holds the resolved `config.json`, `history.csv`, `metrics.json`, plots,
TensorBoard logs, `checkpoints/best.weights.h5`, the final `model.keras` (which takes raw 0-255
pixels: its input scaling is a layer inside it) and `class_names.json`. A run killed at any point,
kill -9 included, continues from its last epoch backup with `train(..., resume=True)`.

Training is in phases, each one `fit` call: ``train`` (the whole model, or only the new head when
`freeze_backbone` is set) and, for transfer learning, ``finetune`` (the top of the backbone at a
lower rate, after recompiling). A finished phase leaves its weights in `phases/`, so a resumed run
skips it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

import keras
import pandas as pd

from tfresnet.files import write_atomic
from tfresnet.training import multiworker, report, rundir
from tfresnet.training.config import TrainConfig
from tfresnet.training.determinism import seed_everything

# The session's building blocks, re-exported: callers and tests know them as the trainer's.
from tfresnet.training.session import (
    Session,
    build_model,
    check_strategy_backend,
    compile_model,
    load_data,
    one_hot_labels,
    precision_policy,
    smoke_config,
    steps_per_epoch_of,
    strategy_scope,
)

__all__ = ["RunResult", "train", "build_model", "load_data", "compile_model", "one_hot_labels",
           "steps_per_epoch_of", "smoke_config", "prepare_run_dir"]


@dataclasses.dataclass
class RunResult:
    """What `train` returns: where the outputs are and the test figures."""

    run_dir: str
    metrics: dict
    history: pd.DataFrame
    model: keras.Model
    class_names: list


def prepare_run_dir(run_dir: str | None, recipe: str, *, resume: bool) -> str:
    """Creates the run directory; refuses to overwrite a run that finished an epoch.

    A run that failed before finishing one (its config.json written, no history row, backup or
    phase file) is started again from scratch: nothing in it is worth keeping, and refusing
    would block the directory for good, since ``--resume`` takes no ``--set`` to fix it.
    """
    if run_dir is None:
        run_dir = rundir.new_run_dir(recipe)  # unique even for two launches in one second
    configured = os.path.exists(os.path.join(run_dir, "config.json"))
    if resume and not configured:
        raise FileNotFoundError(f"Nothing to resume in {run_dir}: it has no config.json.")
    if configured and not resume:
        if rundir.has_progress(run_dir):
            raise FileExistsError(
                f"{run_dir} already holds a run. Resume it with --resume {run_dir}, or choose "
                f"another --run-dir."
            )
        with contextlib.suppress(FileNotFoundError):  # a header that may name other columns
            os.remove(os.path.join(run_dir, "history.csv"))
    os.makedirs(run_dir, exist_ok=True)
    return run_dir


def train(
    config: TrainConfig,
    run_dir: str | None = None,
    *,
    resume: bool = False,
    recipe: str = "run",
    callbacks: list | None = None,
) -> RunResult:
    """Trains, evaluates and saves one run.

    Args:
        config: the run's config; validated before anything is loaded or built.
        run_dir: output directory; default ``runs/<recipe>-<timestamp>``.
        resume: continue the run in `run_dir` from its last backup.
        recipe: the recipe's name, for the default run directory.
        callbacks: extra Keras callbacks for every phase's `fit`, after the config's own (e.g.
            a benchmark's probe; one that sets ``model.stop_training`` ends the phase).

    Returns:
        A `RunResult`.

    Raises:
        ConfigError: for a bad config, before training.
        NaNLossError: when the loss becomes NaN; the last epoch backup is kept for --resume.
    """
    config = smoke_config(config).validate()
    check_strategy_backend(config)  # before a run directory is made
    if resume and not os.path.exists(os.path.join(run_dir or "", "config.json")):
        raise FileNotFoundError(f"Nothing to resume in {run_dir}: it has no config.json.")
    if run_dir is None and multiworker.writes_run_dir(config):
        run_dir = rundir.new_run_dir(recipe)  # unique even for two launches in one second
    # One writer per run directory: a second `train` (or `tune`) on it fails naming our pid.
    # A non-chief worker of a multi-worker run writes to a temporary folder instead.
    with multiworker.own_dir(config, run_dir, resume=resume) as own, rundir.lock_run_dir(own):
        run_dir = prepare_run_dir(own, recipe, resume=resume)
        write_atomic(os.path.join(run_dir, "config.json"), config.to_json())

        seed_everything(config.seed, deterministic=config.deterministic)
        # Building, compiling and fitting must all happen in the strategy's scope.
        with precision_policy(config), strategy_scope(config):
            return _train(config, run_dir, list(callbacks or []))


def _train(config, run_dir: str, extra_callbacks: list) -> RunResult:
    session = Session.open(config)
    session.data.write_report(os.path.join(run_dir, "data_report.json"))  # prints what was skipped
    model = session.build()

    history_path = os.path.join(run_dir, "history.csv")
    report.repair_history(history_path)
    start = time.perf_counter()
    epochs_run, seen = session.fit_all(model, run_dir, extra_callbacks=extra_callbacks)
    # Rows past the end are left by an attempt that a restarted phase did not repeat.
    history = report.deduplicate_history(history_path, end=epochs_run)
    train_seconds = time.perf_counter() - start
    with contextlib.suppress(OSError):  # each phase's backup is gone once it finished
        os.rmdir(os.path.join(run_dir, "backup"))

    best = os.path.join(run_dir, "checkpoints", "best.weights.h5")
    if os.path.exists(best) and not config.early_stopping:
        # EarlyStopping already restored its best; otherwise the checkpoint holds the best epoch.
        model.load_weights(best)
    metrics = session.evaluate(model)
    metrics["train_seconds"] = round(train_seconds, 2)
    metrics["examples_per_second"] = round(seen / train_seconds, 1) if seen else None
    metrics["epochs_run"] = epochs_run
    metrics["class_names"] = list(session.data.class_names)
    session.save(model, run_dir, history, metrics)
    return RunResult(run_dir=run_dir, metrics={k: v for k, v in metrics.items() if k != "misclassified"},
                     history=history, model=model, class_names=list(session.data.class_names))
