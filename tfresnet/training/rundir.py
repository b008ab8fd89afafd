"""Run directories: unique default names, one writer at a time, files a kill cannot half-write.

Shared by `tfresnet train` and `tfresnet tune`:

- `new_run_dir` names a run ``runs/<name>-<YYYYmmdd-HHMMSS>`` and creates it with `os.mkdir`,
  which fails if the folder exists, so two launches in the same second get ``...-2``, ``...-3``
  instead of one folder.
- `lock_run_dir` holds an exclusive `fcntl.flock` on ``RUN_DIR/.lock`` (which records the pid)
  while a process writes there. The kernel drops the lock when its process dies, kill -9
  included, so a lock left by a dead process never blocks a resume and no pid needs guessing.
- `save_weights_atomic` writes under a temporary name, fsyncs and renames into place
  (`tfresnet.files`): a reader sees the old file or the complete new one, even after a power cut.
- `has_progress` tells a run that finished at least one epoch from one that failed while
  starting (which may be started again from scratch).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time

from tfresnet.files import replace_durably

__all__ = ["LOCK_FILE", "RunDirInUseError", "new_run_dir", "new_search_dir", "lock_run_dir", "has_progress",
           "save_weights_atomic", "read_state", "read_arrays", "try_load_weights"]

LOCK_FILE = ".lock"
_STATE_ATTR = "tfresnet_state"
_ARRAYS_PREFIX = "tfresnet_"


class RunDirInUseError(FileExistsError):
    """Another live process writes to this run directory.

    A `FileExistsError`, as "this run directory is taken" already is one for the command lines:
    they print it on one line and exit with code 2.
    """


def new_run_dir(name: str, root: str = "runs") -> str:
    """Creates and returns a new run directory ``ROOT/NAME-YYYYmmdd-HHMMSS`` (``-2``, ... if taken)."""
    os.makedirs(root, exist_ok=True)
    base = os.path.join(root, f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    for attempt in range(1, 10_000):
        path = base if attempt == 1 else f"{base}-{attempt}"
        try:
            os.mkdir(path)  # atomic: of two launches, one gets each name
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"No free run directory name under {base}-N; choose one with --run-dir.")


def new_search_dir(recipe: str, root: str = "runs") -> str:
    """`new_run_dir` for a KerasTuner search of `recipe`: ``ROOT/<recipe>-tune-YYYYmmdd-HHMMSS``."""
    return new_run_dir(f"{recipe}-tune", root)


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def lock_run_dir(run_dir: str):
    """Holds the run directory's write lock; creates the directory if needed.

    Raises:
        RunDirInUseError: while another process holds it, naming that process' pid.
    """
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunDirInUseError(
            f"{run_dir} is in use by another process (pid {_holder(path)}); wait for it to end, "
            f"or choose another --run-dir."
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield run_dir
    finally:
        # The file stays: deleting it would let a process that opened it meanwhile lock a file
        # no longer in the folder, while a third locks a new one.
        os.close(fd)


def has_progress(run_dir: str) -> bool:
    """Whether a run directory holds a finished epoch: a history row, a backup or a phase file."""
    history = os.path.join(run_dir, "history.csv")
    if os.path.exists(history):
        with open(history, "rb") as f:
            if len([line for line in f.read().split(b"\n") if line.strip()]) > 1:  # header + rows
                return True
    for folder in ("backup", "phases"):
        for _, _, files in os.walk(os.path.join(run_dir, folder)):
            if any(f.endswith(".weights.h5") and not f.startswith("partial-") for f in files):
                return True
    return False


def save_weights_atomic(model, path: str, *, state: dict | None = None,
                        arrays: dict[str, list] | None = None) -> None:
    """`model.save_weights(path)`, written under a temporary name, fsynced and renamed.

    Args:
        model: the model to save.
        path: a ``.weights.h5`` path.
        state: JSON-ready facts stored in the same file (`read_state` returns them), so that
            weights and what belongs to them cannot disagree after a kill.
        arrays: named lists of arrays stored in the same file (`read_arrays`).
    """
    import h5py

    folder, name = os.path.split(path)
    partial = os.path.join(folder, f"partial-{name}")  # keeps the .weights.h5 suffix Keras needs
    model.save_weights(partial, overwrite=True)
    if state is not None or arrays:
        # Keras reads only its own groups ("layers", "optimizer", "vars") back.
        with h5py.File(partial, "a") as f:
            if state is not None:
                f.attrs[_STATE_ATTR] = json.dumps(state)
            for key, values in (arrays or {}).items():
                group = f.create_group(f"{_ARRAYS_PREFIX}{key}")
                for i, value in enumerate(values):
                    group.create_dataset(str(i), data=value)
    replace_durably(partial, path)


def read_state(path: str) -> dict | None:
    """The `state` stored by `save_weights_atomic`, or None (none stored, or unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            text = f.attrs.get(_STATE_ATTR)
            return None if text is None else json.loads(text)
    except (OSError, ValueError):
        return None


def read_arrays(path: str, key: str) -> list | None:
    """A list of arrays stored by `save_weights_atomic`, or None."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f.get(f"{_ARRAYS_PREFIX}{key}")
            return None if group is None else [group[str(i)][()] for i in range(len(group))]
    except (OSError, ValueError, KeyError):
        return None


def try_load_weights(model, path: str) -> str | None:
    """Loads a `.weights.h5` file; on failure leaves the model as it was and says why.

    Returns:
        None when loaded, else the reason (e.g. ``"OSError: ... truncated file"``).
    """
    variables = list(model.variables)
    optimizer = getattr(model, "optimizer", None)  # an uncompiled model has none
    if optimizer is not None and optimizer.built:
        variables += list(optimizer.variables)
    before = [v.numpy() for v in variables]  # a file that fails half-way leaves no mixed weights
    try:
        model.load_weights(path)
    except (OSError, ValueError, KeyError) as err:
        for variable, value in zip(variables, before):
            variable.assign(value)
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None
