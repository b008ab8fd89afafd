"""The one trainer every recipe runs: a `Session` inside a prepared, locked run directory.

A run directory (`tfresnet.runs.RunDir`) holds the resolved `config.json`, `history.csv`,
`metrics.json`, plots, TensorBoard logs, `checkpoints/best.weights.h5`, the final `model.keras`
(which takes raw 0-255 pixels: its input scaling is a layer inside it) and `class_names.json`.
A run killed at any point, kill -9 included, or stopped by a full disk, continues from its last
epoch backup with `train(..., resume=True)`; a finished run is reported, not trained again.

The flow is one way: `train` checks the config once, prepares and locks the directory, and hands
it to `Session.run`, which trains the phases, evaluates and saves. A run that fails before any
epoch is finished leaves no directory behind (when this call made it).
"""

from __future__ import annotations

import contextlib
import os
import sys

from tfresnet.files import WriteError, write_error
from tfresnet.runs import RunDir, new_run_dir
from tfresnet.training import multiworker
from tfresnet.training.callbacks import check_monitor
from tfresnet.training.config import TrainConfig
from tfresnet.training.determinism import seed_everything
from tfresnet.training.session import (
    RunResult,
    Session,
    check_strategy_backend,
    precision_policy,
    smoke_config,
    strategy_scope,
)

__all__ = ["train", "prepare_config", "prepare_run_dir"]


def prepare_config(config: TrainConfig) -> TrainConfig:
    """The config a run trains with: checked, once, before anything is made, then smoke-shrunk.

    Checked before shrinking, so that a bad value is refused in a smoke run too (``smoke``
    would replace ``epochs=-2`` by 1); the shrunk values are valid by construction.

    Raises:
        ConfigError: for a bad value, an unknown monitor or a strategy the backend lacks.
    """
    config = smoke_config(config.validate())
    check_monitor(config.monitor)  # a metric the trainer does not compute fails now
    check_strategy_backend(config)
    return config


def prepare_run_dir(run_dir: str, recipe: str, *, resume: bool) -> str:
    """Creates the run directory; refuses to overwrite a run that finished an epoch.

    A run that failed before finishing one (its config.json written, no history row, backup or
    phase file) is started again from scratch: nothing in it is worth keeping, and refusing
    would block the directory for good, since ``--resume`` takes no ``--set`` to fix it.
    """
    run = RunDir(run_dir)
    if resume and not run.is_configured():
        raise FileNotFoundError(f"Nothing to resume in {run_dir}: it has no config.json.")
    if run.is_configured() and not resume:
        if run.has_progress():
            raise FileExistsError(
                f"{run_dir} already holds a run. Resume it with --resume {run_dir}, or choose "
                f"another --run-dir."
            )
        with contextlib.suppress(FileNotFoundError):  # a header that may name other columns
            os.remove(run.file(RunDir.HISTORY))
    os.makedirs(run_dir, exist_ok=True)
    return run_dir


def train(
    config: TrainConfig,
    run_dir: str | None = None,
    *,
    resume: bool = False,
    recipe: str | None = None,
    callbacks: list | None = None,
) -> RunResult:
    """Trains, evaluates and saves one run.

    Args:
        config: the run's config; checked before anything is loaded or built.
        run_dir: output directory; default ``runs/<recipe>-<timestamp>``.
        resume: continue the run in `run_dir` from its last backup; a finished run is read
            back and reported, and nothing in it is rewritten.
        recipe: the recipe's name, for the default run directory and the run's metrics (on
            resume, the name the run was started with).
        callbacks: extra Keras callbacks for every phase's `fit`, after the config's own (e.g.
            a benchmark's probe; one that sets ``model.stop_training`` ends the phase).

    Returns:
        A `RunResult`.

    Raises:
        ConfigError: for a bad config, before training.
        NaNLossError: when the loss becomes NaN; the last epoch backup is kept for --resume.
        WriteError: when a file could not be written (disk full); the run's files stay intact.
    """
    config = prepare_config(config)
    if resume:
        run = RunDir(run_dir or "")
        recipe = recipe or (run.metrics or {}).get("recipe") or _started_as(run)
        if run.is_finished():
            print(f"{run.path} is a finished run; nothing to resume, nothing rewritten.", file=sys.stderr)
            return RunResult.of_finished(run)
    recipe = recipe or "run"
    made = run_dir is None or not os.path.exists(run_dir)
    if run_dir is None and multiworker.writes_run_dir(config):
        run_dir = new_run_dir(recipe)  # unique even for two launches in one second
    # One writer per run directory: a second `train` (or `tune`) on it fails naming our pid.
    # A non-chief worker of a multi-worker run writes to a temporary folder instead.
    with multiworker.own_dir(config, run_dir, resume=resume) as own, RunDir(own).lock():
        run = RunDir(prepare_run_dir(own, recipe, resume=resume))
        try:
            if not resume:
                run.write_config(config)
                run.write_json(RunDir.STARTED, {"recipe": recipe})
            seed_everything(config.seed, deterministic=config.deterministic)
            # Building, compiling and fitting must all happen in the strategy's scope.
            with precision_policy(config), strategy_scope(config):
                return Session.open(config).run(run, recipe=recipe, extra_callbacks=list(callbacks or []))
        except BaseException as err:
            started = run.has_progress()
            if made and own == run_dir and not started:
                run.remove()  # a failed start: nothing in it to resume
            if isinstance(err, OSError) and (failure := write_error(err)) is not None:
                then = f"continue with --resume {run.path}" if started else "start it again"
                raise WriteError(failure.errno, f"{failure}. The run's files are intact: free some space, "
                                                f"then {then}.") from err
            raise


def _started_as(run: RunDir) -> str:
    """The recipe name a run was started with, or its folder's name for runs older than the record."""
    return (run.read_json(RunDir.STARTED, None) or {}).get("recipe") or os.path.basename(os.path.normpath(run.path))
