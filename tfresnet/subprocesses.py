"""Child processes of tfresnet's launchers (local multi-worker training, local tuning workers).

Both launchers start N copies of one command, each with a few environment variables of its own
and its output in ``LOG_DIR/NAME.log``, record their pids in ``workers.json``, watch them, and
never leave one behind: `running` stops every child still alive when its block ends, by an
error or Ctrl-C too. What a child's exit means differs (a training worker's failure ends the run;
a tuning worker's gives its trial back to the queue), so each launcher keeps its own watch loop;
`watch` is the training one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence

from tfresnet.files import write_json_atomic

__all__ = ["Child", "thread_share", "spawn", "running", "write_pids", "watch", "stop"]

_LOG_TAIL_CHARS = 2000
STOP_GRACE_S = 10.0  # seconds a child told to stop (SIGTERM) gets before it is killed


@dataclasses.dataclass
class Child:
    """A child process: its name (``1``, ``tuner0``), the process and its log (None: it writes
    to the launcher's own stdout and stderr)."""

    name: str
    process: subprocess.Popen
    log_path: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        return self.process.poll()

    def describe_exit(self) -> str:
        """``exited with code 3`` or ``was killed by signal 9 (SIGKILL)``."""
        code = self.process.returncode
        if code is not None and code < 0:
            return f"was killed by signal {-code} ({signal.Signals(-code).name})"
        return f"exited with code {code}"

    def log_tail(self) -> str:
        """The last characters of its log ('' without one)."""
        if self.log_path is None:
            return ""
        with contextlib.suppress(OSError), open(self.log_path, errors="replace") as f:
            return f.read()[-_LOG_TAIL_CHARS:]
        return ""


def thread_share(count: int) -> str:
    """This machine's cores shared by `count` children (at least 1 each).

    Without a limit each child's TensorFlow takes every core, and N children then fight.
    """
    return str(max(1, (os.cpu_count() or 1) // count))


def spawn(command: list[str], children: Sequence[tuple[str, dict[str, str], str | None]], *,
          env_defaults: dict[str, str] | None = None) -> list[Child]:
    """Starts one process of `command` per ``(name, environment, log path)`` in `children`.

    Each gets this process' environment, then `env_defaults` where the environment does not set
    them, then its own variables; stdin is closed. A child with a log path writes stdout and
    stderr there (the folder is made); one with None shares this process' output. If a start
    fails, those already started are stopped before the error is raised.
    """
    started: list[Child] = []
    try:
        for name, variables, log_path in children:
            env = {**(env_defaults or {}), **os.environ, **variables}
            if log_path is None:
                process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
            else:
                os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
                with open(log_path, "w") as log:
                    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL)
            started.append(Child(name, process, log_path))
    except BaseException:
        stop(started)
        raise
    return started


@contextlib.contextmanager
def running(command: list[str], children: Sequence[tuple[str, dict[str, str], str | None]], *,
            env_defaults: dict[str, str] | None = None, grace_s: float = STOP_GRACE_S) -> Iterator[list[Child]]:
    """`spawn` for the block: whatever ends it (a return, an error, Ctrl-C), no child outlives it."""
    started = spawn(command, children, env_defaults=env_defaults)
    try:
        yield started
    finally:
        stop(started, grace_s)


def write_pids(path: str, children: Sequence[Child], **facts) -> None:
    """``workers.json``: `facts` (the launcher's pid, a port) and ``{"workers": {name: pid}}``."""
    write_json_atomic(path, {**facts, "workers": {child.name: child.pid for child in children}})


def watch(children: Sequence[Child], *, grace_s: float, poll_s: float = 0.5) -> Child | None:
    """Waits until every child has exited, or the first has failed; returns that one (or None).

    Once one fails (a nonzero exit, a signal), the others get `grace_s` seconds to end by
    themselves (a peer that notices the loss saves what it can), then they are stopped.
    """
    failed = None
    while any(child.poll() is None for child in children):
        failed = next((child for child in children if child.poll() not in (None, 0)), None)
        if failed is not None:
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and any(child.poll() is None for child in children):
                time.sleep(poll_s)
            break
        time.sleep(poll_s)
    stop(children)
    return failed or next((child for child in children if child.returncode != 0), None)


def stop(processes: Sequence[Child | subprocess.Popen], grace_s: float = STOP_GRACE_S) -> None:
    """Terminates the processes still running, then kills those not gone within `grace_s` seconds.

    SIGTERM first lets a worker end its epoch's writes; one that ignores it past the grace period
    is killed, so a launcher never hangs on a stuck child.
    """
    processes = [p.process if isinstance(p, Child) else p for p in processes]
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
