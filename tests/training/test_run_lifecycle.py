"""A run directory's life as a user sees it: a failed start leaves nothing, a full disk damages
nothing and resumes, a finished run is reported and not rewritten, and the train time of a
resumed run adds up every attempt's epochs."""

from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tfresnet.runs import RunDir
from tfresnet.training.backups import try_load_weights
from tfresnet.training.callbacks import AtomicModelCheckpoint
from tfresnet.training.config import TrainConfig
from tfresnet.training.session import build_model
from tfresnet.training.trainer import train

ROOT = Path(__file__).resolve().parents[2]
RECIPE = str(ROOT / "recipes" / "mnist_convnet.py")
# Three short epochs of the small ConvNet on the MNIST sample (a few seconds on 2 cores).
FAST = dict(model="convnet_fast", data="mnist-sample", epochs=3, steps_per_epoch=4, batch_size=32,
            validation_split=0.05, tensorboard=False, verbose=0, jit_compile=False, export=False)
FAST_SETS = [f"--set={k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in FAST.items()]


def _files(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture
def disk_full_at(monkeypatch):
    """Makes `save_weights` fail half-way with ENOSPC for files whose name holds a marker."""
    original = keras.Model.save_weights

    def arm(marker: str):
        def save_weights(self, filepath, *args, **kwargs):
            original(self, filepath, *args, **kwargs)
            if marker in os.path.basename(str(filepath)):
                with open(filepath, "r+b") as f:  # half a file reached the disk
                    f.truncate(os.path.getsize(filepath) // 2)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))

        monkeypatch.setattr(keras.Model, "save_weights", save_weights)
        return lambda: monkeypatch.setattr(keras.Model, "save_weights", original)

    return arm


def test_a_start_that_fails_on_its_data_leaves_no_run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "no_images").mkdir()
    with pytest.raises(Exception, match="no_images"):
        train(TrainConfig(**{**FAST, "data": f"folder:{tmp_path / 'no_images'}"}), recipe="failed")
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")

    chosen = tmp_path / "chosen"  # --run-dir of a folder this run made: removed as well
    with pytest.raises(Exception, match="no_images"):
        train(TrainConfig(**{**FAST, "data": f"folder:{tmp_path / 'no_images'}"}), str(chosen))
    assert not chosen.exists()


def test_a_full_disk_is_one_line_damages_nothing_and_the_run_resumes(tmp_path, disk_full_at, capsys):
    from tfresnet.cli import main

    run_dir = tmp_path / "run"
    disarm = disk_full_at("epoch-000002")  # the backup after the second epoch
    assert main(["train", RECIPE, "--run-dir", str(run_dir), *FAST_SETS]) == 5
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: could not write "), err
    assert "epoch-000002.weights.h5" in lines[0] and "No space left on device" in lines[0]
    assert f"--resume {run_dir}" in lines[0] and "Traceback" not in err

    backups = sorted(p.name for p in (run_dir / "backup" / "train").iterdir())
    assert backups == ["epoch-000001.weights.h5"]  # intact, and no half file beside it
    model = build_model(TrainConfig(**FAST), (28, 28, 1), 10)
    assert try_load_weights(model, str(run_dir / "backup" / "train" / "epoch-000001.weights.h5")) is None

    disarm()
    assert main(["train", "--resume", str(run_dir)]) == 0
    metrics = RunDir(run_dir).metrics
    assert metrics["epochs_run"] == 3 and list(RunDir(run_dir).history()["epoch"]) == [0, 1, 2]
    assert metrics["recipe"] == "mnist_convnet" and metrics["train_seconds"] > 0
    capsys.readouterr()

    # Resumed again, the finished run is reported as it is.
    before = _files(run_dir)
    assert main(["train", "--resume", str(run_dir)]) == 0
    out, err = capsys.readouterr()
    assert "finished run" in err and "nothing rewritten" in err
    assert _files(run_dir) == before
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines() if re.search(r"\S\s{2,}\S", line))
    assert rows["recipe"] == "mnist_convnet"  # not the directory's name
    assert rows["train time"].startswith(f"{metrics['train_seconds']:.1f} s")


def test_the_best_checkpoint_is_never_half_written(tmp_path, disk_full_at):
    best = tmp_path / "checkpoints" / "best.weights.h5"
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = np.ones((8, 1), "float32")

    def fit(epochs):
        checkpoint = AtomicModelCheckpoint(str(best), monitor="loss", mode="min", save_best_only=True,
                                           save_weights_only=True)
        model.fit(x, 3 * x, epochs=epochs, verbose=0, callbacks=[checkpoint])

    fit(1)
    saved = best.read_bytes()
    disk_full_at("best.weights.h5")
    with pytest.raises(OSError, match="No space left"):
        fit(1)  # the loss improved, so the checkpoint is written again, and the write fails
    assert best.read_bytes() == saved  # the previous best is whole
    assert try_load_weights(model, str(best)) is None


class _SlowEpochs(keras.callbacks.Callback):
    """Sleeps at each epoch's start and interrupts the run once `stop_after` epochs are backed up."""

    def __init__(self, seconds: float, stop_after: int):
        super().__init__()
        self.seconds, self.stop_after = seconds, stop_after

    def on_epoch_begin(self, epoch, logs=None):
        time.sleep(self.seconds)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.stop_after:
            raise KeyboardInterrupt  # after the backup: the config's callbacks come first


def test_the_train_time_of_a_resumed_run_adds_every_attempts_epochs(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**FAST), str(run_dir), callbacks=[_SlowEpochs(1.5, stop_after=2)])
    result = train(TrainConfig(**FAST), str(run_dir), resume=True)
    metrics = result.metrics
    assert metrics["epochs_run"] == 3
    assert metrics["train_seconds"] >= 3.0  # the first attempt's two slow epochs count
    examples = 3 * FAST["steps_per_epoch"] * FAST["batch_size"]  # every epoch's, not the last attempt's
    assert metrics["examples_per_second"] == pytest.approx(examples / metrics["train_seconds"], rel=0.01)
