"""Files written so that a reader, a parallel loader or a kill never sees half of one.

One helper for the whole package (run directories, tuner state, the image-check cache,
benchmark results): write under a unique temporary name beside the target, fsync, rename
(atomic on POSIX), then fsync the folder so the rename itself survives a power cut.
`replace_dir_atomic` does the same for a whole folder (a SavedModel), whose files then get the
modes the umask gives any new file, whatever the writer made them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["WriteError", "DISK_FULL", "write_error", "write_atomic", "write_json_atomic", "fsync_dir",
           "replace_durably", "umask", "apply_umask", "replacing_dir", "replace_dir_atomic"]


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
            raise WriteError(err.errno, f"could not write {path}: {err.strerror or err}") from err
        raise


def write_json_atomic(path: str, obj: Any, **dump_args) -> None:
    """`json.dump(obj)` to `path` through `write_atomic`; `dump_args` go to `json.dumps`."""
    write_atomic(path, json.dumps(obj, **dump_args))


def umask() -> int:
    """The process' umask, read without changing it where Linux says it (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError, StopIteration), open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and put back at once (not thread-safe)
    os.umask(mask)
    return mask


def apply_umask(path: str) -> None:
    """Gives `path`, and everything under it for a folder, the modes the umask gives new files.

    Folders get ``0o777 & ~umask`` and files ``0o666 & ~umask``, as `os.mkdir` and `open` make
    them: a writer that chose its own (``tempfile``'s private 0600/0700, TensorFlow's 0755
    folders) is brought in line with every other file.
    """
    mask = umask()
    dir_mode, file_mode = 0o777 & ~mask, 0o666 & ~mask
    if not os.path.isdir(path):
        os.chmod(path, file_mode)
        return
    os.chmod(path, dir_mode)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), dir_mode)
        for name in files:
            os.chmod(os.path.join(root, name), file_mode)


def _fsync_tree(path: str) -> None:
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb+") as f:
                os.fsync(f.fileno())
        fsync_dir(root)


def _swap_in(staged: str, path: str) -> None:
    """Renames the folder `staged` onto `path`; on failure, `path` keeps (or gets back) its old one."""
    previous = f"{staged}-previous"
    # Two renames, not one: a folder cannot replace a non-empty one in a single os.replace.
    if os.path.lexists(path):
        os.replace(path, previous)
    try:
        os.replace(staged, path)
    except BaseException:
        if os.path.lexists(previous):
            os.replace(previous, path)
        raise
    if os.path.isdir(previous) and not os.path.islink(previous):
        shutil.rmtree(previous, ignore_errors=True)
    elif os.path.lexists(previous):
        os.remove(previous)
    fsync_dir(os.path.dirname(path))


@contextlib.contextmanager
def replacing_dir(path: str) -> Iterator[str]:
    """Yields a new, empty folder beside `path` to write into; once written, it takes `path`'s place.

    The new folder is complete, with the umask's modes (`apply_umask`) and on disk (fsync), before
    it gets the name, and the previous one keeps the name until then: a block that fails leaves
    the previous folder as it was (and removes its own); one killed while writing leaves it too,
    beside a ``.partial-*`` folder (safe to delete). Only a kill in the instant between the two
    final renames leaves the previous folder under ``.partial-*-previous`` instead of its name.

    Raises:
        WriteError: when the disk refuses a write, naming `path`.
    """
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    # Named as write_atomic names its partial files; made by os.mkdir, so the umask decides its mode.
    staged = os.path.join(parent, f".partial-{os.getpid()}-{secrets.token_hex(4)}-{name}")
    os.mkdir(staged)
    try:
        yield staged
        apply_umask(staged)
        _fsync_tree(staged)
        _swap_in(staged, path)
    except BaseException as err:
        shutil.rmtree(staged, ignore_errors=True)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise WriteError(err.errno, f"could not write {path}: {err.strerror or err}") from err
        raise


def replace_dir_atomic(path: str, writer: Callable[[str], None]) -> None:
    """Writes the folder `path` all at once: ``writer(folder)`` fills a new folder beside it,
    which then replaces `path` (see `replacing_dir`; the previous folder is intact on failure)."""
    with replacing_dir(path) as staged:
        writer(staged)
