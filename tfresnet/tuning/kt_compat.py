"""The one place tfresnet touches KerasTuner internals, so a KerasTuner upgrade breaks here only.

Making a search resumable after kill -9, bounded in time and distributed needs what KerasTuner
keeps out of its public API (``keras_tuner.*`` outside ``keras_tuner.src``): the oracle's state
files and retry queue, its lock, the gRPC oracle service and client, the conversion of a
search space to TensorBoard HParams domains, and its console display (trial numbers, and the
notebook check that writes terminal escape codes into a log file). Each function below says why no public API serves;
all were checked against KerasTuner 1.4.8 (`CHECKED_KERAS_TUNER_VERSION`; setup.cfg and
`tfresnet.tuning.TESTED_KERAS_TUNER` allow 1.4.x only).

`tfresnet.tuning.tuners` also overrides private hook methods of KerasTuner's `Oracle` and
`Tuner` (`OVERRIDDEN_HOOKS`): a subclass can only replace them by name, so they stay there;
``tests/tuning/test_kt_compat.py`` fails if a KerasTuner release drops one, which would otherwise
silently bypass the override.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from datetime import datetime

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
    "trial_number",
    "number_trials_by_id",
    "plain_display",
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


def trial_number(trial_id: str) -> int:
    """The number KerasTuner's log gives a new trial ("Trial 1"), from its id (``"0"``, ``"00"``).

    KerasTuner makes a trial's id the count of the trials created before it, zero-padded to the
    width of ``max_trials`` (``Oracle.create_trial``); the log counts from 1.
    """
    return int(trial_id) + 1


def number_trials_by_id(oracle) -> None:
    """Makes the oracle's console log number every trial `trial_number(trial_id)`.

    KerasTuner's display (``oracle._display``, a private ``Display``) numbers a trial by the count
    of the oracle's trials when it begins: right for a new trial, but a trial run again (after a
    kill, or a dead worker's) would take the count of all trials, and disagree with the results.
    Its ``on_trial_begin`` is replaced on this oracle's display by the same output with that number.
    """
    display = oracle._display

    def on_trial_begin(trial):
        if display.verbose < 1:
            return
        started = datetime.now()
        display.trial_start[trial.trial_id] = started
        if display.search_start is None:
            display.search_start = started
        number = display.trial_number[trial.trial_id] = trial_number(trial.trial_id)
        print()
        print(f"Search: Running Trial #{number}")
        print()
        display.show_hyperparameter_table(trial)
        print()

    display.on_trial_begin = on_trial_begin


def _in_ipython_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "Terminal" not in type(shell).__name__


@contextlib.contextmanager
def plain_display():
    """KerasTuner's console log without terminal escape codes, for the block.

    KerasTuner takes any process that can import IPython for a notebook
    (``keras_tuner.src.utils.IS_NOTEBOOK``: outside IPython, ``get_ipython()`` is None, whose
    class name lacks "Terminal"), and at each trial's end clears the "cell" with IPython's
    ``clear_output``, which outside a kernel prints ``ESC[2K`` to stdout and stderr: into a log
    file too. In the block only a running IPython kernel counts as a notebook (there
    ``clear_output`` clears the cell and writes no escape codes); elsewhere KerasTuner prints an
    empty line instead, its own terminal behaviour.
    """
    from keras_tuner.src import utils

    before = utils.IS_NOTEBOOK
    utils.IS_NOTEBOOK = before and _in_ipython_kernel()  # never on: `utils.display` may be missing
    try:
        yield
    finally:
        utils.IS_NOTEBOOK = before
