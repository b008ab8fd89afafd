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

import os
import sys
import time

from tfresnet import subprocesses
from tfresnet.training import multiworker
from tfresnet.training.config import ConfigError
from tfresnet.tuning import kt_compat

__all__ = [
    "ENV_TUNER_ID", "ENV_ORACLE_IP", "ENV_ORACLE_PORT", "ENV_PARENT_PID",
    "SearchTimeoutError", "WorkersExitedError", "role", "serve", "guard_worker",
]

ENV_TUNER_ID = "KERASTUNER_TUNER_ID"
ENV_ORACLE_IP = "KERASTUNER_ORACLE_IP"
ENV_ORACLE_PORT = "KERASTUNER_ORACLE_PORT"
ENV_PARENT_PID = "TFRESNET_TUNE_PARENT_PID"  # set for local workers: exit when the chief dies

class SearchTimeoutError(TimeoutError):
    """The search did not finish within its time limit."""


class WorkersExitedError(RuntimeError):
    """Every worker exited before the search was done."""


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


def _workers(count: int, ip: str, port: int, log_dir: str) -> list[tuple[str, dict[str, str], str]]:
    """`subprocesses.spawn`'s list for `count` local workers of the chief at ``ip:port``."""
    variables = {ENV_ORACLE_IP: ip, ENV_ORACLE_PORT: str(port), ENV_PARENT_PID: str(os.getpid())}
    return [(f"tuner{index}", {**variables, ENV_TUNER_ID: f"tuner{index}"},
             os.path.join(log_dir, f"tuner{index}.log")) for index in range(count)]


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
    children = _workers(workers, _connect_ip(address), port, log_dir) if workers else []
    env_defaults = {"TF_NUM_INTRAOP_THREADS": subprocesses.thread_share(max(1, workers)),
                    "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        with subprocesses.running(worker_command, children, env_defaults=env_defaults) as started:
            if started:
                subprocesses.write_pids(os.path.join(log_dir, "workers.json"), started,
                                        chief=os.getpid(), port=port)
            requeued = _watch(oracle, servicer, started, log_dir=log_dir, timeout=timeout, poll_s=poll_s)
    finally:
        server.stop(grace=1).wait()
    return {"port": port, "workers": {w.name: w.returncode for w in started}, "requeued": requeued}


def _watch(oracle, servicer, started: list[subprocesses.Child], *, log_dir: str, timeout: float | None,
           poll_s: float) -> list[str]:
    """`serve`'s loop, until the search is done; returns the ids of the trials given back."""
    deadline = None if timeout is None else time.monotonic() + timeout
    requeued: list[str] = []
    released: set[str] = set()
    while True:
        # `stop_triggered`: some tuner was told the search is over; `finished`: none is busy.
        if servicer.stop_triggered and oracle.finished():
            return requeued
        for worker in started:
            if worker.poll() is not None and worker.name not in released:
                released.add(worker.name)
                trial_id = oracle.release_tuner(worker.name)
                if trial_id is not None:
                    requeued.append(trial_id)
                    print(f"Worker {worker.name} exited with code {worker.returncode} while running "
                          f"trial {kt_compat.trial_number(trial_id)}; the trial goes back to the "
                          f"queue. Its log ends:\n{worker.log_tail()}", file=sys.stderr)
        if started and len(released) == len(started) and not (servicer.stop_triggered and oracle.finished()):
            tails = "\n".join(f"--- {w.name} (exit code {w.returncode}):\n{w.log_tail()}" for w in started)
            raise WorkersExitedError(
                f"All {len(started)} workers exited before the search was done; run the same "
                f"command again to continue it. Logs in {log_dir}.\n{tails}")
        if deadline is not None and time.monotonic() > deadline:
            raise SearchTimeoutError(
                f"The search did not finish within {timeout:g} s; run the same command again "
                f"to continue it.")
        time.sleep(poll_s)


def guard_worker(rpc_timeout: float) -> None:
    """Bounds a worker's waits: gRPC calls time out after `rpc_timeout` seconds, and a local
    worker exits when the chief that started it is gone."""
    kt_compat.set_rpc_timeout(rpc_timeout)  # KerasTuner's client waits up to an hour for each call
    multiworker.guard_parent(ENV_PARENT_PID)
