"""One home for a run directory: its file names, its readers, its writers and its lock.

A run directory (``tfresnet train``, a tuner's ``best/``) holds::

    config.json         the resolved TrainConfig        class_names.json  one name per output
    metrics.json        the report's figures            model.keras       the final model (raw pixels in)
    run.json            the recipe it was started from
    history.csv         one row per epoch               data_report.json  files skipped, counts
    checkpoints/best.weights.h5                         backup/PHASE/     epoch backups (while training)
    phases/PHASE.weights.h5                             export/           SavedModel, TFLite, ONNX
    tensorboard/PHASE/  .lock
    weights-raw.weights.h5 or weights-averaged.weights.h5   with ema: the set model.keras does not hold

Everything that reads or writes one goes through `RunDir`, so a file name, the safe-mode model
load and the atomic writes (`tfresnet.files.write_atomic`: a kill or a full disk leaves the
previous file whole) are written once. `RunDir.config` is a `TrainConfig`:
`tfresnet.training.config` imports only the standard library, which is why this bottom-floor
module may read it.

The lock is an exclusive `fcntl.flock` on ``.lock`` (which records the pid) while a process
writes: the kernel drops it when its process dies, kill -9 included, so a lock left by a dead
process never blocks a resume and no pid needs guessing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from typing import Any, ClassVar

from tfresnet.files import write_atomic, write_json_atomic
from tfresnet.training.config import ConfigError, TrainConfig

__all__ = ["RunDir", "RunDirInUseError", "new_run_dir", "lock_dir", "load_keras"]


class RunDirInUseError(FileExistsError):
    """Another live process writes to this run directory.

    A `FileExistsError`, as "this run directory is taken" already is one for the command lines:
    they print it on one line and exit with code 2.
    """


def new_run_dir(name: str, root: str = "runs") -> str:
    """Creates and returns a new folder ``ROOT/NAME-YYYYmmdd-HHMMSS`` (``-2``, ... if taken).

    `os.mkdir` fails if the folder exists, so two launches in the same second get two folders.
    """
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


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def lock_dir(folder: str, *, lock_file: str = ".lock", what: str = "another process", wait: bool = False):
    """Holds an exclusive lock on ``FOLDER/LOCK_FILE`` for the block; creates the folder.

    Args:
        folder: the folder to lock.
        lock_file: the lock's file name in it.
        what: who else may hold it, for the error message.
        wait: block until the holder releases it (for locks held a moment, such as a results
            file being saved), instead of failing at once.

    Raises:
        RunDirInUseError: while another process holds it (unless `wait`), naming that process' pid.
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, lock_file)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides, as for every file
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        raise RunDirInUseError(
            f"{folder} is in use by {what} (pid {_holder(path)}); wait for it to end, "
            f"or choose another --run-dir."
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield folder
    finally:
        # The file stays: deleting it would let a process that opened it meanwhile lock a file
        # no longer in the folder, while a third locks a new one.
        os.close(fd)


def load_keras(path: str, *, compile: bool = False):
    """A ``.keras`` file loaded with safe mode on: a model from elsewhere runs no code.

    The one place tfresnet loads a `.keras` file (run directories, `predict`, `inspect`).

    Args:
        path: the file.
        compile: also restore the optimizer and loss (needs `tfresnet.training` for the custom
            schedule); serving and diagnostics need neither.
    """
    import keras

    import tfresnet.models  # (registers the custom layers safe_mode needs)

    if compile:
        import tfresnet.training.schedules  # noqa: F401  (registers the schedule)
    return keras.saving.load_model(path, safe_mode=True, compile=compile)


class RunDir:
    """A run directory: file names as constants, typed readers, atomic writers and the lock.

    Args:
        path: the folder (need not exist yet).
    """

    CONFIG = "config.json"
    CLASS_NAMES = "class_names.json"
    METRICS = "metrics.json"
    MODEL = "model.keras"
    HISTORY = "history.csv"
    DATA_REPORT = "data_report.json"
    STARTED = "run.json"  # how the run was started (its recipe's name), for --resume
    BEST = os.path.join("checkpoints", "best.weights.h5")
    BACKUP = "backup"
    PHASES = "phases"
    EXPORT = "export"
    TENSORBOARD = "tensorboard"
    LOCK = ".lock"
    # With `ema`, the set of weights (`TrainConfig.ema_weights`) that model.keras does not hold,
    # of the best checkpoint's epoch: set name -> its file.
    EMA_WEIGHTS: ClassVar[dict] = {"raw": "weights-raw.weights.h5", "averaged": "weights-averaged.weights.h5"}
    # What a finished run holds: what serving and diagnostics read.
    FINISHED = (MODEL, CLASS_NAMES, CONFIG)

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"RunDir({self.path!r})"

    def __fspath__(self) -> str:
        return self.path

    def file(self, *names: str) -> str:
        """The path of a file or folder inside the run directory."""
        return os.path.join(self.path, *names)

    @classmethod
    def new(cls, name: str, root: str = "runs") -> RunDir:
        """A new, empty run directory ``ROOT/NAME-YYYYmmdd-HHMMSS`` (see `new_run_dir`)."""
        return cls(new_run_dir(name, root))

    def lock(self):
        """The write lock, as a context manager (see `lock_dir`)."""
        return lock_dir(self.path, lock_file=self.LOCK)

    # ----------------------------------------------------------------------------- state

    def exists(self) -> bool:
        """True when the run directory exists."""
        return os.path.isdir(self.path)

    def is_configured(self) -> bool:
        """Whether a run was started here: it holds a ``config.json``."""
        return os.path.isfile(self.file(self.CONFIG))

    def is_finished(self) -> bool:
        """Whether the run ended: its model and its metrics are written (the last files it writes)."""
        return os.path.isfile(self.file(self.MODEL)) and os.path.isfile(self.file(self.METRICS))

    def has_progress(self) -> bool:
        """Whether a finished epoch is here: a history row, a backup or a phase file."""
        history = self.file(self.HISTORY)
        if os.path.exists(history):
            with open(history, "rb") as f:
                if len([line for line in f.read().split(b"\n") if line.strip()]) > 1:  # header + rows
                    return True
        for folder in (self.BACKUP, self.PHASES):
            for _, _, files in os.walk(self.file(folder)):
                if any(f.endswith(".weights.h5") and not f.startswith((".partial-", "partial-")) for f in files):
                    return True
        return False

    def missing(self, names=FINISHED) -> list[str]:
        """Which of `names` the run directory lacks."""
        return [name for name in names if not os.path.isfile(self.file(name))]

    def require_finished(self) -> RunDir:
        """Returns self; raises FileNotFoundError naming the folder or the files a finished run lacks."""
        if not self.exists():
            raise FileNotFoundError(f"Run directory {self.path} does not exist.")
        if missing := self.missing():
            raise FileNotFoundError(
                f"{self.path} is not a complete training run: missing {', '.join(missing)} "
                f"(a run directory holds {', '.join(self.FINISHED)})."
            )
        return self

    # ----------------------------------------------------------------------------- readers

    def read_json(self, name: str, default: Any = FileNotFoundError) -> Any:
        """A JSON file of the run; `default` when it is absent (else FileNotFoundError).

        Raises:
            ValueError: for a file that is not valid JSON, naming it.
        """
        path = self.file(name)
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            if default is FileNotFoundError:
                raise FileNotFoundError(f"{self.path} holds no {name}.") from None
            return default
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}).") from None

    @property
    def config(self) -> TrainConfig:
        """The run's `TrainConfig` (from ``config.json``).

        Raises:
            FileNotFoundError: when there is none.
            ConfigError: when it is not valid JSON, not an object, or not a valid config.
        """
        path = self.file(self.CONFIG)
        try:
            values = self.read_json(self.CONFIG)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must hold a JSON object. Received {values!r}")
        try:
            return TrainConfig.from_dict(values)
        except TypeError as err:
            raise ConfigError(f"{path}: {err}") from None

    @property
    def class_names(self) -> list[str]:
        """One name per model output (``class_names.json``)."""
        names = self.read_json(self.CLASS_NAMES)
        if not isinstance(names, list):
            raise TypeError(f"{self.file(self.CLASS_NAMES)} must hold a JSON list of strings. Received {names!r}")
        return [str(name) for name in names]

    @property
    def metrics(self) -> dict | None:
        """The report's figures (``metrics.json``), or None before the run ends."""
        return self.read_json(self.METRICS, None)

    def history(self):
        """``history.csv`` as a DataFrame (empty when absent)."""
        import pandas as pd

        path = self.file(self.HISTORY)
        return pd.read_csv(path) if os.path.isfile(path) and os.path.getsize(path) else pd.DataFrame()

    def load_model(self, *, compile: bool = False, weights: str | None = None):
        """``model.keras`` loaded with safe mode on (`load_keras`).

        Args:
            compile: also restore the optimizer and loss.
            weights: for a run trained with ``ema``, ``"averaged"`` or ``"raw"``: that set of
                weights (the one ``model.keras`` holds, or the other from `EMA_WEIGHTS`); None:
                ``model.keras``' own.

        Raises:
            FileNotFoundError: when the run holds no model (or not the other set's file).
            ValueError: for `weights` on a run trained without ``ema``, or an unknown set.
        """
        path = self.file(self.MODEL)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{self.path} holds no {self.MODEL}: give a finished run directory (tfresnet train "
                f"writes {self.MODEL} at the end of a run)."
            )
        other = self._other_weights(weights)
        model = load_keras(path, compile=compile)
        if other is not None:
            model.load_weights(other)
        return model

    def _other_weights(self, weights: str | None) -> str | None:
        """The file to load over model.keras for `weights`, or None when model.keras holds them."""
        if weights is None:
            return None
        if weights not in self.EMA_WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(self.EMA_WEIGHTS)}. Received weights={weights!r}")
        config = self.config
        if config.ema is None:
            raise ValueError(f"weights={weights!r}: {self.path} was trained without ema, so it holds one set "
                             f"of weights; leave the choice out.")
        if weights == config.ema_weights:
            return None
        path = self.file(self.EMA_WEIGHTS[weights])
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{self.path} holds no {self.EMA_WEIGHTS[weights]} (the {weights} weights).")
        return path

    # ----------------------------------------------------------------------------- writers

    def write_text(self, name: str, text: str) -> str:
        """Writes a file of the run all at once (`tfresnet.files.write_atomic`); returns its path."""
        path = self.file(name)
        write_atomic(path, text)
        return path

    def write_json(self, name: str, obj: Any, **dump_args) -> str:
        """Writes `obj` as JSON to the run's file `name`, atomically; returns its path."""
        path = self.file(name)
        write_json_atomic(path, obj, **dump_args)
        return path

    def write_config(self, config: TrainConfig) -> str:
        """Writes `config` to ``config.json``, atomically; returns its path."""
        return self.write_text(self.CONFIG, config.to_json())

    def write_class_names(self, names) -> str:
        """Writes the class names, as strings, to ``class_names.json``; returns its path."""
        return self.write_json(self.CLASS_NAMES, [str(name) for name in names])

    def write_metrics(self, metrics: dict) -> str:
        """``metrics.json`` without the per-image lists (`misclassified`) only the plots need."""
        return self.write_json(self.METRICS, {k: v for k, v in metrics.items() if k != "misclassified"},
                               indent=2)

    def save_model(self, model) -> str:
        """``model.keras``, written under a temporary name and renamed."""
        path = self.file(self.MODEL)
        write_atomic(path, model.save)
        return path

    def remove(self) -> None:
        """Deletes the run directory (one that a failed start left holding nothing of value)."""
        shutil.rmtree(self.path, ignore_errors=True)
