"""Multi-worker training with `tf.distribute.MultiWorkerMirroredStrategy`, on one machine or many.

TensorFlow's convention: every worker runs the same program; the ``TF_CONFIG`` environment
variable gives the cluster (``{"cluster": {"worker": ["host0:port", "host1:port"]}, "task":
{"type": "worker", "index": 0}}``) and which task this process is. Each step, every worker
computes the gradient of its share of the global batch and the gradients are summed across
workers (all-reduce), so all workers hold the same weights.

Following the Keras multi-worker guide, only the chief (task ``chief``, else worker 0) writes the
run directory; the other workers write the same files to a temporary folder that is removed when
they finish (`own_dir`). ``config.batch_size`` is the *global* batch: the training pipeline is
sharded by data (`shard_by_data`), so each global batch is split across the workers and no
example is seen twice in an epoch.

`launch` starts N local workers on free loopback ports (``tfresnet train RECIPE --workers N``),
for trying and testing; it never waits forever: when a worker dies (kill -9 included) the others
are stopped after `grace_s` seconds and the run can be continued with ``--resume``. A worker that
loses its peers on its own (machines apart) fails once a collective operation waits longer than
``$TFRESNET_COLLECTIVE_TIMEOUT`` seconds (`COLLECTIVE_TIMEOUT_S` unless set).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

from tfresnet import subprocesses
from tfresnet.runs import RunDir
from tfresnet.training.config import ConfigError

__all__ = ["ENV_TF_CONFIG", "ENV_COLLECTIVE_TIMEOUT", "ENV_PARENT_PID", "COLLECTIVE_TIMEOUT_S",
           "Task", "task", "writes_run_dir", "make_strategy", "shard_by_data", "own_dir",
           "free_ports", "tf_configs", "guard_parent", "launch", "WorkerFailedError"]

ENV_TF_CONFIG = "TF_CONFIG"
ENV_COLLECTIVE_TIMEOUT = "TFRESNET_COLLECTIVE_TIMEOUT"
ENV_PARENT_PID = "TFRESNET_WORKERS_PARENT_PID"  # set for local workers: exit when the launcher dies

# Long enough for the chief's end-of-epoch work (backup, checkpoint, validation) that the other
# workers wait for at their next all-reduce, short enough that a lost peer ends the run.
COLLECTIVE_TIMEOUT_S = 300.0

# What a run directory holds that a resumed non-chief worker needs to start where the chief does.
_RESUME_STATE = (RunDir.CONFIG, RunDir.HISTORY, RunDir.PHASES, RunDir.BACKUP, os.path.dirname(RunDir.BEST))


class WorkerFailedError(RuntimeError):
    """A local worker failed, so the multi-worker run stopped."""


@dataclasses.dataclass(frozen=True)
class Task:
    """This process' place in the cluster of ``TF_CONFIG``."""

    type: str | None
    index: int
    workers: int  # chief included
    _has_chief: bool = False  # a "chief" task besides the workers, else worker 0 is the chief

    @property
    def is_chief(self) -> bool:
        return self.type in (None, "chief") or (self.type == "worker" and self.index == 0
                                                and not self._has_chief)


def task() -> Task:
    """This process' task from ``TF_CONFIG`` (a single worker when it is unset).

    Raises:
        ConfigError: if ``TF_CONFIG`` is not JSON with ``cluster`` and ``task`` entries.
    """
    text = os.environ.get(ENV_TF_CONFIG, "").strip()
    if not text:
        return Task(None, 0, 1)
    try:
        spec = json.loads(text)
        cluster, entry = spec["cluster"], spec.get("task", {})
        kind, index = entry.get("type"), int(entry.get("index", 0))
        workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(
            f"TF_CONFIG must be JSON like {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, "
            f"\"task\": {{\"type\": \"worker\", \"index\": 0}}}} ({type(err).__name__}: {err}). "
            f"Received TF_CONFIG={text[:200]!r}") from None
    if kind not in (None, "chief", "worker"):
        raise ConfigError(f"TF_CONFIG task type must be 'chief' or 'worker' for training. "
                          f"Received {kind!r}")
    return Task(kind, index, workers, _has_chief=bool(cluster.get("chief")))


def writes_run_dir(config) -> bool:
    """Whether this process writes the run directory: always, except a non-chief worker."""
    return config.strategy != "multiworker" or task().is_chief


def collective_timeout() -> float:
    """Seconds a collective operation may wait for its peers (``$TFRESNET_COLLECTIVE_TIMEOUT``)."""
    text = os.environ.get(ENV_COLLECTIVE_TIMEOUT, "")
    try:
        value = float(text) if text else COLLECTIVE_TIMEOUT_S
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"{ENV_COLLECTIVE_TIMEOUT} must be a number of seconds > 0. "
                          f"Received {text!r}")
    return value


def make_strategy():
    """`MultiWorkerMirroredStrategy` from ``TF_CONFIG``, its collectives bounded in time."""
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout())
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def shard_by_data(dataset):
    """`dataset` sharded by element across workers, not by file.

    The pipelines read one file (MNIST's npz) or shuffle file names themselves, so sharding by
    file would give some workers nothing; by data, each global batch is split between the
    workers.
    """
    if dataset is None:
        return None
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@contextlib.contextmanager
def own_dir(config, run_dir: str | None, *, resume: bool):
    """The folder this process writes: `run_dir`, or a temporary one for a non-chief worker.

    A non-chief worker's folder is removed at the end. When resuming, it starts with a copy of
    the chief's backups and finished phases, so every worker restarts at the same epoch with the
    same weights: `run_dir` must then be readable by every worker (one machine, or a shared file
    system).
    """
    if writes_run_dir(config):
        yield run_dir
        return
    scratch = tempfile.mkdtemp(prefix=f"tfresnet-worker{task().index}-")
    try:
        if resume and run_dir:
            for name in _RESUME_STATE:
                source = os.path.join(run_dir, name)
                with contextlib.suppress(FileNotFoundError):  # not every run has every file
                    if os.path.isdir(source):
                        shutil.copytree(source, os.path.join(scratch, name))
                    else:
                        shutil.copy2(source, scratch)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free on `host` now (the OS picks them)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_configs(count: int, host: str = "127.0.0.1") -> list[str]:
    """One ``TF_CONFIG`` per worker of a `count`-worker cluster on `host`; worker 0 is the chief."""
    workers = [f"{host}:{port}" for port in free_ports(count, host)]
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
            for i in range(count)]


def guard_parent(env_var: str = ENV_PARENT_PID) -> None:
    """A local worker exits within a second of its launcher's death (kill -9 included).

    Args:
        env_var: the environment variable that holds the launcher's pid (set for the workers it
            starts); without it, nothing is guarded. `tfresnet.tuning.distributed` passes its own.
    """
    parent = os.environ.get(env_var)
    if not parent:
        return

    def watch():
        while True:
            if os.getppid() != int(parent):
                os._exit(70)  # nobody left to collect this worker's result
            time.sleep(1.0)

    threading.Thread(target=watch, name="tfresnet-parent-watch", daemon=True).start()


def launch(command: list[str], count: int, *, log_dir: str, grace_s: float = 30.0,
           poll_s: float = 0.5) -> dict:
    """Runs `command` as `count` workers of one cluster on this machine, until all end.

    Worker 0 (the chief) writes to this process' stdout and stderr; worker K's output goes to
    ``log_dir/workerK.log``. Each worker gets its ``TF_CONFIG`` and a share of the CPU threads.

    Args:
        command: the command every worker runs (``tfresnet train ...`` without ``--workers``).
        count: the number of workers, >= 2.
        log_dir: folder for the non-chief workers' logs and ``workers.json`` (their pids).
        grace_s: seconds the others get to end by themselves once one has failed, before they
            are stopped.
        poll_s: seconds between checks.

    Returns:
        ``{"workers": {index: exit code}, "pids": {index: pid}}`` when all exited with 0.

    Raises:
        WorkerFailedError: when a worker failed or was killed, after the others have ended.
    """
    if count < 2:
        raise ValueError(f"--workers must be >= 2 (1 is a plain run). Received {count}")
    os.makedirs(log_dir, exist_ok=True)
    threads = subprocesses.thread_share(count)
    children = [(str(index), {ENV_TF_CONFIG: tf_config, ENV_PARENT_PID: str(os.getpid())},
                 None if index == 0 else os.path.join(log_dir, f"worker{index}.log"))
                for index, tf_config in enumerate(tf_configs(count))]
    with subprocesses.running(command, children, env_defaults={
            "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads}) as workers:
        subprocesses.write_pids(os.path.join(log_dir, "workers.json"), workers, launcher=os.getpid())
        failed = subprocesses.watch(workers, grace_s=grace_s, poll_s=poll_s)
    if failed is not None:
        tail = failed.log_tail()
        raise WorkerFailedError(
            f"worker {failed.name} {failed.describe_exit()}; the other workers were stopped. "
            f"Continue the run with --resume RUN_DIR --workers {count}."
            + (f" Its log ({failed.log_path}) ends:\n{tail}" if tail else ""))
    return {"workers": {int(w.name): w.returncode for w in workers},
            "pids": {int(w.name): w.pid for w in workers}}


class WorkerLostError(RuntimeError):
    """A multi-worker run lost a peer: a collective operation failed or timed out."""


def lost_peer(err: BaseException, config) -> WorkerLostError | None:
    """`err` as a `WorkerLostError` when it means a peer of this multi-worker run is gone."""
    if config.strategy != "multiworker" or "tensorflow" not in sys.modules:
        return None
    import tensorflow as tf

    lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
            tf.errors.CancelledError)
    if not isinstance(err, lost):
        return None
    # TensorFlow's message is a whole graph dump; its last line names the cause.
    lines = [line for line in str(err).splitlines() if line.strip()]
    cause = next((line for line in lines if "unhealthy" in line or "timed out" in line.lower()
                  or "deadline" in line.lower()), lines[-1] if lines else type(err).__name__)
    return WorkerLostError(
        f"worker {task().index} lost its peers ({type(err).__name__}: {cause.strip()}); the last "
        f"epoch backup is kept: continue with --resume RUN_DIR (and the same TF_CONFIG, or "
        f"--workers N).")
