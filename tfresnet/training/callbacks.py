"""The callbacks a run uses, configured from the recipe, and the NaN guard."""

from __future__ import annotations

import dataclasses
import math
import os
import sys

import keras

from tfresnet import keras_compat
from tfresnet.training import rundir

__all__ = ["NaNLossError", "StopOnNaN", "AtomicBackupAndRestore", "make_callbacks", "probe_batch",
           "monitor_mode", "plateau_callbacks"]


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
        backups = self._backups()
        if not backups:
            return
        optimizer = getattr(self.model, "optimizer", None)  # an uncompiled model has none
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # so its state loads too
        for tried, name in enumerate(reversed(backups)):
            path = os.path.join(self.backup_dir, name)
            error = rundir.try_load_weights(self.model, path)
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
        state = rundir.read_state(path) or {}
        keras_compat.restore_random_state(self.model, state.get("random"))
        saved = state.get("callbacks", {})
        for index, callback in enumerate(self.track):
            keras_compat.restore_callback_state(callback, saved.get(self._key(index, callback), {}))
            weights = rundir.read_arrays(path, self._key(index, callback))
            if weights is not None:
                keras_compat.set_early_stopping_best_weights(callback, weights)
        self._epoch = self.restored_epoch = epoch
        # A callback had stopped the phase at this epoch: resume at its end, so nothing more runs.
        end = (self.params or {}).get("epochs", epoch) if state.get("stop_training") else epoch
        keras_compat.set_initial_epoch(self.model, max(end, epoch))

    @staticmethod
    def _key(index: int, callback) -> str:
        return f"{index}-{type(callback).__name__}"

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._save_model()

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        state = {
            "epoch": self._epoch,
            "stop_training": bool(self.model.stop_training),
            "callbacks": {self._key(i, c): keras_compat.callback_state(c) for i, c in enumerate(self.track)},
            "random": keras_compat.random_state(self.model),
        }
        arrays = {self._key(i, c): w for i, c in enumerate(self.track)
                  if (w := keras_compat.early_stopping_best_weights(c)) is not None}
        name = f"{self._PREFIX}{self._epoch:06d}{self._SUFFIX}"
        rundir.save_weights_atomic(self.model, os.path.join(self.backup_dir, name), state=state,
                                   arrays=arrays)
        for old in self._backups()[:-self._KEEP]:
            os.remove(os.path.join(self.backup_dir, old))
        for stale in os.listdir(self.backup_dir):
            if stale.startswith("partial-"):  # left by a kill while writing
                os.remove(os.path.join(self.backup_dir, stale))

    def checkpoint_best(self):
        """The tracked ModelCheckpoint's best value so far, or None."""
        for callback in self.track:
            if isinstance(callback, keras.callbacks.ModelCheckpoint):
                return keras_compat.callback_state(callback).get("best")
        return None


def _say(message: str) -> None:
    print(f"resume: {message}", file=sys.stderr, flush=True)


def monitor_mode(monitor: str) -> str:
    """``"min"`` for a loss, ``"max"`` for every other metric (accuracy, AUC...)."""
    return "min" if "loss" in monitor else "max"


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
                   best_so_far: float | None = None) -> list:
    """Callbacks for one `fit` call of a run.

    Args:
        config: the run's `TrainConfig`.
        run_dir: the run directory.
        phase: the phase's name (its backups go to ``run_dir/backup/<phase>``).
        has_validation: whether `fit` gets validation data (else ``val_`` monitors fall back to
            the training metric).
        best_so_far: the monitor's best value in earlier phases: the best checkpoint is replaced
            only by a better epoch, not by this phase's first one.

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
    checkpoint = keras.callbacks.ModelCheckpoint(
        os.path.join(run_dir, "checkpoints", "best.weights.h5"),
        monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True,
        initial_value_threshold=best_so_far,
    )
    callbacks = [
        StopOnNaN(),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True),
        checkpoint,
    ]
    tracked = [checkpoint]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard", phase)))
    plateau = plateau_callbacks(config, monitor, restore_best_weights=True)
    callbacks += plateau
    tracked += plateau
    if config.gradient_flow:
        # Imported only when asked for: diagnostics sit above training in the import graph.
        from tfresnet.inspect.gradients import GradientFlow

        callbacks.append(GradientFlow(probe=lambda: probe_batch(config), every=config.gradient_flow,
                                      run_dir=run_dir, phase=phase))
    callbacks.append(AtomicBackupAndRestore(os.path.join(run_dir, "backup", phase), track=tracked,
                                            delete_checkpoint=False))
    return callbacks


def probe_batch(config):
    """The first `batch_size` images and labels of a config's training split, in stored order.

    Unshuffled and unaugmented, so every run of the same data and seed measures on the same
    images. Read through a pipeline of its own: taking a batch from the run's training dataset
    would advance its shuffle seed and so change the order the run trains in (measured: the
    first epoch's batches differ).
    """
    from tfresnet.training.session import load_data  # the session imports this module

    own = dataclasses.replace(config, augment="none", cache=False,
                              data_args={**config.data_args, "shuffle": False})
    images, labels = next(iter(load_data(own).train))
    return images.numpy(), labels.numpy()
