"""Trustworthy runs: kill -9 anywhere, corrupt backups, failed starts and two writers on one run dir.

The end-to-end test trains one tiny deterministic two-phase recipe (the MNIST ConvNet, 3 + 2
epochs of 12 batches) twice: once without interruption, once killed -9 in phase 1, between the
phases and in phase 2, with a corrupted phase file and a corrupted backup on the way, and a
second writer turned away. Both must end with the same history, epoch count and weights.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfresnet.runs import RunDirInUseError, new_run_dir
from tfresnet.runs import lock_dir as lock_run_dir
from tfresnet.training.callbacks import AtomicBackupAndRestore, make_callbacks
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.trainer import prepare_run_dir

ROOT = Path(__file__).resolve().parents[2]

TINY_RECIPE = '''"""A tiny deterministic two-phase run for the resume tests.

Run:
    python tiny_two_phase.py --run-dir RUN_DIR
"""

from tfresnet.training.cli import main
from tfresnet.training import TrainConfig


def get_config():
    return TrainConfig(
        model="convnet", dropout=0.5, data="mnist-sample", validation_split=0.05,
        augment="mnist-shift", batch_size=32, steps_per_epoch=12, epochs=3,
        fine_tune_epochs=2, fine_tune_from={"convnet": "block2_conv"}, fine_tune_lr=1e-4,
        deterministic=True, tensorboard=False, jit_compile=False, export=False, verbose=2,
    )


if __name__ == "__main__":
    raise SystemExit(main(get_config))
'''
EPOCHS = 5  # 3 + 2


def _env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def _start(recipe: Path, log: Path, *args: str) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, str(recipe), *args], stdout=out,
                                stderr=subprocess.STDOUT, env=_env(), cwd=recipe.parent)


def _wait_for(proc: subprocess.Popen, ready, what: str, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.01)


def _epoch_backups(run_dir: Path, phase: str) -> list[Path]:
    folder = run_dir / "backup" / phase
    return sorted(folder.glob("epoch-*.weights.h5")) if folder.is_dir() else []


def _layer_weights(path: Path) -> dict[str, np.ndarray]:
    arrays = {}
    with h5py.File(path, "r") as f:
        f["layers"].visititems(lambda name, item: arrays.__setitem__(name, item[()])
                               if isinstance(item, h5py.Dataset) else None)
    return arrays


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_phase_run_killed_three_times_ends_as_an_uninterrupted_one(tmp_path):
    recipe = tmp_path / "tiny_two_phase.py"
    recipe.write_text(TINY_RECIPE)
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    uninterrupted = _start(recipe, tmp_path / "reference.log", "--run-dir", str(reference))

    # 1. Killed in phase 1, after its first epoch's backup. While it is stopped (still holding
    # the run directory), a second writer is turned away naming it.
    log = tmp_path / "run1.log"
    first = _start(recipe, log, "--run-dir", str(killed))
    _wait_for(first, lambda: _epoch_backups(killed, "train"), "phase-1 backup", log)
    first.send_signal(signal.SIGSTOP)
    assert not (killed / "phases" / "train.weights.h5").exists(), "the kill should land in phase 1"
    second = subprocess.run([sys.executable, str(recipe), "--resume", str(killed)], env=_env(),
                            capture_output=True, text=True, timeout=180, check=False)
    assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
    assert f"in use by another process (pid {first.pid})" in second.stderr
    first.send_signal(signal.SIGKILL)
    first.wait()

    # 2. Killed between the phases: phase 1's file is written, phase 2 has no backup yet. Then
    # the phase file is truncated, as by a disk that lost its end.
    log = tmp_path / "run2.log"
    resumed = _start(recipe, log, "--resume", str(killed))
    phase_one = killed / "phases" / "train.weights.h5"
    _wait_for(resumed, phase_one.exists, "phase-1 file", log)
    resumed.send_signal(signal.SIGKILL)
    resumed.wait()
    assert not _epoch_backups(killed, "finetune"), "the kill should land between the phases"
    phase_one.write_bytes(phase_one.read_bytes()[:1000])

    # 3. Killed in phase 2, after its first epoch's backup; then that backup is garbage.
    log = tmp_path / "run3.log"
    resumed = _start(recipe, log, "--resume", str(killed))
    _wait_for(resumed, lambda: _epoch_backups(killed, "finetune"), "phase-2 backup", log)
    resumed.send_signal(signal.SIGKILL)
    resumed.wait()
    assert "phases/train.weights.h5 is unreadable" in log.read_text()
    assert (killed / "phases" / "train.weights.h5").exists()  # phase 1 trained again
    _epoch_backups(killed, "finetune")[-1].write_bytes(b"\x89HDF\r\n garbage")

    # 4. Resumed to the end.
    last = subprocess.run([sys.executable, str(recipe), "--resume", str(killed)], env=_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert last.returncode == 0, last.stdout[-3000:] + last.stderr[-3000:]
    assert "is unreadable" in last.stderr
    assert uninterrupted.wait(timeout=300) == 0, (tmp_path / "reference.log").read_text()[-3000:]

    want, got = pd.read_csv(reference / "history.csv"), pd.read_csv(killed / "history.csv")
    assert list(got["epoch"]) == list(range(EPOCHS))  # every epoch once, none twice
    pd.testing.assert_frame_equal(got, want, check_exact=True)  # deterministic: same losses
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (reference, killed)]
    assert metrics[0]["epochs_run"] == metrics[1]["epochs_run"] == EPOCHS
    for name in ("phases/finetune.weights.h5", "checkpoints/best.weights.h5"):
        a, b = _layer_weights(reference / name), _layer_weights(killed / name)
        assert a.keys() == b.keys() and a
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")


# --- the monitors' state ------------------------------------------------------------------------

class _Interrupt(keras.callbacks.Callback):
    """Raises at the start of an epoch, as a kill would end the process there."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class _Weights(keras.callbacks.Callback):
    """Records the weights at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = self.model.get_weights()


def _targets_by_epoch(targets: list[float]):
    """A dataset whose labels in epoch k are `targets[k]`: with a tiny learning rate, the loss
    of each epoch is about targets[k] ** 2, so a test chooses which epochs improve."""
    epoch = {"n": -1}

    def batches():
        epoch["n"] += 1
        yield np.ones((8, 2), "float32"), np.full((8, 1), targets[epoch["n"]], "float32")

    dataset = tf.data.Dataset.from_generator(
        batches, output_signature=(tf.TensorSpec((None, 2)), tf.TensorSpec((None, 1))))
    return dataset.apply(tf.data.experimental.assert_cardinality(1))


def _model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    return model


def test_resumed_checkpoint_and_early_stopping_keep_their_best(tmp_path):
    config = TrainConfig(monitor="loss", early_stopping=2, tensorboard=False)
    targets = [3.0, 1.0, 2.0, 1.5, 1.4, 1.3]  # best at epoch 1; epoch 3 beats nothing before it
    best = tmp_path / "checkpoints" / "best.weights.h5"

    first = _model()
    seen = _Weights()
    callbacks = make_callbacks(config, str(tmp_path), phase="train", has_validation=False)
    with pytest.raises(KeyboardInterrupt):  # killed once epoch 2 (no improvement) is backed up
        first.fit(_targets_by_epoch(targets), epochs=6, verbose=0, shuffle=False,
                  callbacks=[*callbacks, seen, _Interrupt(3)])
    saved_at = best.stat().st_mtime_ns

    # A new process: new model, new callbacks; the dataset skips to epoch 3's targets.
    resumed = _model()
    callbacks = make_callbacks(config, str(tmp_path), phase="train", has_validation=False)
    fit = resumed.fit(_targets_by_epoch(targets[3:]), epochs=6, verbose=0, shuffle=False, callbacks=callbacks)
    # Epoch 3 is worse than epoch 1: the best checkpoint stays, and it is the second epoch in
    # a row without improvement, so early stopping (patience 2) ends the run there ...
    assert fit.epoch == [3]
    assert best.stat().st_mtime_ns == saved_at
    # ... restoring the best epoch's weights, which it had saved before the kill.
    for a, b in zip(resumed.get_weights(), seen.by_epoch[1]):
        np.testing.assert_array_equal(a, b)


# --- corrupt backups ----------------------------------------------------------------------------

def test_an_unreadable_newest_backup_falls_back_to_the_one_before(tmp_path, capsys):
    backup = tmp_path / "backup"
    model = _model()
    seen = _Weights()
    model.fit(_targets_by_epoch([1.0] * 3), epochs=3, verbose=0, shuffle=False,
              callbacks=[seen, AtomicBackupAndRestore(str(backup), delete_checkpoint=False)])
    assert sorted(p.name for p in backup.iterdir()) == [  # the previous one is kept
        "epoch-000002.weights.h5", "epoch-000003.weights.h5"]
    newest = backup / "epoch-000003.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a torn write

    fresh = _model()
    fit = fresh.fit(_targets_by_epoch([1.0] * 3), epochs=3, verbose=0, shuffle=False,
                    callbacks=[AtomicBackupAndRestore(str(backup), delete_checkpoint=False)])
    err = capsys.readouterr().err
    assert "epoch-000003.weights.h5 is unreadable" in err and "older backup" in err
    assert fit.epoch == [2]  # resumed at the older backup's epoch, and ran only what was left


def test_no_readable_backup_restarts_the_phase_with_a_message(tmp_path, capsys):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "epoch-000002.weights.h5").write_bytes(b"garbage")
    model = _model()
    before = model.get_weights()
    callback = AtomicBackupAndRestore(str(backup))
    callback.set_model(model)
    callback.on_train_begin()
    assert "starts again from its first epoch" in capsys.readouterr().err
    assert model._initial_epoch is None
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


# --- failed starts ------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, match", [
    ({"model": "convnet", "model_args": {"widht": 2}},
     r"model_args.widht: model 'convnet' takes no argument 'widht'.*Accepted: .*pooling"),
    ({"model": "resnet20", "model_args": {"depth": 56}}, r"model_args.depth: 'resnet20' fixes depth=20"),
    ({"model_args": {"l2": 0.1}}, r"model_args.l2: the trainer sets l2 from the config key 'l2'"),
    ({"data": "mnist-sample", "data_args": {"label": "species"}},
     r"data_args.label: data 'mnist-sample' takes no argument 'label'.*Accepted: .*shuffle_buffer"),
    ({"data": "mnist-sample", "data_args": {"seed": 3}}, r"data_args.seed: the trainer sets seed"),
])
def test_model_and_data_args_are_checked_before_anything_loads(changes, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**changes).validate()


def test_known_model_and_data_args_pass():
    TrainConfig(model="mobilenetv2", model_args={"alpha": 0.5}).validate()
    TrainConfig(data="oxford_iiit_pet", data_args={"label": "species", "shuffle_buffer": 64}).validate()


def test_a_run_dir_without_a_finished_epoch_starts_again(tmp_path):
    run_dir = tmp_path / "failed"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")  # a start that failed while loading
    (run_dir / "history.csv").write_text("epoch,loss,val_loss\n")  # only the header
    assert prepare_run_dir(str(run_dir), "r", resume=False) == str(run_dir)
    assert not (run_dir / "history.csv").exists()  # the next start writes its own header

    (run_dir / "history.csv").write_text("epoch,loss\n0,1.5\n")  # one epoch finished: keep it
    with pytest.raises(FileExistsError, match="--resume"):
        prepare_run_dir(str(run_dir), "r", resume=False)


# --- one writer per run dir ---------------------------------------------------------------------

def test_default_run_dirs_of_one_second_do_not_collide(tmp_path):
    made = {new_run_dir("recipe", root=str(tmp_path)) for _ in range(3)}
    assert len(made) == 3 and all(os.path.isdir(p) for p in made)


def test_a_search_on_a_run_dir_in_use_is_turned_away(tmp_path):
    from tfresnet.tuning.search import tune

    config = TrainConfig(model="convnet", smoke=True, tune={"lr": [1e-3, 1e-2]})
    with lock_run_dir(str(tmp_path)), pytest.raises(RunDirInUseError, match=f"pid {os.getpid()}"):
        tune(config, str(tmp_path), max_trials=1)
    assert not (tmp_path / "tune.json").exists()  # turned away before it wrote anything
    with lock_run_dir(str(tmp_path)):  # released when its holder ended
        pass


def test_each_search_trial_is_seeded_from_the_search_seed_and_its_id(tmp_path):
    import keras_tuner as kt

    from tfresnet.tuning.hypermodel import ConfigHyperModel
    from tfresnet.tuning.tuners import make_tuner

    def draws(seed: int, trial_id: str) -> np.ndarray:
        tuner = make_tuner("random", ConfigHyperModel(TrainConfig(model="convnet", tune={"lr": [1e-3, 1e-2]})),
                           str(tmp_path / f"{seed}-{trial_id}"), max_trials=3, seed=seed,
                           objective=kt.Objective("val_accuracy", "max"), max_epochs=1)
        trial = kt.engine.trial.Trial(tuner.oracle.get_space(), trial_id=trial_id)
        tuner.on_trial_begin(trial)  # what the search calls before building the trial's model
        return np.concatenate([np.random.rand(2), keras.random.uniform((2,), seed=None).numpy()])

    np.random.seed(123)  # whatever ran before
    same = draws(7, "3")
    np.testing.assert_array_equal(draws(7, "3"), same)
    assert not np.array_equal(draws(7, "4"), same) and not np.array_equal(draws(8, "3"), same)
