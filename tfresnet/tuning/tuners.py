"""KerasTuner's tuners by name, made resumable after kill -9 and flat in memory across trials.

`TUNERS` maps a name to KerasTuner's oracle and tuner classes and to how `--max-trials` and the
config's `epochs` become the oracle's arguments. `make_tuner` builds one over a run directory
(KerasTuner's ``directory=RUN_DIR, project_name="trials"``) with ``overwrite=False``, so the same
command run again reloads the search instead of starting it anew.

What this module adds to KerasTuner 1.4, and why:

- **Atomic state files.** KerasTuner writes ``oracle.json`` and each ``trial.json`` in place; a
  kill while writing leaves a file that cannot be reloaded. Here each is written to a temporary
  name and renamed into place.
- **Repair after a kill.** KerasTuner's `Oracle.reload` re-queues the trials that were running.
  A kill can also land between two of its writes: after a trial's ``trial.json`` but before
  ``oracle.json`` (the trial was never handed out: it is dropped, not counted against
  `max_trials`), or after a finished trial's ``trial.json`` but before ``oracle.json`` (it is
  finished: it is not re-run).
- **Consecutive failures stop the search cleanly.** KerasTuner raises from inside its locked
  `end_trial`, which leaves the lock held (a distributed chief then hangs) and the trial unsaved.
  Here the oracle records why it stops and hands out ``STOPPED`` trials instead.
- **Memory.** `keras.backend.clear_session()` and `gc.collect()` after every trial, not only
  before the next build, so nothing of a finished trial outlives it (the RAM-growth issue).
- **Workers back off** for a second when the oracle answers ``IDLE`` (KerasTuner re-asks at
  once, in a loop that takes a core away from the trials still running).
- **A per-trial record** ``trial_dir/tfresnet_trial.json`` (wall time, tuner id, parameters) for
  the results table; the trial's score and hyperparameters stay in KerasTuner's ``trial.json``.

The KerasTuner internals this needs (the oracle's files, retry queue and lock) are reached through
`tfresnet.tuning.kt_compat`; the private hooks overridden here are listed there.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import time
from collections.abc import Callable

import keras
import keras_tuner as kt

from tfresnet import tf_compat
from tfresnet.files import write_json_atomic
from tfresnet.training.determinism import seed_everything, trial_seed
from tfresnet.tuning import kt_compat

__all__ = ["TUNERS", "TunerSpec", "make_tuner", "PROJECT_NAME", "TRIAL_RECORD"]

PROJECT_NAME = "trials"  # KerasTuner's project folder inside the run directory
TRIAL_RECORD = "tfresnet_trial.json"
_IDLE_BACKOFF_S = 1.0

Status = kt.engine.trial.TrialStatus


class ResumableOracle:
    """Mixed into a KerasTuner oracle class (see the module docstring for what it changes)."""

    stop_reason: str | None = None

    # --- atomic state --------------------------------------------------------------------------
    def save(self):
        write_json_atomic(kt_compat.oracle_file(self), self.get_state())

    # A private hook (`kt_compat.OVERRIDDEN_HOOKS`): every write of a trial's state goes through it.
    def _save_trial(self, trial):
        write_json_atomic(os.path.join(kt_compat.trial_dir(self, trial.trial_id), "trial.json"),
                          trial.get_state())

    # --- after a kill --------------------------------------------------------------------------
    def reload(self):
        super().reload()
        self._repair_after_kill()

    def _repair_after_kill(self) -> None:
        started = set(self.start_order)
        for trial_id in [t for t in self.trials if t not in started]:
            # Written just before a kill, never handed out: as if it had not been created.
            del self.trials[trial_id]
            shutil.rmtree(kt_compat.trial_dir(self, trial_id), ignore_errors=True)
        queue = []
        for trial_id in kt_compat.retry_queue(self):
            status = self.trials[trial_id].status
            if status in (Status.COMPLETED, Status.FAILED):
                # Its end was saved in trial.json, the kill came before oracle.json: finished.
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
            elif trial_id not in queue:
                queue.append(trial_id)
        for trial_id, trial in self.trials.items():
            if trial.status == Status.RUNNING and trial_id not in queue and trial_id not in self.end_order:
                queue.append(trial_id)
        kt_compat.set_retry_queue(self, queue)

    # --- failures ------------------------------------------------------------------------------
    # A private hook (`kt_compat.OVERRIDDEN_HOOKS`), called inside the locked `end_trial`.
    def _check_consecutive_failures(self):
        try:
            super()._check_consecutive_failures()
        except RuntimeError as err:
            self.stop_reason = str(err).splitlines()[0]

    @kt.synchronized
    def create_trial(self, tuner_id):
        if self.stop_reason and tuner_id not in self.ongoing_trials:
            self.tuner_ids.discard(tuner_id)
            return kt.engine.trial.Trial(self.get_space(), status=Status.STOPPED)
        return super().create_trial(tuner_id)

    # --- distributed ---------------------------------------------------------------------------
    # Called by the chief's watch loop. Not `@synchronized`: that lock stays held after an
    # exception in any oracle call, and the loop that enforces the time limits must not hang on it.
    def release_tuner(self, tuner_id: str, *, lock_timeout: float = 60.0) -> str | None:
        """Forgets a worker that exited: the trial it was running goes back to the queue.

        Returns:
            The id of the re-queued trial, or None.

        Raises:
            TimeoutError: if the oracle stays locked for `lock_timeout` seconds.
        """
        lock = kt_compat.oracle_lock(self)
        if not lock.acquire(timeout=lock_timeout):
            raise TimeoutError(f"The oracle stayed locked for {lock_timeout:g} s.")
        try:
            trial = self.ongoing_trials.pop(tuner_id, None)
            self.tuner_ids.discard(tuner_id)
            if trial is None:
                return None
            queue = kt_compat.retry_queue(self)
            if trial.trial_id not in queue:
                queue.append(trial.trial_id)
            self.save()
            return trial.trial_id
        finally:
            lock.release()

    def finished(self) -> bool:
        """True once no trial runs and every tuner that asked for one has been told to stop."""
        return not self.ongoing_trials and not self.tuner_ids


_RESUMABLE_ORACLES: dict[type, type] = {}


def resumable(oracle_class: type) -> type:
    """The subclass of a KerasTuner oracle class with `ResumableOracle` mixed in."""
    if oracle_class not in _RESUMABLE_ORACLES:
        _RESUMABLE_ORACLES[oracle_class] = type(
            f"Resumable{oracle_class.__name__}", (ResumableOracle, oracle_class), {})
    return _RESUMABLE_ORACLES[oracle_class]


class _SearchTuner:
    """Mixed into a KerasTuner tuner class: bookkeeping per trial and memory release.

    The oracle is given, not built by the KerasTuner tuner class's own ``__init__``, so that
    it is the resumable one; those ``__init__``s do nothing else.
    """

    def __init__(self, oracle, hypermodel, *, clear_between_trials: bool = True,
                 on_trial_end: Callable | None = None, seed: int = 0, deterministic: bool = False,
                 **kwargs):
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.clear_between_trials = clear_between_trials
        self.search_seed = seed
        self.deterministic = deterministic
        self.trial_end_hook = on_trial_end
        self._trial_started = None
        if kt_compat.is_worker(self):
            create_trial = self.oracle.create_trial

            def create_trial_with_backoff(tuner_id):
                trial = create_trial(tuner_id)
                if trial.status == Status.IDLE:
                    time.sleep(_IDLE_BACKOFF_S)
                return trial

            self.oracle.create_trial = create_trial_with_backoff

    # Private hooks (`kt_compat.OVERRIDDEN_HOOKS`).
    def _populate_initial_space(self):
        # KerasTuner builds the model (and so loads data) to discover the space; ours is declared.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    # Whether there is a search to continue is the oracle's file: KerasTuner checks a per-role
    # tuner file that a kill during the first trial leaves unwritten and that a single process
    # ("tuner0") and a distributed chief ("chief") name differently.
    def _get_tuner_fname(self):
        if kt_compat.is_worker(self):
            return super()._get_tuner_fname()
        return kt_compat.oracle_file(self.oracle)

    def save(self):
        if kt_compat.is_worker(self):
            write_json_atomic(self._get_tuner_fname(), self.get_state())
        else:
            self.oracle.save()

    def reload(self):
        if kt_compat.is_worker(self):
            super().reload()  # a worker's `BaseTuner.reload` reads only its own tuner file
        else:
            self.oracle.reload()

    def on_trial_begin(self, trial):
        # Each trial's initial weights and dropout from (search seed, trial id): the same trial
        # trains the same in any run of the search, on any worker, whatever ran before it.
        seed_everything(trial_seed(self.search_seed, trial.trial_id), deterministic=self.deterministic)
        self._trial_started = time.time()
        self._gradients_before = tf_compat.custom_gradient_names()
        self.hypermodel.last_built = {}
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        record = {
            "wall_seconds": round(time.time() - (self._trial_started or time.time()), 3),
            "tuner_id": self.tuner_id,
            "finished_at": time.time(),
            **getattr(self.hypermodel, "last_built", {}),
        }
        # Before the oracle hears of the end, so an ended trial always has its record.
        write_json_atomic(os.path.join(self.get_trial_dir(trial.trial_id), TRIAL_RECORD), record)
        super().on_trial_end(trial)
        if self.clear_between_trials:
            tf_compat.forget_custom_gradients(getattr(self, "_gradients_before", None))
            keras.backend.clear_session()
            gc.collect()
        if self.trial_end_hook is not None:
            self.trial_end_hook(trial)


class SearchTuner(_SearchTuner, kt.Tuner):
    """Random, Bayesian and grid searches: KerasTuner's `Tuner` run by their oracles."""


class HyperbandTuner(_SearchTuner, kt.Hyperband):
    """Hyperband: KerasTuner's tuner sets each round's epochs and warm-starts from the last round."""


@dataclasses.dataclass(frozen=True)
class TunerSpec:
    """A tuner by name: KerasTuner's oracle and tuner classes and the oracle's arguments.

    Attributes:
        oracle: the KerasTuner oracle class.
        tuner: `SearchTuner` or `HyperbandTuner`.
        options: ``options(max_trials, epochs) -> dict`` of oracle arguments.
    """

    oracle: type
    tuner: type
    options: Callable[[int, int], dict]


TUNERS: dict[str, TunerSpec] = {
    "random": TunerSpec(kt.oracles.RandomSearchOracle, SearchTuner, lambda n, epochs: {"max_trials": n}),
    "bayesian": TunerSpec(kt.oracles.BayesianOptimizationOracle, SearchTuner, lambda n, epochs: {"max_trials": n}),
    "grid": TunerSpec(kt.oracles.GridSearchOracle, SearchTuner, lambda n, epochs: {"max_trials": n}),
    # Hyperband has no trial budget of its own; it runs brackets until `max_trials` (set below)
    # stops it. One iteration per trial is more than enough brackets for that.
    "hyperband": TunerSpec(kt.oracles.HyperbandOracle, HyperbandTuner,
                           lambda n, epochs: {"max_epochs": epochs, "factor": 3, "hyperband_iterations": n}),
}


def make_tuner(
    name: str,
    hypermodel,
    run_dir: str,
    *,
    max_trials: int,
    objective,
    max_epochs: int,
    seed: int = 0,
    deterministic: bool = False,
    max_consecutive_failed_trials: int = 3,
    distribution_strategy=None,
    clear_between_trials: bool = True,
    on_trial_end: Callable | None = None,
):
    """Builds a tuner over `run_dir`, reloading the search already there.

    Args:
        name: a key of `TUNERS`.
        hypermodel: a `ConfigHyperModel`.
        run_dir: the search's run directory; KerasTuner's state goes to ``run_dir/trials``.
        max_trials: trials to run in all (including those a reloaded search has run).
        objective: a `keras_tuner.Objective`.
        max_epochs: epochs of one trial (Hyperband's largest budget).
        seed: the oracle's seed; each trial is seeded from it and its trial id.
        deterministic: make each trial's TensorFlow ops deterministic (`TrainConfig.deterministic`).
        max_consecutive_failed_trials: failed trials in a row that stop the search.
        distribution_strategy: a `tf.distribute` strategy for every trial, or None.
        clear_between_trials: release Keras' global state after each trial.
        on_trial_end: called with each ended trial, after memory is released.

    Raises:
        ValueError: for an unknown tuner name.
    """
    if name not in TUNERS:
        raise ValueError(f"Unknown tuner {name!r}; choose one of {', '.join(TUNERS)}.")
    spec = TUNERS[name]
    oracle = resumable(spec.oracle)(
        objective=objective,
        seed=seed + 1,  # KerasTuner takes a seed of 0 for "none" and draws a random one
        max_consecutive_failed_trials=max_consecutive_failed_trials,
        **spec.options(max_trials, max_epochs),
    )
    oracle.max_trials = max_trials  # Hyperband's constructor takes none; the others already hold it
    kt_compat.number_trials_by_id(oracle)  # a trial run again keeps its number in the log
    return spec.tuner(
        oracle, hypermodel, directory=run_dir, project_name=PROJECT_NAME, overwrite=False,
        distribution_strategy=distribution_strategy, clear_between_trials=clear_between_trials,
        on_trial_end=on_trial_end, seed=seed, deterministic=deterministic,
    )
