"""The one place tfresnet touches KerasTuner internals, so a KerasTuner upgrade breaks here only.

Making a search resumable after kill -9, bounded in time and distributed needs what KerasTuner
keeps out of its public API (``keras_tuner.*`` outside ``keras_tuner.src``): the oracle's state
files and retry queue, its lock, the gRPC oracle service and client, and the conversion of a
search space to TensorBoard HParams domains. Each function below says why no public API serves;
all were checked against KerasTuner 1.4.8 (`CHECKED_KERAS_TUNER_VERSION`; setup.cfg and
`tfresnet.tuning.TESTED_KERAS_TUNER` allow 1.4.x only).

`tfresnet.tuning.tuners` also overrides private hook methods of KerasTuner's `Oracle` and
`Tuner` (`OVERRIDDEN_HOOKS`): a subclass can only replace them by name, so they stay there;
``tests/tuning/test_kt_compat.py`` fails if a KerasTuner release drops one, which would otherwise
silently bypass the override.
"""

from __future__ import annotations

import threading

__all__ = [
    "CHECKED_KERAS_TUNER_VERSION",
    "OVERRIDDEN_HOOKS",
    "oracle_lock",
    "oracle_file",
    "trial_dir",
    "retry_queue",
    "set_retry_queue",
    "is_worker",
    "add_oracle_service",
    "set_rpc_timeout",
    "hparams_domains",
]

CHECKED_KERAS_TUNER_VERSION = "1.4.8"

# Private methods `tfresnet.tuning.tuners` overrides, by the KerasTuner class that defines them
# (KerasTuner 1.4.8): why each is overridden is said at the override.
OVERRIDDEN_HOOKS = {
    "Oracle": ("_save_trial", "_check_consecutive_failures"),
    "Tuner": ("_populate_initial_space", "_get_tuner_fname"),
}


def oracle_lock(oracle) -> threading.Lock:
    """The lock `keras_tuner.synchronized` holds around an oracle's calls.

    The decorator is public, the lock it takes is not (``keras_tuner.src.engine.oracle.LOCKS``,
    one per oracle): a caller that must not wait forever needs it to acquire with a timeout.
    """
    from keras_tuner.src.engine.oracle import LOCKS

    return LOCKS[oracle]


def oracle_file(oracle) -> str:
    """The path of the oracle's state file, ``PROJECT_DIR/oracle.json`` (``_get_oracle_fname``).

    KerasTuner saves and reloads it only as a whole; writing it atomically needs its path.
    """
    return oracle._get_oracle_fname()


def trial_dir(oracle, trial_id: str) -> str:
    """A trial's folder, ``PROJECT_DIR/trial_ID``, created if missing (``_get_trial_dir``).

    The tuner's public `get_trial_dir` has the same path, but the oracle has no tuner.
    """
    return oracle._get_trial_dir(trial_id)


def retry_queue(oracle) -> list[str]:
    """The ids of the trials the oracle hands out again before new ones (``_retry_queue``).

    KerasTuner fills it on `reload` and on ``end_trial(status="INVALID")`` only; repairing a
    search after a kill and re-queueing a dead worker's trial need to read and extend it.
    The list returned is the oracle's own.
    """
    return oracle._retry_queue


def set_retry_queue(oracle, trial_ids: list[str]) -> None:
    """Replaces the oracle's retry queue (see `retry_queue`)."""
    oracle._retry_queue = trial_ids


def is_worker(tuner) -> bool:
    """Whether `tuner` is a worker of a distributed search (``BaseTuner._is_worker``).

    KerasTuner decides it from its environment variables; asking the tuner keeps the two in step.
    """
    return tuner._is_worker()


def add_oracle_service(server, oracle):
    """Serves `oracle` over gRPC on `server` as KerasTuner's chief does; returns the servicer.

    The public way, a chief's `search`, runs ``oracle_chief.start_server``, which blocks until
    the search ends and never gives up on a dead worker; the service itself (``OracleServicer``,
    whose ``stop_triggered`` says a tuner was told the search is over) and its generated gRPC
    code are private.
    """
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    return servicer


def set_rpc_timeout(seconds: float) -> None:
    """Bounds each gRPC call of a worker's oracle client to `seconds`.

    KerasTuner's client waits up to an hour for each call, a module constant
    (``keras_tuner.src.distribute.oracle_client.TIMEOUT``) with no argument to change it.
    """
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = seconds


def hparams_domains(space, hparams_api) -> list:
    """TensorBoard HParams for a search space's hyperparameters, as KerasTuner logs its trials.

    KerasTuner's TensorBoard callback logs each trial's values with this private conversion
    (``keras_tuner.src.engine.tuner_utils.convert_hyperparams_to_hparams``); the experiment's
    domains must use the same one for TensorBoard to match them.
    """
    from keras_tuner.src.engine import tuner_utils

    return list(tuner_utils.convert_hyperparams_to_hparams(space, hparams_api))
