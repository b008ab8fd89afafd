"""Recipes end to end, smoke-sized: each runs, resumes after kill -9, stops on NaN, rejects bad configs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfresnet.training.cli import load_recipe, main
from tfresnet.training.config import apply_overrides

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
PETS = ROOT.parent / "shared" / "data" / "oxford_iiit_pet_sample"
FAST = ["--set", "smoke=true", "--set", "jit_compile=false"]


def assert_consistent(metrics, *, classes):
    """The accuracy, per-class accuracies and example count agree with the confusion matrix."""
    confusion = np.asarray(metrics["confusion_matrix"])
    assert confusion.shape == (classes, classes) and metrics["examples"] == confusion.sum() > 0
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    for k, accuracy in enumerate(metrics["per_class_accuracy"]):
        row = confusion[k].sum()
        assert accuracy == (pytest.approx(confusion[k, k] / row) if row else None)


def run_recipe(name, *args):
    _, get_config = load_recipe(str(RECIPES / f"{name}.py"))
    return main(get_config, [*FAST, *args], name=name)


def test_every_recipe_loads_and_validates():
    names = sorted(p.stem for p in RECIPES.glob("*.py"))
    assert {"mnist_resnet", "mnist_convnet", "mnist_fast", "pets_transfer", "cats_vs_dogs_transfer"} <= set(names)
    for name in names:
        _, get_config = load_recipe(str(RECIPES / f"{name}.py"))
        config = get_config()
        assert config.validate() is config
        doc = (RECIPES / f"{name}.py").read_text()
        assert "Run" in doc and f"{name}.py" in doc  # the docstring gives the command


@pytest.mark.parametrize("name", ["mnist_resnet", "mnist_convnet"])
def test_mnist_recipes_run(name, tmp_path):
    run_dir = tmp_path / "run"
    assert run_recipe(name, "--set", "export=false", "--run-dir", str(run_dir)) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # Three steps teach nothing (tests/training/test_learning.py checks learning); what is
    # reported must still agree with itself.
    assert_consistent(metrics, classes=10)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["smoke"] is True and config["epochs"] == 1
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [0]
    for f in ("model.keras", "class_names.json", "learning_curves.png", "confusion_matrix.png",
              "checkpoints/best.weights.h5"):
        assert (run_dir / f).exists(), f


def test_mnist_fast_trains_on_all_of_mnist_without_validation(shared_data_dir, tmp_path):
    run_dir = tmp_path / "run"
    assert run_recipe("mnist_fast", "--set", f"data_dir={shared_data_dir}", "--set", "export=false",
                      "--run-dir", str(run_dir)) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["data"], config["model"], config["validation_split"]) == ("mnist", "convnet_narrow", 0.0)
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [0]
    # No validation pass: the history keeps its val_ columns (the shared layout), but empty.
    assert history.filter(like="val_").isna().all().all()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split"] == "test"
    assert_consistent(metrics, classes=10)
    assert (run_dir / "checkpoints" / "best.weights.h5").exists()  # monitors training accuracy


@pytest.mark.skipif(not PETS.is_dir(), reason="needs ../shared/data/oxford_iiit_pet_sample")
def test_pets_transfer_trains_head_then_fine_tunes(tmp_path):
    run_dir = tmp_path / "pets"
    code = run_recipe("pets_transfer", "--set", "weights=none", "--set", f"data_dir={PETS}",
                      "--set", "export=false", "--run-dir", str(run_dir))
    assert code == 0
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [0, 1]  # one epoch per phase
    assert (run_dir / "phases" / "train.weights.h5").exists()
    assert (run_dir / "phases" / "finetune.weights.h5").exists()
    assert json.loads((run_dir / "class_names.json").read_text()) == [
        "Abyssinian", "american_bulldog", "Bengal"]


def test_cats_vs_dogs_transfer_skips_broken_files(tmp_path):
    from tests.data.fakes import write_class_folders, write_defects

    pet_images = write_class_folders(tmp_path / "PetImages", {"Cat": 12, "Dog": 12})
    write_defects(pet_images / "Cat", prefix="broken_")  # PetImages has ~1,600 such files
    run_dir = tmp_path / "run"
    code = run_recipe("cats_vs_dogs_transfer", "--set", "weights=none",
                      "--set", f"data_dir={tmp_path}", "--run-dir", str(run_dir))
    assert code == 0
    assert json.loads((run_dir / "class_names.json").read_text()) == ["cat", "dog"]
    assert (run_dir / "export" / "saved_model" / "saved_model.pb").exists()


@pytest.mark.parametrize("option", ["mixed_precision=mixed_bfloat16", "strategy=mirrored",
                                    "steps_per_execution=2"])
def test_gpu_options_run_on_cpu(option, tmp_path):
    run_dir = tmp_path / "run"
    assert run_recipe("mnist_convnet", "--set", option, "--set", "export=false",
                      "--run-dir", str(run_dir)) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["examples"] > 0


def test_bad_config_fails_before_training(tmp_path, capsys):
    run_dir = tmp_path / "bad"
    assert run_recipe("mnist_resnet", "--set", "epochs=-2", "--run-dir", str(run_dir)) == 2
    assert "epochs must be >= 1. Received epochs=-2" in capsys.readouterr().err
    assert run_recipe("mnist_resnet", "--set", "model=resnet5", "--run-dir", str(run_dir)) == 2
    assert "resnet50" in capsys.readouterr().err
    assert not run_dir.exists()


def test_nan_loss_exits_non_zero(tmp_path, capsys):
    # 1e30: the first step's weights overflow float32 on the next batch in any batch order
    # (at 1e12 whether the loss reached NaN within the 3 smoke batches depended on the order).
    code = run_recipe("mnist_convnet", "--set", "optimizer=sgd", "--set", "lr=1e30",
                      "--set", "export=false", "--run-dir", str(tmp_path / "nan"))
    assert code == 3
    assert "Loss became nan" in capsys.readouterr().err


def test_existing_run_dir_is_not_overwritten(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    (run_dir / "history.csv").write_text("epoch,loss\n0,1.5\n")  # it finished an epoch
    assert run_recipe("mnist_convnet", "--run-dir", str(run_dir)) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_after_kill_9(tmp_path):
    """Kill the training process mid-run, resume it, and check each epoch is logged once."""
    run_dir = tmp_path / "killed"
    epochs = 4
    cmd = [sys.executable, str(RECIPES / "mnist_convnet.py"), "--set", "jit_compile=false",
           "--set", f"epochs={epochs}", "--set", "steps_per_epoch=40", "--set", "batch_size=32",
           "--set", "export=false", "--set", "tensorboard=false", "--run-dir", str(run_dir)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run_dir / "history.csv"
    backups = run_dir / "backup" / "train"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if backups.is_dir() and any(p.name.startswith("epoch-") for p in backups.iterdir()):
            break  # epoch 0 is backed up; epoch 1 is under way
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "model.keras").exists()

    resumed = subprocess.run([*cmd[:2], "--resume", str(run_dir)], env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Epoch 1/" not in resumed.stdout  # continued, not restarted
    final = pd.read_csv(history)
    assert list(final["epoch"]) == list(range(epochs))
    assert (run_dir / "model.keras").exists()


def test_overrides_reach_the_config():
    _, get_config = load_recipe(str(RECIPES / "mnist_resnet.py"))
    config = apply_overrides(get_config(), ["data=mnist", "data_dir=../shared/data"])
    assert config.data == "mnist" and config.model == "resnet20"
