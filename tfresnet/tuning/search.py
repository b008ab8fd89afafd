"""`tune`: one hyperparameter search over a recipe's config, from its space to its best model.

A search's run directory holds:

- ``tune.json``: the recipe's config, tuner and trial budget (a run directory says what it ran);
- ``trials/``: KerasTuner's project (``oracle.json``, ``trial_NN/trial.json`` and each trial's
  best-epoch checkpoint ``checkpoint.weights.h5``);
- ``results.csv`` and ``results.png``: one row per trial, and the search drawn;
- ``tensorboard/``: per-trial training curves with HParams (TensorBoard's HParams tab);
- ``best/``: the best trial's model, loaded from its best-epoch checkpoint (not retrained), as a
  training run directory (``model.keras``, ``class_names.json``, ``config.json``, ``metrics.json``
  with the test-split figures) that `tfresnet.export.export_run` exports;
- ``logs/``: the output of local workers (``--workers N``).

Running the same search again (same recipe, tuner and ``--run-dir``) continues it, after a
kill -9 too: finished trials are kept, the one that was running is run again, and the results
have each trial once.

Numbers are counted as the user reads them in the console: trials from 1, as KerasTuner's log
("Trial 1 Complete"), and epochs from 1, as Keras' fit log ("Epoch 1/3"). ``results.csv``'s
``trial`` column, its ``best_epoch`` column, ``best/metrics.json`` and the summary of
``tfresnet tune`` use the same numbers, and so does the log of a trial run again
(`kt_compat.number_trials_by_id`). KerasTuner's own ``trial_id`` (``"0"`` for trial 1)
is kept only as a name: of the folders ``trials/trial_ID`` and ``tensorboard/ID``, in the CSV's
``trial_id`` column, and in Hyperband's ``tuner/trial_id``. Hyperband's ``tuner/initial_epoch``
is Keras' ``initial_epoch``: the count of epochs already run, not an epoch number.

The best model's files are written through `tfresnet.runs.RunDir` into a new folder that then
replaces ``best/`` (`tfresnet.files.replacing_dir`): a kill or a full disk leaves the previous
best whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from collections.abc import Callable

import keras
import keras_tuner as kt
import pandas as pd

from tfresnet.console import progress_verbose
from tfresnet.files import replacing_dir
from tfresnet.runs import RunDir, new_run_dir
from tfresnet.training import report
from tfresnet.training.callbacks import monitor_mode
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.session import smoke_config
from tfresnet.tuning import distributed, kt_compat
from tfresnet.tuning.hypermodel import ConfigHyperModel
from tfresnet.tuning.results import best_epoch, format_table, plot_search, results_frame, write_hparams_config
from tfresnet.tuning.space import active_space, check_space_for_tuner
from tfresnet.tuning.tuners import PROJECT_NAME, TUNERS, make_tuner

__all__ = ["TuneResult", "tune", "keep_best", "new_search_dir", "SETTINGS_FILE", "RESULTS_FILE", "BEST_DIR"]

SETTINGS_FILE = "tune.json"
RESULTS_FILE = "results.csv"
BEST_DIR = "best"
# Config keys that may change between runs of one search: they change no trial's result.
_FREE_ON_RESUME = ("verbose", "export")


@dataclasses.dataclass
class TuneResult:
    """What `tune` returns.

    Attributes:
        run_dir: the search's run directory.
        role: ``single``, ``chief`` or ``worker`` (a worker returns no results).
        results: one row per trial (`tfresnet.tuning.results.results_frame`); empty for a worker.
        best: the best trial's figures (``trial``, ``trial_id``, the objective, ``best_epoch``,
            test ``accuracy``, ...), or None when no trial completed.
        best_dir: the best model's run directory, or None.
        error: why the search stopped early (failures in a row, a time limit, workers gone), or None.
        seconds: wall time of this call.
    """

    run_dir: str
    role: str
    results: pd.DataFrame
    best: dict | None = None
    best_dir: str | None = None
    error: str | None = None
    seconds: float = 0.0

    def table(self) -> str:
        """The results as a console table."""
        return format_table(self.results)


def new_search_dir(recipe: str, root: str = "runs") -> str:
    """A new search directory ``ROOT/<recipe>-tune-YYYYmmdd-HHMMSS`` (`tfresnet.runs.new_run_dir`)."""
    return new_run_dir(f"{recipe}-tune", root)


def _check_settings(run_dir: str, settings: dict, *, write: bool) -> None:
    """Refuses to continue a search in `run_dir` with another tuner or config; records this one."""
    search_dir = RunDir(run_dir)
    before = search_dir.read_json(SETTINGS_FILE, None)
    if before is not None:
        if before.get("tuner") != settings["tuner"]:
            raise ConfigError(
                f"{run_dir} holds a {before.get('tuner')} search; this command asks for "
                f"--tuner {settings['tuner']}. Continue it with --tuner {before.get('tuner')} or "
                f"choose another --run-dir.")
        old, new = before.get("config", {}), settings["config"]
        changed = sorted(k for k in set(old) | set(new)
                         if k not in _FREE_ON_RESUME and old.get(k) != new.get(k))
        if changed:
            details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
            raise ConfigError(
                f"{run_dir} holds a search with another config ({details}); continuing it would "
                f"mix trials of two searches. Choose another --run-dir.")
    if write:
        os.makedirs(run_dir, exist_ok=True)
        search_dir.write_json(SETTINGS_FILE, settings)


def _search_callbacks(config: TrainConfig, run_dir: str) -> list:
    if not config.tensorboard:
        return []
    # KerasTuner moves this callback's logs to tensorboard/TRIAL_ID/execution0 and adds HParams.
    return [keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"), write_graph=False, profile_batch=0)]


def _distribution_strategy(config: TrainConfig):
    if config.strategy is None:
        return None
    if config.strategy != "mirrored":
        raise ConfigError(
            f"strategy={config.strategy!r}: a search runs each trial on one machine; use "
            f"strategy='mirrored' (all local GPUs per trial) or --workers for parallel trials.")
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def keep_best(tuner, hypermodel: ConfigHyperModel, run_dir: str) -> tuple[dict | None, str | None]:
    """Loads the best trial's best-epoch checkpoint, evaluates it and saves it as a run directory.

    Nothing is retrained: the weights are those KerasTuner saved at the trial's best epoch, and
    their validation accuracy is measured again next to the score the search recorded.

    Returns:
        ``(metrics, best_dir)``, or ``(None, None)`` when no trial completed.
    """
    trials = [t for t in tuner.oracle.get_best_trials(1) if t.status == "COMPLETED"]
    if not trials:
        return None, None
    trial = trials[0]
    with warnings.catch_warnings():
        # The checkpoint also holds the trial's optimizer state, which serving does not need.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model = tuner.load_model(trial)
    config = hypermodel.trial_config(trial.hyperparameters)
    session = hypermodel.data(config)
    validation = report.evaluate(model, session.validation, session.data.num_classes)
    split, test = session.test_split, session.evaluate(model)
    objective = tuner.oracle.objective.name
    metrics = {
        "trial": kt_compat.trial_number(trial.trial_id),
        "trial_id": trial.trial_id,
        objective: float(trial.score),
        "best_epoch": best_epoch(trial),
        "hyperparameters": dict(trial.hyperparameters.values),
        "model": config.model,
        "data": config.data,
        "parameters": int(model.count_params()),
        "validation_accuracy": validation["accuracy"],
        "split": split,
        **{k: v for k, v in test.items() if k not in ("misclassified", "split", "model", "data")},
    }
    best_dir = os.path.join(run_dir, BEST_DIR)
    with replacing_dir(best_dir) as folder:  # a continued search may have a new best
        staged = RunDir(folder)
        # The model alone: no train-step augmentation or teacher, which safe mode could not load.
        from tfresnet.training.distill import inference_model

        staged.save_model(inference_model(model))
        staged.write_class_names(session.data.class_names)
        staged.write_config(config)
        staged.write_metrics(metrics)
    return metrics, best_dir


def tune(
    config: TrainConfig,
    run_dir: str | None = None,
    *,
    tuner: str = "random",
    max_trials: int = 10,
    recipe: str = "tune",
    workers: int = 0,
    worker_command: list[str] | None = None,
    timeout: float | None = None,
    rpc_timeout: float = 600.0,
    max_consecutive_failed_trials: int = 3,
    data_loader: Callable | None = None,
    clear_between_trials: bool = True,
    on_trial_end: Callable | None = None,
) -> TuneResult:
    """Runs (or continues) a search over `config.tune`, then keeps and evaluates the best model.

    The process' part comes from KerasTuner's environment (`tfresnet.tuning.distributed.role`):
    a worker only runs trials; a chief serves the oracle to workers (``workers`` of them started
    here, on 127.0.0.1); without that environment, ``workers=0`` searches in this process and
    ``workers > 0`` makes this process the chief of a local cluster.

    Args:
        config: the recipe's config; `config.tune` is the search space.
        run_dir: the search's directory; default ``runs/<recipe>-tune-<time>``. An existing
            search there is continued.
        tuner: a `tfresnet.tuning.tuners.TUNERS` name.
        max_trials: trials in all, counting those a continued search has already run.
        recipe: the recipe's name, for the default run directory.
        workers: local worker processes (distributed search on this machine).
        worker_command: the command a local worker runs; needed when `workers > 0`.
        timeout: seconds a distributed search may take before it stops (resumable).
        rpc_timeout: seconds a worker waits for the chief to answer.
        max_consecutive_failed_trials: failed trials in a row that stop the search.
        data_loader: ``loader(config) -> DatasetBundle`` instead of the trainer's `load_data`.
        clear_between_trials: release Keras' global state after each trial (keep True).
        on_trial_end: called with each ended KerasTuner `Trial` (single process and workers).

    Returns:
        A `TuneResult`. Its `error` says why a search stopped before its budget was spent.

    Raises:
        ConfigError: for a bad config or search space, or a run directory holding another search.
        RunDirInUseError: while another search process (not one of its workers) uses `run_dir`.
    """
    start = time.perf_counter()
    config.validate()
    if tuner not in TUNERS:
        raise ConfigError(f"Unknown tuner {tuner!r}; choose one of {', '.join(TUNERS)}.")
    check_space_for_tuner(config, tuner)
    if max_trials < 1:
        raise ConfigError(f"max_trials must be >= 1. Received max_trials={max_trials!r}")
    if config.fine_tune_epochs:
        raise ConfigError("A search tunes one training phase; set fine_tune_epochs=0 and fine-tune "
                          "the best trial with `tfresnet train`.")
    part = distributed.role()
    if part == "single" and workers:
        part = "chief"
    if part == "worker" and run_dir is None:
        raise ConfigError("A worker needs the chief's --run-dir (a folder they share).")
    run_dir = run_dir or new_search_dir(recipe)
    settings = {"recipe": recipe, "tuner": tuner, "max_trials": max_trials, "objective": config.monitor,
                "config": config.to_dict()}
    # One search process per run directory (its workers excepted): a second `tune` on it while
    # this one runs would otherwise be taken for a continuation and share its trials.
    with contextlib.nullcontext() if part == "worker" else RunDir(run_dir).lock():
        _check_settings(run_dir, settings, write=part != "worker")
        return _search(config, run_dir, part, start, tuner=tuner, max_trials=max_trials,
                       workers=workers, worker_command=worker_command, timeout=timeout,
                       rpc_timeout=rpc_timeout, max_consecutive_failed_trials=max_consecutive_failed_trials,
                       data_loader=data_loader, clear_between_trials=clear_between_trials,
                       on_trial_end=on_trial_end)


def _search(config: TrainConfig, run_dir: str, part: str, start: float, *, tuner: str, max_trials: int,
            workers: int, worker_command, timeout, rpc_timeout: float, max_consecutive_failed_trials: int,
            data_loader, clear_between_trials: bool, on_trial_end) -> TuneResult:
    """`tune` once its arguments are checked and its run directory is its own."""
    base = smoke_config(config)
    hypermodel = ConfigHyperModel(config, data_loader=data_loader)
    objective = kt.Objective(config.monitor, monitor_mode(config.monitor))
    search_tuner = make_tuner(
        tuner, hypermodel, run_dir, max_trials=max_trials, objective=objective, max_epochs=base.epochs,
        seed=config.seed, deterministic=config.deterministic,
        max_consecutive_failed_trials=max_consecutive_failed_trials,
        distribution_strategy=_distribution_strategy(config),
        clear_between_trials=clear_between_trials, on_trial_end=on_trial_end,
    )
    search_kwargs = {"verbose": progress_verbose(base.verbose), "callbacks": _search_callbacks(base, run_dir)}
    error = None
    # No precision policy is set here: each trial's build sets its own and restores the one
    # before (`ConfigHyperModel.build`, `session.precision_policy`), also when KerasTuner
    # rebuilds the best trial's model.
    with kt_compat.plain_display():
        if part == "worker":
            distributed.guard_worker(rpc_timeout)
            search_tuner.search(**search_kwargs)
            return TuneResult(run_dir, part, pd.DataFrame(), seconds=time.perf_counter() - start)
        search_tuner.save()  # a kill during the first trial leaves a search to continue
        if base.tensorboard:
            write_hparams_config(os.path.join(run_dir, "tensorboard"), search_tuner.oracle.get_space(),
                                 objective.name)
        if part == "chief":
            search_tuner.oracle.verbose = base.verbose  # `search()` would set it; a chief does not call it
            address = (f"{os.environ[distributed.ENV_ORACLE_IP]}:{os.environ[distributed.ENV_ORACLE_PORT]}"
                       if distributed.ENV_ORACLE_IP in os.environ else "127.0.0.1:0")
            try:
                distributed.serve(search_tuner.oracle, address=address, workers=workers,
                                  worker_command=worker_command, log_dir=os.path.join(run_dir, "logs"),
                                  timeout=timeout)
            except (distributed.SearchTimeoutError, distributed.WorkersExitedError) as err:
                error = str(err)
        else:
            hypermodel.data(base.validate())  # fails now, not in every trial, if data is missing
            search_tuner.search(**search_kwargs)
    error = error or search_tuner.oracle.stop_reason

    frame = results_frame(search_tuner.oracle, os.path.join(run_dir, PROJECT_NAME), list(active_space(config)))
    RunDir(run_dir).write_text(RESULTS_FILE, frame.to_csv(index=False))
    if not frame.empty:
        plot_search(frame, objective.name, active_space(config), os.path.join(run_dir, "results.png"),
                    direction=objective.direction)
    best, best_dir = keep_best(search_tuner, hypermodel, run_dir)
    keras.backend.clear_session()
    return TuneResult(run_dir, part, frame, best=best, best_dir=best_dir, error=error,
                      seconds=time.perf_counter() - start)
