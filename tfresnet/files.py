"""Files written so that a reader, a parallel loader or a kill never sees half of one.

One helper for the whole package (run directories, tuner state, the image-check cache,
benchmark results): write under a unique temporary name beside the target, fsync, rename
(atomic on POSIX), then fsync the folder so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Callable
from typing import Any

__all__ = ["WriteError", "DISK_FULL", "write_error", "write_atomic", "write_json_atomic", "fsync_dir", "replace_durably"]


class WriteError(OSError):
    """A file could not be written (disk full, no permission...); the previous one is intact.

    Its message is one line naming the file and the reason, for the command lines to print.
    """

    def __str__(self) -> str:
        return str(self.strerror)


# The errors that mean "the disk refused", whoever wrote: ours, or Keras' own writers (CSVLogger).
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_error(err: OSError) -> WriteError | None:
    """`err` as a `WriteError` when it is a full disk or a `WriteError` already, else None."""
    if isinstance(err, WriteError):
        return err
    if err.errno in DISK_FULL:
        where = err.filename or "a file of the run"
        return WriteError(err.errno, f"could not write {where}: {os.strerror(err.errno)}")
    return None


def fsync_dir(path: str) -> None:
    """Makes a rename in `path` durable (POSIX: a directory's entries are flushed on its fsync)."""
    with contextlib.suppress(OSError):  # some file systems cannot open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_durably(partial: str, path: str) -> None:
    """Renames the finished file `partial` onto `path` after its bytes reach the disk."""
    with open(partial, "rb+") as f:
        os.fsync(f.fileno())  # the bytes reach the disk before the name points at them
    os.replace(partial, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def write_atomic(path: str, content: str | bytes | Callable[[str], None]) -> None:
    """Writes `path` all at once.

    Args:
        path: the target; its folder is created.
        content: text, bytes, or a function that writes the file at the path it is given
            (for writers that only take a path, such as ``PIL.Image.save``).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Unique per writer, and keeps the target's suffix (Keras and PIL read the format from it).
    # Not tempfile.mkstemp: its files are private (0600), and run directories are shared.
    partial = os.path.join(folder, f".partial-{os.getpid()}-{secrets.token_hex(4)}-{os.path.basename(path)}")
    try:
        if callable(content):
            content(partial)
        else:
            with open(partial, "xb" if isinstance(content, bytes) else "x") as f:
                f.write(content)
        replace_durably(partial, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(partial)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise WriteError(err.errno, f"could not write {path}: {err.strerror or err}") from err  # noqa: B904
        raise


def write_json_atomic(path: str, obj: Any, **dump_args) -> None:
    """`json.dump(obj)` to `path` through `write_atomic`; `dump_args` go to `json.dumps`."""
    write_atomic(path, json.dumps(obj, **dump_args))
