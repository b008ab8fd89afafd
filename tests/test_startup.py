"""`import tfresnet`: TensorFlow starts quietly, and a run's model.keras loads with Keras' own call."""

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import keras

import tfresnet
from tfresnet._startup import drop_startup_noise
from tfresnet.training.cli import load_recipe, main
from tfresnet.training.config import apply_overrides
from tfresnet.training.session import build_model, compile_model

ROOT = Path(__file__).resolve().parents[1]

# What `import tensorflow` and its first device query wrote on the 2-core CPU machine
# (TensorFlow 2.21), with a Python warning and a real error among them.
STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796027110.995780    6339 port.cc:153] oneDNN custom operations are on. You may see ...
I0000 00:00:1796027110.996175    6339 cudart_stub.cc:31] Could not find cuda drivers on your machine.
I0000 00:00:1796027111.133002    6339 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow ...
/venv/lib/python3.11/site-packages/tensorflow/__init__.py:12: UserWarning: a Python warning
  warnings.warn("a Python warning")
W0000 00:00:1796027115.720729    6339 some_op.cc:31] a C++ warning
E0000 00:00:1796027199.511357    6339 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error
E0000 00:00:1796027199.511357    6339 op_kernel.cc:12] a real error
"""


def test_only_tensorflow_start_up_notices_are_dropped():
    kept = drop_startup_noise(STARTUP, 2).splitlines()
    assert kept == [
        "/venv/lib/python3.11/site-packages/tensorflow/__init__.py:12: UserWarning: a Python warning",
        '  warnings.warn("a Python warning")',
        "E0000 00:00:1796027199.511357    6339 op_kernel.cc:12] a real error",
    ]
    assert drop_startup_noise(STARTUP, 0) == STARTUP  # TF_CPP_MIN_LOG_LEVEL=0 shows everything
    assert "a C++ warning" in drop_startup_noise(STARTUP, 1)


def test_a_command_prints_no_tensorflow_start_up_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["XDG_CACHE_HOME"] = str(tmp_path)  # no cached rows: resnet20 is built, so TensorFlow runs
    done = subprocess.run([sys.executable, "-m", "tfresnet", "list-models", "resnet20"], env=env,
                          capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "resnet20" in done.stdout
    noise = [line for line in done.stderr.splitlines()
             if any(word in line.lower() for word in ("cuda", "cpu_feature_guard", "absl", "onednn"))]
    assert noise == [], done.stderr
    assert "\x1b[" not in done.stdout + done.stderr


def _registered_by_tfresnet() -> set[str]:
    """Every Keras class tfresnet registers, with every module of the package imported."""
    for module in pkgutil.walk_packages(tfresnet.__path__, "tfresnet."):
        if not module.name.endswith("__main__"):  # runs the command line
            importlib.import_module(module.name)
    return {name for name in keras.saving.get_custom_objects() if name.startswith("tfresnet>")}


def test_run_models_load_after_import_tfresnet_in_a_fresh_process(tmp_path, capsys):
    # One model per distinct set of custom objects the recipes' models hold. A run of
    # mnist_convnet (the learning-rate schedule and the input scaling), at verbose=1 to show that
    # progress written to a pipe is plain; and mnist_resnet's model as its run builds, compiles
    # and saves it, with drop_path (ResNet-20's zero-padding shortcut, stochastic depth, the
    # one-cycle schedule) but without the minute ResNet-20 takes to trace on 2 CPU cores.
    _, mnist_convnet = load_recipe(str(ROOT / "recipes" / "mnist_convnet.py"))
    convnet_run = tmp_path / "convnet"
    assert main(mnist_convnet, ["--set", "schedule=cosine", "--set", "optimizer=sgd", "--set", "epochs=1",
                                "--set", "steps_per_epoch=2", "--set", "batch_size=32", "--set", "verbose=1",
                                "--set", "export=false", "--set", "tensorboard=false",
                                "--set", "jit_compile=false", "--run-dir", str(convnet_run)],
                name="mnist_convnet") == 0
    captured = capsys.readouterr()
    assert "accuracy:" in captured.out  # fit's line for the epoch
    assert "\x1b[" not in captured.out + captured.err and "\b" not in captured.out

    _, mnist_resnet = load_recipe(str(ROOT / "recipes" / "mnist_resnet.py"))
    config = apply_overrides(mnist_resnet(), ["drop_path=0.1"]).validate()
    assert config.schedule == "onecycle"
    model = build_model(config, (28, 28, 1), 10)
    compile_model(model, config, steps_per_epoch=5, epochs=config.epochs, peak=config.lr)
    model.optimizer.build(model.trainable_variables)  # as after training: its state is saved too
    resnet_file = tmp_path / "resnet.keras"
    model.save(resnet_file)

    registered = _registered_by_tfresnet()
    assert {"tfresnet>LearningRate", "tfresnet>ZeroPadShortcut", "tfresnet>StochasticDepth",
            "tfresnet>Preprocess"} <= registered
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "import tfresnet, keras\n"
        "registered = {n for n in keras.saving.get_custom_objects() if n.startswith('tfresnet>')}\n"
        "shapes = {}\n"
        "for path in sys.argv[1:]:\n"
        "    model = keras.saving.load_model(path)  # safe_mode=True, Keras' default\n"
        "    shapes[path] = model.predict(np.zeros((2, 28, 28, 1), 'float32'), verbose=0).shape\n"
        "print(json.dumps({'registered': sorted(registered), 'shapes': shapes}))\n"
    )
    paths = [str(convnet_run / "model.keras"), str(resnet_file)]
    done = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True,
                          timeout=300, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert set(result["registered"]) >= registered
    assert all(tuple(shape) == (2, 10) for shape in result["shapes"].values()), result
