"""`tfresnet.tuning.kt_compat`: the KerasTuner internals the search relies on are still there."""

from __future__ import annotations

import inspect
import pathlib

import keras_tuner as kt

import tfresnet
from tfresnet.tuning import kt_compat, tuners

KERAS_TUNER_CLASSES = {"Oracle": kt.Oracle, "Tuner": kt.Tuner}


def test_every_overridden_private_hook_is_still_called_by_that_name():
    # A hook KerasTuner renamed would no longer be called: the override would silently do nothing.
    for class_name, hooks in kt_compat.OVERRIDDEN_HOOKS.items():
        for hook in hooks:
            assert inspect.isfunction(getattr(KERAS_TUNER_CLASSES[class_name], hook, None)), \
                f"keras_tuner.{class_name}.{hook} is gone (KerasTuner {kt.__version__})"


def test_overridden_hooks_lists_every_private_keras_tuner_method_tfresnet_replaces():
    ours = {"Oracle": tuners.ResumableOracle, "Tuner": tuners._SearchTuner}
    for class_name, mixin in ours.items():
        replaced = {name for name in vars(mixin)
                    if name.startswith("_") and not name.startswith("__")
                    and hasattr(KERAS_TUNER_CLASSES[class_name], name)}
        assert replaced == set(kt_compat.OVERRIDDEN_HOOKS[class_name])


def test_only_kt_compat_imports_keras_tuner_private_modules():
    package = pathlib.Path(tfresnet.__file__).parent
    importers = sorted(str(path.relative_to(package)) for path in package.rglob("*.py")
                       if "keras_tuner.src" in path.read_text())
    assert importers == ["tuning/kt_compat.py"]


def test_the_oracle_internals_are_reachable(tiny_config, tmp_path):
    from tfresnet.tuning.hypermodel import ConfigHyperModel

    tuner = tuners.make_tuner("random", ConfigHyperModel(tiny_config()), str(tmp_path), max_trials=2,
                              objective=kt.Objective("val_accuracy", "max"), max_epochs=1)
    oracle = tuner.oracle
    trial = oracle.create_trial("tuner0")
    assert kt_compat.oracle_file(oracle) == str(tmp_path / tuners.PROJECT_NAME / "oracle.json")
    assert kt_compat.trial_dir(oracle, trial.trial_id) == tuner.get_trial_dir(trial.trial_id)
    assert kt_compat.retry_queue(oracle) == []
    kt_compat.set_retry_queue(oracle, [trial.trial_id])
    assert kt_compat.retry_queue(oracle) == [trial.trial_id]
    assert not kt_compat.is_worker(tuner)
    lock = kt_compat.oracle_lock(oracle)
    assert lock.acquire(timeout=1)  # free between calls: the lock `kt.synchronized` takes
    lock.release()


def test_the_worker_rpc_timeout_is_set():
    from keras_tuner.src.distribute import oracle_client

    before = oracle_client.TIMEOUT
    try:
        kt_compat.set_rpc_timeout(7.5)
        assert oracle_client.TIMEOUT == 7.5
    finally:
        oracle_client.TIMEOUT = before


def test_a_trial_run_again_keeps_its_number_in_the_log(tiny_config, tmp_path, capsys):
    import re

    from tfresnet.tuning.hypermodel import ConfigHyperModel

    tuner = tuners.make_tuner("random", ConfigHyperModel(tiny_config()), str(tmp_path), max_trials=3,
                              objective=kt.Objective("val_accuracy", "max"), max_epochs=1)
    oracle = tuner.oracle
    oracle.verbose = 1
    first, second = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    oracle.release_tuner("tuner0")  # its worker died: the trial goes back to the queue
    assert oracle.create_trial("tuner2").trial_id == first.trial_id
    # KerasTuner alone would number the trial run again by the count of trials: "#2".
    assert re.findall(r"Running Trial #(\d+)", capsys.readouterr().out) == ["1", "2", "1"]
    assert [kt_compat.trial_number(t.trial_id) for t in (first, second)] == [1, 2]


def test_the_display_writes_no_escape_codes_outside_a_notebook(capsys):
    from keras_tuner.src import utils

    with kt_compat.plain_display():
        utils.try_clear()  # what KerasTuner calls at the end of each trial
    out, err = capsys.readouterr()
    assert "\x1b[" not in out + err
