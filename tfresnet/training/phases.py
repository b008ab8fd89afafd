"""A run's finished phases: ``phases/<name>.weights.h5``, so a resumed run skips them.

Each file holds the phase's final weights and, beside them in the same file, the epoch the next
phase starts at (a phase that early stopping ended is shorter than configured), the monitor's
best value so far (the next phase replaces the best checkpoint only with a better epoch) and the
model's random-generator states. It is written under a temporary name, fsynced and renamed; one
that cannot be read is deleted and its phase trained again, with a message saying so.
"""

from __future__ import annotations

import os
import shutil
import sys

from tfresnet import keras_compat
from tfresnet.runs import RunDir
from tfresnet.training import backups

__all__ = ["phase_file", "load_finished", "save_finished"]


def phase_file(run_dir: str, name: str) -> str:
    """The weights file a finished phase leaves."""
    return os.path.join(run_dir, RunDir.PHASES, f"{name}.weights.h5")


def load_finished(model, run_dir: str, name: str) -> dict | None:
    """Loads a finished phase's weights into `model`.

    Returns:
        None when the phase has not finished (or its file is unreadable: it is then deleted, so
        the phase trains again); else what `save_finished` stored: ``next_epoch`` and
        ``checkpoint_best`` (an empty dict for files written before they were stored).
    """
    path = phase_file(run_dir, name)
    if not os.path.exists(path):
        return None
    error = backups.try_load_weights(model, path)
    if error is not None:
        print(f"resume: {path} is unreadable ({error}); phase {name!r} is trained again.",
              file=sys.stderr, flush=True)
        os.remove(path)
        return None
    state = backups.read_state(path) or {}
    keras_compat.restore_random_state(model, state.get("random"))
    shutil.rmtree(os.path.join(run_dir, RunDir.BACKUP, name), ignore_errors=True)  # left by a kill
    return state


def save_finished(model, run_dir: str, name: str, *, next_epoch: int, checkpoint_best,
                  clock: dict | None = None) -> None:
    """Saves a finished phase's weights, then deletes its epoch backups (no longer needed).

    `clock` (the run's `EpochClock` totals) is stored too, so a later phase or attempt adds to it.
    """
    path = phase_file(run_dir, name)
    state = {"next_epoch": int(next_epoch), "checkpoint_best": checkpoint_best,
             "random": keras_compat.random_state(model), "clock": clock or {}}
    backups.save_weights_atomic(model, path, state=state)
    shutil.rmtree(os.path.join(run_dir, RunDir.BACKUP, name), ignore_errors=True)
