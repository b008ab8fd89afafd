"""EMA across a kill -9: a deterministic run with ``ema`` (and precise batch norm before each
validation) killed after an epoch's backup and resumed ends with an uninterrupted run's weights,
bit for bit, both the averaged set it keeps and the raw set beside it; each set holds the
batch-norm statistics of its own weights, re-estimated after training.

The killed run and its resumption are processes of their own; the uninterrupted one trains in
the test's process meanwhile (a third TensorFlow start-up would cost more than its training)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd

from tests.training.test_resume import _env, _epoch_backups, _layer_weights, _start
from tfresnet.runs import RunDir, load_keras
from tfresnet.training import precise_bn, report
from tfresnet.training.cli import load_recipe
from tfresnet.training.session import Session
from tfresnet.training.trainer import train

TINY_EMA_RECIPE = '''"""A tiny deterministic run with EMA and precise batch norm, for the kill test.

Run:
    python tiny_ema.py --run-dir RUN_DIR
"""

from tfresnet.training.cli import main
from tfresnet.training import TrainConfig


def get_config():
    return TrainConfig(
        model="convnet", model_args={"batch_norm": True}, data="mnist-sample", validation_split=0.02,
        batch_size=32, steps_per_epoch=6, epochs=3, ema=0.9,
        precise_bn=2, precise_bn_each_epoch=True,
        deterministic=True, tensorboard=False, jit_compile=False, export=False, verbose=2,
    )


if __name__ == "__main__":
    raise SystemExit(main(get_config))
'''


def _kill_after_first_backup(proc: subprocess.Popen, run_dir, seen: dict) -> None:
    """Kills `proc` with SIGKILL once its first epoch backup is on disk (run in a thread)."""
    while proc.poll() is None and not _epoch_backups(run_dir, "train"):
        time.sleep(0.01)
    seen["backups"] = [p.name for p in _epoch_backups(run_dir, "train")]
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_ema_run_killed_and_resumed_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    recipe = tmp_path / "tiny_ema.py"
    recipe.write_text(TINY_EMA_RECIPE)
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    first = _start(recipe, tmp_path / "killed.log", "--run-dir", str(killed))
    seen = {}
    killer = threading.Thread(target=_kill_after_first_backup, args=(first, killed, seen))
    killer.start()
    # Meanwhile the uninterrupted run, in this process (its TensorFlow is loaded already).
    monkeypatch.setattr(report, "plot_run", lambda *args, **kwargs: None)  # longer than the training
    train(load_recipe(str(recipe))[1](), str(reference))
    killer.join(timeout=240)
    assert first.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-3000:]
    assert seen["backups"] and not (killed / RunDir.MODEL).exists(), "the kill should land after a backup"
    resumed = subprocess.run([sys.executable, str(recipe), "--resume", str(killed)], env=_env(),
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Epoch 1/" not in resumed.stdout  # continued from the backup, not restarted

    pd.testing.assert_frame_equal(pd.read_csv(killed / RunDir.HISTORY), pd.read_csv(reference / RunDir.HISTORY),
                                  check_exact=True)
    raw = RunDir.EMA_WEIGHTS["raw"]
    for name in (RunDir.BEST, raw):
        want, got = _layer_weights(reference / name), _layer_weights(killed / name)
        assert want.keys() == got.keys() and want
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}: {key}")
    kept = [load_keras(str(folder / RunDir.MODEL)) for folder in (reference, killed)]
    for want, got in zip(kept[0].weights, kept[1].weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=want.path)

    # The kept weights are the average, which is not the raw set beside it.
    averaged = kept[1]
    raw_model = load_keras(str(killed / RunDir.MODEL))
    raw_model.load_weights(killed / raw)
    differ = [not np.allclose(a.numpy(), b.numpy()) for a, b in
              zip(averaged.trainable_weights, raw_model.trainable_weights)]
    assert all(differ), differ

    # After training, each set's statistics were re-estimated for its own weights: doing it again
    # over the batches the run read changes nothing.
    metrics = json.loads((killed / RunDir.METRICS).read_text())
    assert metrics["weights"] == "averaged"
    assert (metrics["precise_bn"]["layers"], metrics["precise_bn"]["batches"]) == (2, 2)
    batches = Session.open(RunDir(killed).config).statistics_batches
    for model in (averaged, raw_model):
        statistics = [v.numpy().copy() for v in model.non_trainable_weights]
        precise_bn.estimate(model, batches(metrics["epochs_run"]), steps=2)
        for old, new in zip(statistics, model.non_trainable_weights):
            np.testing.assert_allclose(new.numpy(), old, rtol=1e-4, atol=1e-5, err_msg=new.path)
