"""Recipes shipped in the package: found by name from any folder by every command that takes a
recipe, listed by `tfresnet recipes`, and still run from a checkout's `recipes/NAME.py`."""

import json
import sys
from pathlib import Path

import pytest

from tfresnet import recipes
from tfresnet.cli import main
from tfresnet.training.cli import load_recipe

CHECKOUT = Path(__file__).resolve().parents[2] / "recipes"


def test_every_packaged_recipe_loads_by_name_and_says_how_to_run_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of the checkout's folders is reachable by relative path
    names = recipes.names()
    assert {"mnist_resnet", "mnist_fast", "pets_transfer", "tune_mnist", "nielsen_rung7"} <= set(names)
    for name in names:
        found, get_config = load_recipe(name)
        config = get_config()
        assert found == name and config.validate() is config
        doc = recipes.docstring(name)
        verb = "tune" if config.tune else "train"
        assert doc.startswith(recipes.summary(name)) and "Run" in doc and f"tfresnet {verb} {name}" in doc


def test_checkout_scripts_are_the_packaged_recipes():
    assert sorted(p.stem for p in CHECKOUT.glob("*.py")) == recipes.names()
    for name in ("mnist_resnet", "cats_vs_dogs_transfer"):
        _, by_path = load_recipe(str(CHECKOUT / f"{name}.py"))
        _, by_name = load_recipe(name)
        assert by_path() == by_name() and by_path.__doc__ == by_name.__doc__


def test_recipes_build_on_each_other_by_package_import():
    before = list(sys.path)
    _, get_config = load_recipe("cats_vs_dogs_transfer")
    from tfresnet.recipes import pets_transfer

    config, pets = get_config(), pets_transfer.get_config()
    assert (config.data, config.model, config.fine_tune_lr) == ("cats_vs_dogs", pets.model, pets.fine_tune_lr)
    assert sys.path == before


def test_recipes_lists_each_name_with_its_first_docstring_line(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out.splitlines()
    for name in recipes.names():
        (line,) = [line for line in out if line.split()[:1] == [name]]
        assert line.endswith(recipes.summary(name)) and len(recipes.summary(name)) > 20
    assert main(["recipes", "mnist_fast"]) == 0
    assert capsys.readouterr().out == recipes.docstring("mnist_fast") + "\n"


@pytest.mark.parametrize("argv, message", [
    (["train", "mnist_fats"], "Unknown recipe name 'mnist_fats'. Closest names: mnist_fast"),
    (["train", "mnist_resnet.py"], "the packaged recipe is named without .py: mnist_resnet"),
    (["lr-find", "mnist_fats"], "Unknown recipe name 'mnist_fats'"),
    (["tune", "tune_minst"], "Closest names: tune_mnist"),
    (["recipes", "mnist_fats"], "Closest names: mnist_fast"),
    (["bench", "--recipes", "mnist_fats", "mnist_fast"], "no recipe file 'mnist_fats'"),
])
def test_an_unknown_name_is_one_line_with_the_closest_names(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and message in err, err
    assert not list(tmp_path.iterdir())


def test_a_bare_name_is_the_packaged_recipe_even_beside_a_file_of_that_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist_resnet").write_text("raise SystemExit('a file ran')\n")
    assert main(["train", "mnist_resnet", "--print-config", "--set", "epochs=2"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert (config["model"], config["epochs"]) == ("resnet20", 2)


def test_tune_by_name_and_its_workers_get_an_argument_that_works_anywhere(tmp_path, monkeypatch, capsys):
    from tfresnet.tuning.cli import worker_command

    monkeypatch.chdir(tmp_path)
    assert main(["tune", "tune_mnist", "--print-config"]) == 0
    assert "resnet20" in json.loads(capsys.readouterr().out)["tune"]["model"]
    (tmp_path / "mine.py").write_text("")
    for recipe, expected in (("tune_mnist", "tune_mnist"), ("mine.py", str(tmp_path / "mine.py"))):
        args = type("Args", (), {"recipe": recipe, "tuner": "random", "max_trials": 2, "rpc_timeout": 1.0,
                                 "max_consecutive_failed": 3, "overrides": []})()
        assert worker_command(args, "runs/x")[4] == expected


def test_time_to_accuracy_defaults_are_found_from_any_folder(tmp_path, monkeypatch):
    from tfresnet.bench import time_to_accuracy

    monkeypatch.chdir(tmp_path)
    time_to_accuracy._check_recipes(time_to_accuracy.DEFAULT_RECIPES)  # raises if one is not found
    with pytest.raises(FileNotFoundError, match="Unknown recipe name 'mnist_fats'"):
        time_to_accuracy._check_recipes(["mnist_fats"])

