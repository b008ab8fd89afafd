"""Weights files a kill or a full disk cannot half-write: epoch backups and finished phases.

- `save_weights_atomic` writes through `tfresnet.files.write_atomic` (a temporary name, fsync,
  rename): a reader sees the old file or the complete new one, even after a power cut, and a
  write that fails (disk full) leaves the old one in place. Facts that belong to the weights
  (the epoch, the monitors' progress) are stored in the same file, so they cannot disagree.
- `try_load_weights` loads one, or leaves the model as it was and says why.

The run directory itself (its names, readers, writers and lock) is `tfresnet.runs.RunDir`.
"""

from __future__ import annotations

import json

from tfresnet.files import write_atomic

__all__ = ["save_weights_atomic", "read_state", "read_arrays", "try_load_weights"]

_STATE_ATTR = "tfresnet_state"
_ARRAYS_PREFIX = "tfresnet_"


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

    def write(partial: str) -> None:
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

    write_atomic(path, write)


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
