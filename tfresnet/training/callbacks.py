"""The callbacks a run uses, configured from the recipe, and the NaN guard."""

from __future__ import annotations

import math
import os

import keras

__all__ = ["NaNLossError", "StopOnNaN", "AtomicBackupAndRestore", "make_callbacks"]


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
    """BackupAndRestore whose backups a kill -9 cannot leave half-written.

    Keras writes `latest.weights.h5` in place and the epoch to a second file, so a kill while
    saving leaves a corrupt file, or weights and epoch that disagree (seen in this project's
    resume test). Here each backup is written under a temporary name and renamed into place
    (atomic on POSIX file systems), with the epoch in its file name: the newest complete file
    is always a consistent resume point.
    """

    _PREFIX = "epoch-"
    _SUFFIX = ".weights.h5"

    def _backups(self) -> list[str]:
        if not os.path.isdir(self.backup_dir):
            return []
        return sorted(f for f in os.listdir(self.backup_dir)
                      if f.startswith(self._PREFIX) and f.endswith(self._SUFFIX))

    def on_train_begin(self, logs=None):
        self._load_model()

    def _load_model(self):
        backups = self._backups()
        if not backups:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, backups[-1]))
        self.model._initial_epoch = int(backups[-1][len(self._PREFIX):-len(self._SUFFIX)])

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"{self._PREFIX}{self._current_epoch:06d}{self._SUFFIX}"
        partial = os.path.join(self.backup_dir, f"partial-{name}")
        self.model.save_weights(partial, overwrite=True)
        os.replace(partial, os.path.join(self.backup_dir, name))
        for old in self._backups():
            if old != name:
                os.remove(os.path.join(self.backup_dir, old))


def make_callbacks(config, run_dir: str, *, phase: str, has_validation: bool) -> list:
    """Callbacks for one `fit` call of a run.

    Order matters: CSVLogger writes an epoch's row before BackupAndRestore saves the epoch, so a
    kill between the two repeats a row on resume (deduplicated when the run ends) instead of
    losing one.
    """
    monitor = config.monitor
    if monitor.startswith("val_") and not has_validation:
        monitor = monitor[len("val_"):]
    mode = "min" if "loss" in monitor else "max"
    callbacks = [
        StopOnNaN(),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True),
        AtomicBackupAndRestore(os.path.join(run_dir, "backup", phase)),
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, "checkpoints", "best.weights.h5"),
            monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True,
        ),
    ]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard", phase)))
    if config.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=config.early_stopping, restore_best_weights=True))
    if config.reduce_lr_on_plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, patience=config.reduce_lr_on_plateau, factor=0.2))
    return callbacks
