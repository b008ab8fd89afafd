"""The `tfresnet` command line: usage errors of every command are one line and exit code 2,
``--debug`` shows the traceback, and help answers without loading TensorFlow."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfresnet.cli import main, run_command

ROOT = Path(__file__).resolve().parents[1]
CONVNET = str(ROOT / "recipes" / "mnist_convnet.py")
TUNE = str(ROOT / "recipes" / "tune_mnist.py")

# (argv, text the one line must hold: the bad value). {tmp} is a scratch folder with `empty/`
# (no files), `partial/` (a config.json only), `broken/` (config.json that is not JSON) and
# `not_a_recipe.py` (no get_config).
USAGE_ERRORS = [
    (["train"], "give a recipe file, or --resume RUN_DIR"),
    (["train", "{tmp}/nope.py"], "nope.py"),
    (["train", "{tmp}/not_a_recipe.py"], "defines no get_config()"),
    (["train", CONVNET, "--set", "lrr=1"], "'lrr'. Did you mean lr?"),
    (["train", CONVNET, "--set", "epochs=abc"], "Received epochs='abc'"),
    (["train", CONVNET, "--set", "epochs"], "Received 'epochs'"),
    (["train", CONVNET, "--set", "step_epochs=a,b"], "Received step_epochs=['a', 'b']"),
    (["train", CONVNET, "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--resume", "{tmp}/missing"], "run directory '{tmp}/missing' does not exist"),
    (["train", "--resume", "{tmp}/empty"], "'{tmp}/empty' holds no config.json"),
    (["train", "--resume", "{tmp}/broken"], "{tmp}/broken/config.json is not valid JSON"),
    (["train", "--resume", "{tmp}/partial", "--set", "epochs=2"], "drop --set"),
    (["export", "{tmp}/missing"], "{tmp}/missing does not exist"),
    (["export", "{tmp}/partial"], "missing model.keras"),
    (["export", "{tmp}/partial", "--format", "zip"], "invalid choice: 'zip'"),
    (["tune", "{tmp}/nope.py"], "nope.py"),
    (["tune", TUNE, "--workers", "-1"], "--workers -1"),
    (["tune", TUNE, "--max-trials", "0"], "--max-trials 0"),
    (["tune", TUNE, "--timeout", "-5"], "--timeout -5"),
    (["tune", TUNE, "--tuner", "annealing"], "invalid choice: 'annealing'"),
    (["tune", TUNE, "--set", "tune.lrr=[1]"], "'lrr'"),
    (["bench", "--batch-size", "0"], "--batch-size 0"),
    (["bench", "--suite", "speed"], "invalid choice: 'speed'"),
    (["scan-data", "{tmp}/missing"], "{tmp}/missing"),
    (["scan-data", "{tmp}/empty", "--workers", "0"], "--workers 0"),
    (["scan-data", "{tmp}/empty", "--layout", "pets"], "invalid choice: 'pets'"),
    (["list-models", "resnet", "--limit", "3"], "unrecognized arguments: --limit 3"),
    (["fit"], "invalid choice: 'fit'"),
]


@pytest.fixture
def scratch(tmp_path):
    for folder in ("empty", "partial", "broken"):
        (tmp_path / folder).mkdir()
    (tmp_path / "partial" / "config.json").write_text("{}")
    (tmp_path / "broken" / "config.json").write_text("{not json")
    (tmp_path / "not_a_recipe.py").write_text("x = 1\n")
    return tmp_path


@pytest.mark.parametrize("argv, message", USAGE_ERRORS, ids=[" ".join(a[:3]) for a, _ in USAGE_ERRORS])
def test_usage_errors_are_one_line_naming_the_value(argv, message, scratch, capsys):
    argv = [a.format(tmp=scratch) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert message.format(tmp=scratch) in err
    assert "Traceback" not in err + captured.out


def test_debug_shows_the_traceback(scratch):
    missing = str(scratch / "missing")
    with pytest.raises(FileNotFoundError, match="missing"):
        main(["--debug", "train", "--resume", missing])
    with pytest.raises(FileNotFoundError, match="missing"):
        main(["train", "--resume", missing, "--debug"])


def _parse_number(args):
    return int(args)  # raises ValueError from Python itself, outside tfresnet's code


def test_an_error_from_outside_tfresnet_points_to_debug(capsys):
    assert run_command(_parse_number, "x") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ValueError: invalid literal") and "rerun with --debug" in err


def test_help_answers_without_loading_tensorflow():
    script = (
        "import contextlib, io, json, sys\n"
        "from tfresnet.cli import main\n"
        "codes = {}\n"
        "for argv in ([], ['--help'], ['train', '--help'], ['export', '--help'], ['tune', '--help'],\n"
        "             ['bench', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        codes[' '.join(argv)] = (main(argv), 'usage:' in out.getvalue())\n"
        "print(json.dumps({'codes': codes, 'loaded': sorted(m for m in ('tensorflow', 'keras',\n"
        "                  'keras_tuner') if m in sys.modules)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["loaded"] == []
    assert all(code == 0 and usage for code, usage in result["codes"].values()), result["codes"]
