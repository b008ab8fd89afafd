"""Distributed search: KerasTuner's chief/worker mode, on one machine or many, bounded in time.

KerasTuner's convention: every process runs the same command; ``KERASTUNER_TUNER_ID`` says which
one it is (``chief`` runs the oracle, ``tuner0``, ``tuner1``, ... run trials) and
``KERASTUNER_ORACLE_IP`` / ``KERASTUNER_ORACLE_PORT`` say where the chief's gRPC oracle listens.
Workers ask the oracle for a trial, train it and report back; the oracle's state (and every trial's
checkpoint) lives in the run directory, which all processes must share.

`serve` is the chief: it runs the oracle's gRPC server in this process and, for
``tfresnet tune --workers N``, starts N local workers on 127.0.0.1 (a port the OS picks), with
their output in ``RUN_DIR/logs/tunerK.log``. It returns once every trial has ended and every
worker was told to stop. It never waits forever:

- a worker that exits while running a trial gives that trial back to the queue (another worker
  runs it); if every worker has exited before the search is done, `WorkersExitedError`;
- past `timeout` seconds, `SearchTimeoutError`, and the workers are stopped;
- a worker whose parent (the chief) dies exits within a second (`guard_worker`), and its gRPC
  calls time out after `rpc_timeout` seconds instead of KerasTuner's hour.

Both errors leave the search resumable: the same command continues it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

from tfresnet import subprocesses
from tfresnet.training import multiworker
from tfresnet.training.config import ConfigError
from tfresnet.tuning import kt_compat

__all__ = [
    "ENV_TUNER_ID", "ENV_ORACLE_IP", "ENV_ORACLE_PORT", "ENV_PARENT_PID",
    "SearchTimeoutError", "WorkersExitedError", "Worker", "role", "serve", "guard_worker",
]

ENV_TUNER_ID = "KERASTUNER_TUNER_ID"
ENV_ORACLE_IP = "KERASTUNER_ORACLE_IP"
ENV_ORACLE_PORT = "KERASTUNER_ORACLE_PORT"
ENV_PARENT_PID = "TFRESNET_TUNE_PARENT_PID"  # set for local workers: exit when the chief dies

_LOG_TAIL_CHARS = 2000


class SearchTimeoutError(TimeoutError):
    """The search did not finish within its time limit."""


class WorkersExitedError(RuntimeError):
    """Every worker exited before the search was done."""


@dataclasses.dataclass
class Worker:
    """A local worker process."""

    tuner_id: str
    process: subprocess.Popen
    log_path: str

    def log_tail(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-_LOG_TAIL_CHARS:]
        except OSError:
            return ""


def role() -> str:
    """This process' part, from KerasTuner's environment: ``single``, ``chief`` or ``worker``."""
    if ENV_ORACLE_IP not in os.environ:
        return "single"
    missing = [name for name in (ENV_ORACLE_PORT, ENV_TUNER_ID) if name not in os.environ]
    if missing:
        raise ConfigError(f"{ENV_ORACLE_IP} is set but {' and '.join(missing)} is not; "
                         "a distributed search needs all three.")
    return "chief" if "chief" in os.environ[ENV_TUNER_ID] else "worker"


def _start_server(oracle, address: str):
    """Starts KerasTuner's gRPC oracle service for `oracle`; returns (server, servicer, port)."""
    from concurrent import futures

    import grpc

    # One thread, as KerasTuner's own chief: the oracle's lock is per thread name.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = kt_compat.add_oracle_service(server, oracle)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as err:  # grpcio raises for an address it cannot bind
        raise OSError(f"The oracle cannot listen on {address}: {err}") from None
    if not port:
        raise OSError(f"The oracle cannot listen on {address}.")
    server.start()
    return server, servicer, port


def _connect_ip(address: str) -> str:
    """Where a local worker reaches a chief listening on `address` (``IP:PORT``)."""
    ip = address.rsplit(":", 1)[0].strip("[]")
    return "127.0.0.1" if ip in ("", "0.0.0.0", "::") else ip


def _spawn(count: int, command: list[str], ip: str, port: int, log_dir: str) -> list[Worker]:
    os.makedirs(log_dir, exist_ok=True)
    # Without a limit each worker's TensorFlow takes every core; N workers would then fight.
    threads = str(max(1, (os.cpu_count() or 1) // count))
    workers = []
    for index in range(count):
        tuner_id = f"tuner{index}"
        env = dict(os.environ)
        env.update({ENV_TUNER_ID: tuner_id, ENV_ORACLE_IP: ip, ENV_ORACLE_PORT: str(port),
                    ENV_PARENT_PID: str(os.getpid())})
        env.setdefault("TF_NUM_INTRAOP_THREADS", threads)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        log_path = os.path.join(log_dir, f"{tuner_id}.log")
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        workers.append(Worker(tuner_id, process, log_path))
    return workers


def _stop(workers: list[Worker], grace_s: float = 10.0) -> None:
    subprocesses.stop([worker.process for worker in workers], grace_s)


def serve(
    oracle,
    *,
    address: str,
    workers: int = 0,
    worker_command: list[str] | None = None,
    log_dir: str,
    timeout: float | None = None,
    poll_s: float = 0.5,
) -> dict:
    """Runs `oracle` as the chief of a distributed search until the search is done.

    Args:
        oracle: a `tfresnet.tuning.tuners.ResumableOracle` (a reloaded search continues).
        address: ``IP:PORT`` to listen on; port 0 lets the OS pick a free one.
        workers: local worker processes to start (0 when they run on other machines).
        worker_command: the command each local worker runs (with KerasTuner's environment set).
        log_dir: where local workers' output and ``workers.json`` (their pids) go.
        timeout: seconds before giving up; None waits as long as workers are alive (or, with
            only remote workers, forever).
        poll_s: seconds between checks.

    Returns:
        ``{"port": ..., "workers": {tuner_id: exit code}, "requeued": [trial ids]}``.

    Raises:
        SearchTimeoutError: past `timeout`.
        WorkersExitedError: if every local worker exited before the search was done.
        OSError: if `address` cannot be listened on.
    """
    if workers and not worker_command:
        raise ValueError("Local workers need worker_command.")
    server, servicer, port = _start_server(oracle, address)
    started = _spawn(workers, worker_command, _connect_ip(address), port, log_dir) if workers else []
    if started:
        with open(os.path.join(log_dir, "workers.json"), "w") as f:
            json.dump({"chief": os.getpid(), "port": port,
                       "workers": {w.tuner_id: w.process.pid for w in started}}, f)
    deadline = None if timeout is None else time.monotonic() + timeout
    requeued: list[str] = []
    released: set[str] = set()
    try:
        while True:
            # `stop_triggered`: some tuner was told the search is over; `finished`: none is busy.
            if servicer.stop_triggered and oracle.finished():
                break
            for worker in started:
                if worker.process.poll() is not None and worker.tuner_id not in released:
                    released.add(worker.tuner_id)
                    trial_id = oracle.release_tuner(worker.tuner_id)
                    if trial_id is not None:
                        requeued.append(trial_id)
                        print(f"Worker {worker.tuner_id} exited with code {worker.process.returncode} "
                              f"while running trial {trial_id}; the trial goes back to the queue. "
                              f"Its log ends:\n{worker.log_tail()}", file=sys.stderr)
            if started and len(released) == len(started) and not (servicer.stop_triggered and oracle.finished()):
                tails = "\n".join(f"--- {w.tuner_id} (exit code {w.process.returncode}):\n{w.log_tail()}"
                                  for w in started)
                raise WorkersExitedError(
                    f"All {len(started)} workers exited before the search was done; run the same "
                    f"command again to continue it. Logs in {log_dir}.\n{tails}")
            if deadline is not None and time.monotonic() > deadline:
                raise SearchTimeoutError(
                    f"The search did not finish within {timeout:g} s; run the same command again "
                    f"to continue it.")
            time.sleep(poll_s)
    finally:
        _stop(started)
        server.stop(grace=1).wait()
    return {"port": port, "workers": {w.tuner_id: w.process.returncode for w in started},
            "requeued": requeued}


def guard_worker(rpc_timeout: float) -> None:
    """Bounds a worker's waits: gRPC calls time out after `rpc_timeout` seconds, and a local
    worker exits when the chief that started it is gone."""
    kt_compat.set_rpc_timeout(rpc_timeout)  # KerasTuner's client waits up to an hour for each call
    multiworker.guard_parent(ENV_PARENT_PID)
