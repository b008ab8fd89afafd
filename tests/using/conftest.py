"""Runs for the `tfresnet.using` tests, made once per session the way users make them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil

import numpy as np
import pytest

# The three breeds of the shared pets sample, in the order the data layer lists them (by class id).
PET_CLASSES = ["Abyssinian", "american_bulldog", "Bengal"]


@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory):
    """convnet_fast trained briefly on mnist-sample by the trainer, then exported (about 10 s)."""
    from tfresnet.export import export_run
    from tfresnet.training import TrainConfig
    from tfresnet.training.trainer import train

    run_dir = str(tmp_path_factory.mktemp("runs") / "mnist")
    config = TrainConfig(model="convnet_fast", data="mnist-sample", epochs=1, steps_per_epoch=40,
                         batch_size=128, lr=3e-3, validation_split=0.0, tensorboard=False, verbose=0,
                         jit_compile=False)
    train(config, run_dir)
    export_run(run_dir, verbose=False, verify=False)
    return run_dir


@pytest.fixture(scope="session")
def pets_run(tmp_path_factory):
    """An untrained 3-breed RGB model saved as the trainer saves a run (crop resize mode)."""
    import keras

    import tfresnet
    from tfresnet.training import TrainConfig

    run_dir = tmp_path_factory.mktemp("runs") / "pets"
    run_dir.mkdir()
    keras.utils.set_random_seed(0)
    model = tfresnet.create_model("convnet", input_shape=(32, 32, 3), num_classes=3, preprocessing="auto")
    model.save(run_dir / "model.keras")
    (run_dir / "class_names.json").write_text(json.dumps(PET_CLASSES))
    config = TrainConfig(model="convnet", data="oxford_iiit_pet", image_size=32, resize_mode="crop")
    (run_dir / "config.json").write_text(config.to_json())
    return str(run_dir)


@pytest.fixture(scope="session")
def digit_pngs(tmp_path_factory, shared_data_dir):
    """The first 20 MNIST test digits as PNG files named by their label: (folder, labels)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("digits")
    with np.load(shared_data_dir / "mnist.npz") as d:
        images, labels = d["x_test"][:20], d["y_test"][:20]
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(folder / f"{i:02d}_{label}.png")
    return str(folder), [str(label) for label in labels]


def copy_run(run_dir: str, dest: str) -> str:
    """A copy of a run's model, class names and config (what evaluate and predict read)."""
    os.makedirs(dest)
    for name in ("model.keras", "class_names.json", "config.json"):
        shutil.copy(os.path.join(run_dir, name), dest)
    return dest


def run_cli(*argv) -> tuple[int, str, str]:
    """`tfresnet ARGV...` in this process: (exit code, stdout, stderr)."""
    from tfresnet import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(list(argv))
    return rc, out.getvalue(), err.getvalue()
