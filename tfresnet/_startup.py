"""What `import tfresnet` sets up before anything imports TensorFlow or Keras.

`import tfresnet` stays cheap (`tfresnet --help` answers without loading TensorFlow, which takes
about 10 s on 2 CPU cores), so it cannot act on TensorFlow or Keras directly. It hooks their first
import instead, whoever makes it (a recipe, the trainer, a user's own ``import keras``):

- **A quiet start-up.** TensorFlow's C++ libraries log while they load, before absl logging is
  initialised, so `TF_CPP_MIN_LOG_LEVEL` does not reach those lines ("All log messages before
  absl::InitializeLog() ...", oneDNN's `port.cc`, `cudart_stub.cc` "Could not find cuda
  drivers", `cpu_feature_guard.cc`), nor, on a machine without a GPU driver, the `cuInit` error of
  the first device query. While `tensorflow` is first imported (and, without a driver, its devices
  listed), file descriptor 2 goes to a temporary file; its lines are then written back to stderr
  less the C++ records below `TF_CPP_MIN_LOG_LEVEL` (2 unless set: errors still show) and the
  known harmless start-up errors. Python's own warnings and errors pass through, and nothing
  after the import is touched. ``TF_CPP_MIN_LOG_LEVEL=0`` turns the filter off.
- **Models that load.** A run's `.keras` file names tfresnet's serialisable classes
  (``tfresnet>LearningRate``, ``tfresnet>Preprocess``, ...). Keras finds them only once the
  modules defining them have run, and in safe mode never imports a non-Keras module itself. When
  `keras` is first imported, those modules are imported too, so that
  ``import tfresnet, keras; keras.saving.load_model(path)`` works in a fresh process.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import os
import re
import sys
import tempfile
import warnings

__all__ = ["CUSTOM_OBJECT_MODULES", "install", "register_custom_objects", "drop_startup_noise"]

# Importing these registers every Keras class a tfresnet `.keras` file can name. They import
# nothing of tfresnet outside their own package (and `tfresnet.training` imports nothing
# eagerly), so importing them while another tfresnet module is half-imported (that module's
# `import keras` being the first) cannot meet a half-initialised module: one already in
# sys.modules is skipped, and registers its classes when it finishes.
CUSTOM_OBJECT_MODULES = ("tfresnet.models", "tfresnet.training.schedules", "tfresnet.training.losses",
                         "tfresnet.training.optimizers")

# TensorFlow's default shows every C++ record; 2 keeps errors and fatal errors only.
DEFAULT_TF_LOG_LEVEL = "2"

# An absl log record: severity letter, date, time (before absl is initialised, "00:00:" and the
# seconds since 1970), thread, file:line].
_RECORD = re.compile(r"^([IWEF])\d{4} \d+:\d+:\d+\.\d+\s+\d+ \S+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# Errors TensorFlow logs on every start of a machine without a GPU driver, or when two of its
# libraries register the same CUDA plugin; neither affects a run.
_HARMLESS_ERRORS = re.compile(r"failed call to cuInit|Unable to register cu\w+ factory")
# Lines a Python warning, log record or traceback starts with: never part of a C++ record.
_PYTHON_LINE = re.compile(r"^(Traceback |\S+:\d+: \w*(Warning|Error)\b|[A-Z]+:[\w.]+:)")
# cudart_stub.cc's notice that this machine has no GPU driver (the first device query will log
# a cuInit error).
_NO_CUDA_DRIVER = "Could not find cuda drivers"


def install() -> None:
    """Sets TensorFlow's log level (unless set) and hooks the first imports of TensorFlow and
    Keras; registers the custom objects now if Keras is already imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
    if not any(isinstance(finder, _FirstImportHooks) for finder in sys.meta_path):
        sys.meta_path.insert(0, _FirstImportHooks())
    hooks = next(f for f in sys.meta_path if isinstance(f, _FirstImportHooks))
    if "tensorflow" not in sys.modules:
        hooks.add("tensorflow", _quiet_import)
    if "keras" in sys.modules:
        register_custom_objects()
    else:
        hooks.add("keras", _register_after_import)


def register_custom_objects() -> None:
    """Imports the modules that register tfresnet's Keras classes (`CUSTOM_OBJECT_MODULES`).

    A module already in ``sys.modules`` is left alone: either it has run, or it is being imported
    and registers its classes when it finishes.
    """
    for name in CUSTOM_OBJECT_MODULES:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception as err:  # a failure here must not break the user's `import keras`
            warnings.warn(
                f"tfresnet could not register its Keras classes ({name}: {type(err).__name__}: "
                f"{err}); import {name} before loading a tfresnet .keras file.",
                RuntimeWarning,
                stacklevel=2,
            )


def drop_startup_noise(text: str, level: int) -> str:
    """`text` (what TensorFlow's import wrote to stderr) less the start-up notices.

    Drops absl's banner and the C++ records below `level` (0 info, 1 warning, 2 error, 3 fatal,
    as `TF_CPP_MIN_LOG_LEVEL`) with their continuation lines; at level 2 and above also the
    `_HARMLESS_ERRORS`. Every other line is kept, in order.
    """
    if level <= 0:
        return text
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        record = _RECORD.match(line)
        if record:
            rank = _SEVERITY[record.group(1)]
            dropping = rank < level or (level >= 2 and bool(_HARMLESS_ERRORS.search(line)))
        elif line.rstrip("\n") == _ABSL_BANNER:
            dropping = True
        elif not line.strip() or _PYTHON_LINE.match(line):
            dropping = False
        # else: a continuation of the record above (cpu_feature_guard's list of instructions)
        if not dropping:
            kept.append(line)
    return "".join(kept)


class _FirstImportHooks(importlib.abc.MetaPathFinder):
    """Runs ``hook(exec_module, module)`` in place of the loader's ``exec_module(module)`` the
    first time a hooked module is executed; finds nothing itself, so every other import (and a
    hooked one's spec) comes from the finders after it."""

    def __init__(self):
        self._hooks: dict = {}

    def add(self, name: str, hook) -> None:
        self._hooks[name] = hook

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self._hooks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is None:
            return spec

        def run_hook(module):
            # Taken when the module runs, not when found: `importlib.util.find_spec(name)`
            # alone must not use it up.
            hook = self._hooks.pop(fullname, None)
            if hook is None:
                exec_module(module)
            else:
                hook(exec_module, module)

        # The loader is this spec's own instance, so the hook applies to this import only.
        spec.loader.exec_module = run_hook
        return spec


def _register_after_import(exec_module, module) -> None:
    exec_module(module)
    register_custom_objects()


def _quiet_import(exec_module, module) -> None:
    level = _log_level()
    if level <= 0:
        exec_module(module)
        return
    with _stderr_to_file() as capture:
        exec_module(module)
        if capture is not None and _NO_CUDA_DRIVER in capture.text():
            # Without a driver the first device query logs a cuInit error; make it here, inside
            # the capture. With a driver nothing is queried early, so CUDA_VISIBLE_DEVICES set
            # after `import tensorflow` keeps working.
            with contextlib.suppress(Exception):  # a real failure shows again at first use
                module.config.list_physical_devices()
        if capture is not None:
            capture.level = level  # only now: a failed import shows everything it wrote


def _log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL))
    except ValueError:
        return int(DEFAULT_TF_LOG_LEVEL)


class _Capture:
    """The unbuffered temporary file that file descriptor 2 points to, and the level to filter
    its lines at when they are written back (0 keeps them all)."""

    def __init__(self, file):
        self.file = file
        self.level = 0

    def text(self) -> str:
        # The C++ side writes through a duplicate of this descriptor, which shares its offset.
        end = self.file.tell()
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(end)
        return data.decode("utf-8", "replace")


@contextlib.contextmanager
def _stderr_to_file():
    """Points file descriptor 2 at a `_Capture`; on exit, writes back what it keeps."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        yield None  # no usable stderr: nothing to quiet
        return
    with tempfile.TemporaryFile(buffering=0) as file:
        capture = _Capture(file)
        os.dup2(file.fileno(), 2)
        try:
            yield capture
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            kept = drop_startup_noise(capture.text(), capture.level)
            if kept:
                os.write(2, kept.encode("utf-8", "replace"))
