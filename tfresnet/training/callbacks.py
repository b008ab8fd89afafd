"""The callbacks a run uses, configured from the recipe: the NaN guard, backups and checkpoints
a kill or a full disk cannot half-write, and the clock that adds up every attempt's train time."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time

import keras

from tfresnet import keras_compat
from tfresnet.files import replace_durably
from tfresnet.runs import RunDir
from tfresnet.training import backups
from tfresnet.training.hints import ConfigError
from tfresnet.training.losses import METRICS, make_metrics

__all__ = ["NaNLossError", "StopOnNaN", "AtomicBackupAndRestore", "AtomicModelCheckpoint", "EpochClock",
           "make_callbacks", "check_monitor", "monitor_mode", "plateau_callbacks"]


class NaNLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Like TerminateOnNaN, but raises, so that `on_train_end` never runs.

    TerminateOnNaN only sets `stop_training`; the run then ends "normally" and
    BackupAndRestore deletes its backup, losing the last good epoch. Raising keeps it.
    """

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NaNLossError(
                f"Loss became {float(loss)} at batch {batch}; training stopped. The last good "
                f"backup (end of the previous epoch) is kept. Lower the learning rate, add "
                f"warm-up (warmup_epochs) or check the data."
            )


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose backups a kill -9 cannot spoil, and which resumes the monitors too.

    Keras writes `latest.weights.h5` in place and the epoch to a second file, so a kill while
    saving leaves a corrupt file, or weights and epoch that disagree (seen in this project's
    resume test). Here:

    - each backup is one file, ``epoch-NNNNNN.weights.h5`` (NNNNNN: the epoch to resume at),
      written under a temporary name, fsynced and renamed into place. Besides the weights and
      the optimizer it holds the progress of the callbacks in `track` (best value, patience
      count, EarlyStopping's best weights), whether one of them stopped training, and the
      model's random-generator states (dropout), so that a resumed run continues them instead
      of starting them afresh: a worse epoch after a restart cannot overwrite the best
      checkpoint, and early stopping keeps counting;
    - the previous backup is deleted only once the next one is complete. A backup that cannot
      be read (truncated, garbage) is skipped for the one before it; when none can be read the
      phase starts again from its first epoch. A message on stderr says which.

    Put it after the callbacks it tracks: its `on_epoch_end` must see their update of the
    epoch, and its `on_train_begin` must come after theirs, which reset them.

    Attributes:
        track: the callbacks whose progress is saved and restored.
        restored_epoch: the epoch the last `fit` resumed at, or None.
    """

    _PREFIX = "epoch-"
    _SUFFIX = ".weights.h5"
    _KEEP = 2  # the newest backup and, in case it turns out unreadable, the one before

    def __init__(self, backup_dir, *, track=(), **kwargs):
        super().__init__(backup_dir, **kwargs)
        if self.save_freq != "epoch":
            raise ValueError(
                f"AtomicBackupAndRestore backs up whole epochs only. Received "
                f"save_freq={self.save_freq!r}; use save_freq='epoch'."
            )
        self.track = list(track)
        self.restored_epoch = None
        self._epoch = 0

    def _backups(self) -> list[str]:
        if not os.path.isdir(self.backup_dir):
            return []
        return sorted(f for f in os.listdir(self.backup_dir)
                      if f.startswith(self._PREFIX) and f.endswith(self._SUFFIX))

    def on_train_begin(self, logs=None):
        keras_compat.clear_initial_epoch(self.model)  # a previous fit's resume point is not ours
        self.restored_epoch = None
        self._epoch = 0
        self._load_model()

    def _load_model(self):
        found = self._backups()
        if not found:
            return
        optimizer = getattr(self.model, "optimizer", None)  # an uncompiled model has none
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # so its state loads too
        for tried, name in enumerate(reversed(found)):
            path = os.path.join(self.backup_dir, name)
            error = backups.try_load_weights(self.model, path)
            if error is not None:
                _say(f"the backup {path} is unreadable ({error}); trying the one before it.")
                continue
            epoch = int(name[len(self._PREFIX):-len(self._SUFFIX)])
            self._restore(path, epoch)
            if tried:
                _say(f"resuming from the older backup {path} (epoch {epoch}).")
            return
        _say(f"no readable backup in {self.backup_dir}; this phase starts again from its first epoch.")

    def _restore(self, path: str, epoch: int) -> None:
        state = backups.read_state(path) or {}
        keras_compat.restore_random_state(self.model, state.get("random"))
        saved = state.get("callbacks", {})
        for index, callback in enumerate(self.track):
            _restore_state(callback, saved.get(self._key(index, callback), {}))
            weights = backups.read_arrays(path, self._key(index, callback))
            if weights is not None:
                keras_compat.set_early_stopping_best_weights(callback, weights)
        self._epoch = self.restored_epoch = epoch
        # A callback had stopped the phase at this epoch: resume at its end, so nothing more runs.
        end = (self.params or {}).get("epochs", epoch) if state.get("stop_training") else epoch
        keras_compat.set_initial_epoch(self.model, max(end, epoch))

    @staticmethod
    def _key(index: int, callback) -> str:
        # A subclass keeps its Keras parent's key, so backups written before it still resume.
        return f"{index}-{getattr(callback, 'state_key', type(callback).__name__)}"

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._save_model()

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        state = {
            "epoch": self._epoch,
            "stop_training": bool(self.model.stop_training),
            "callbacks": {self._key(i, c): _state(c) for i, c in enumerate(self.track)},
            "random": keras_compat.random_state(self.model),
        }
        arrays = {self._key(i, c): w for i, c in enumerate(self.track)
                  if (w := keras_compat.early_stopping_best_weights(c)) is not None}
        name = f"{self._PREFIX}{self._epoch:06d}{self._SUFFIX}"
        backups.save_weights_atomic(self.model, os.path.join(self.backup_dir, name), state=state,
                                   arrays=arrays)
        for old in self._backups()[:-self._KEEP]:
            os.remove(os.path.join(self.backup_dir, old))
        for stale in os.listdir(self.backup_dir):
            if stale.startswith((".partial-", "partial-")):  # left by a kill while writing
                os.remove(os.path.join(self.backup_dir, stale))

    def checkpoint_best(self):
        """The tracked ModelCheckpoint's best value so far, or None."""
        for callback in self.track:
            if isinstance(callback, keras.callbacks.ModelCheckpoint):
                return keras_compat.callback_state(callback).get("best")
        return None


def _state(callback) -> dict:
    """A tracked callback's progress: its own `get_state` (EpochClock), or the Keras monitor's."""
    return callback.get_state() if hasattr(callback, "get_state") else keras_compat.callback_state(callback)


def _restore_state(callback, state: dict) -> None:
    if hasattr(callback, "set_state"):
        callback.set_state(state)
    else:
        keras_compat.restore_callback_state(callback, state)


def _say(message: str) -> None:
    print(f"resume: {message}", file=sys.stderr, flush=True)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint whose file a kill or a full disk cannot half-write.

    Keras writes the checkpoint in place, so a write that fails half-way (disk full) would
    destroy the best weights kept so far. Here Keras writes ``.partial-NAME`` beside it, which
    is renamed onto NAME once complete; a partial file left by a failed write is deleted when
    the next `fit` begins.

    Attributes:
        target: the checkpoint's path (Keras' ``filepath`` is the partial file's).
    """

    state_key = "ModelCheckpoint"  # backups written by Keras' own class resume here too

    def __init__(self, filepath: str, **kwargs):
        folder, name = os.path.split(filepath)
        self.target = filepath
        super().__init__(os.path.join(folder, f".partial-{name}"), **kwargs)

    def on_train_begin(self, logs=None):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.filepath)
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if os.path.exists(self.filepath):  # this epoch was saved
            replace_durably(self.filepath, self.target)


class EpochClock(keras.callbacks.Callback):
    """Adds up the seconds and examples of every finished epoch, over phases and restarts.

    Tracked by the backup, its totals resume with the epoch: a killed and resumed run's train
    time is its attempts' together (up to their last backup), not the last attempt's alone.

    Args:
        examples_per_epoch: examples one epoch trains on.
        seconds: the seconds so far (from earlier phases).
        examples: the examples so far (from earlier phases).
    """

    def __init__(self, examples_per_epoch: int, *, seconds: float = 0.0, examples: int = 0):
        super().__init__()
        self.examples_per_epoch = int(examples_per_epoch)
        self.seconds, self.examples = float(seconds), int(examples)
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self.examples += self.examples_per_epoch

    def get_state(self) -> dict:
        """The totals so far, for the epoch backup."""
        return {"seconds": self.seconds, "examples": self.examples}

    def set_state(self, state: dict) -> None:
        """Restores the totals from an epoch backup's `get_state`."""
        self.seconds = float(state.get("seconds", self.seconds))
        self.examples = int(state.get("examples", self.examples))


def check_monitor(monitor: str) -> None:
    """Refuses a `monitor` the trainer does not compute, naming those it does.

    By name only: a metric instance would start TensorFlow's runtime, after which a
    MultiWorkerMirroredStrategy can no longer be made ("Collective ops must be configured at
    program startup").

    Raises:
        ConfigError: for an unknown name.
    """
    if monitor.removeprefix("val_") not in ("loss", *METRICS):
        known = ["loss", *METRICS]
        raise ConfigError(f"monitor={monitor!r} is not a metric the trainer computes; choose one of "
                          f"{', '.join(known + ['val_' + k for k in known])}.")


def monitor_mode(monitor: str) -> str:
    """Whether `monitor` improves down (``"min"``) or up (``"max"``), by Keras' own rule.

    Keras' monitors in ``mode="auto"`` minimise ``loss`` and ``val_loss`` and otherwise follow
    the compiled metric of that name (its direction). The trainer compiles `make_metrics()`, so
    the direction is known before any model exists: a search's objective needs it then.

    Raises:
        ConfigError: for a name the trainer does not compute, naming those it does.
    """
    check_monitor(monitor)
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    metric = next(m for m in make_metrics() if m.name == name)
    return "max" if keras_compat.metric_direction(metric) == "up" else "min"


def plateau_callbacks(config, monitor: str, *, restore_best_weights: bool) -> list:
    """The config's early stopping and learning-rate-on-plateau callbacks, watching `monitor`."""
    mode, callbacks = monitor_mode(monitor), []
    if config.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=config.early_stopping, restore_best_weights=restore_best_weights))
    if config.reduce_lr_on_plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, patience=config.reduce_lr_on_plateau, factor=0.2))
    return callbacks


def make_callbacks(config, run_dir: str, *, phase: str, has_validation: bool,
                   best_so_far: float | None = None, clock: EpochClock | None = None, probe=None) -> list:
    """Callbacks for one `fit` call of a run.

    Args:
        config: the run's `TrainConfig`.
        run_dir: the run directory.
        phase: the phase's name (its backups go to ``run_dir/backup/<phase>``).
        has_validation: whether `fit` gets validation data (else ``val_`` monitors fall back to
            the training metric).
        best_so_far: the monitor's best value in earlier phases: the best checkpoint is replaced
            only by a better epoch, not by this phase's first one.
        clock: the run's `EpochClock`, backed up with the epoch (none: not timed).
        probe: a function returning the fixed batch `gradient_flow` measures on.

    Order matters: CSVLogger writes an epoch's row, then the checkpoint and the monitors see the
    epoch, and the backup comes last, saving their updated state with the weights. A kill between
    the row and the backup repeats the row on resume (deduplicated when the run ends) instead of
    losing one. The backup is kept when the phase ends: the trainer deletes it once the phase's
    weights are saved.
    """
    monitor = config.monitor
    if monitor.startswith("val_") and not has_validation:
        monitor = monitor[len("val_"):]
    mode = monitor_mode(monitor)
    checkpoint = AtomicModelCheckpoint(
        os.path.join(run_dir, RunDir.BEST),
        monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True,
        initial_value_threshold=best_so_far,
    )
    callbacks = [
        StopOnNaN(),
        keras.callbacks.CSVLogger(os.path.join(run_dir, RunDir.HISTORY), append=True),
        checkpoint,
    ]
    tracked = [checkpoint]
    callbacks += [clock] if clock is not None else []
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, RunDir.TENSORBOARD, phase)))
    plateau = plateau_callbacks(config, monitor, restore_best_weights=True)
    callbacks += plateau
    tracked += plateau + ([clock] if clock is not None else [])  # last: keys of older backups stay
    if config.gradient_flow:
        # Imported only when asked for: diagnostics sit above training in the import graph.
        from tfresnet.inspect.gradients import GradientFlow

        callbacks.append(GradientFlow(probe=probe, every=config.gradient_flow,
                                      run_dir=run_dir, phase=phase))
    callbacks.append(AtomicBackupAndRestore(os.path.join(run_dir, RunDir.BACKUP, phase), track=tracked,
                                            delete_checkpoint=False))
    return callbacks
