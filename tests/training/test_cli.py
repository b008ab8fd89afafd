"""Recipe loading and recipe scripts: sys.path left as it was, siblings importable, errors one line."""

import json
import sys
import textwrap
from pathlib import Path

import pytest

from tfresnet.training.cli import load_recipe, main

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_load_recipe_leaves_sys_path_as_it_was():
    before = list(sys.path)
    # cats_vs_dogs_transfer imports its sibling pets_transfer when it is loaded.
    name, get_config = load_recipe(str(RECIPES / "cats_vs_dogs_transfer.py"))
    assert sys.path == before
    config = get_config()
    assert (name, config.data, config.model) == ("cats_vs_dogs_transfer", "cats_vs_dogs", "mobilenetv2")
    assert sys.path == before
    assert get_config.__doc__.startswith("pets_transfer with the two-class dataset")


def test_a_sibling_imported_inside_get_config_still_loads(tmp_path, monkeypatch):
    # Unique module names: sys.modules keeps a sibling once it is imported.
    sibling = f"base_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{sibling}.py").write_text(textwrap.dedent("""
        from tfresnet.training import TrainConfig

        def get_config():
            return TrainConfig(model="convnet", epochs=7)
    """))
    (tmp_path / "child.py").write_text(textwrap.dedent(f"""
        import dataclasses

        def get_config():
            from {sibling} import get_config as base  # at call time, not import time
            return dataclasses.replace(base(), epochs=3)
    """))
    monkeypatch.delitem(sys.modules, sibling, raising=False)
    _, get_config = load_recipe(str(tmp_path / "child.py"))
    assert str(tmp_path) not in sys.path
    assert get_config().epochs == 3
    assert str(tmp_path) not in sys.path
    sys.modules.pop(sibling, None)


def test_recipe_script_prints_the_config_with_documented_sets(capsys):
    _, get_config = load_recipe(str(RECIPES / "pets_transfer.py"))
    argv = ["--set", "model=resnet50", "--set", "data_dir=DATA_DIR", "--set", "weights=none",
            "--set", "fine_tune_from.resnet50=conv4_block1_1_conv", "--print-config"]
    assert main(get_config, argv, name="pets_transfer") == 0
    config = json.loads(capsys.readouterr().out)
    assert config["fine_tune_from"]["resnet50"] == "conv4_block1_1_conv"
    assert (config["model"], config["weights"], config["data_dir"]) == ("resnet50", None, "DATA_DIR")


def test_recipe_script_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    _, get_config = load_recipe(str(RECIPES / "mnist_convnet.py"))
    missing = str(tmp_path / "no_such_run")
    assert main(get_config, ["--resume", missing], name="mnist_convnet") == 2
    err = capsys.readouterr().err
    assert err == f"error: --resume: run directory {missing!r} does not exist.\n"
    with pytest.raises(FileNotFoundError, match="no_such_run"):
        main(get_config, ["--resume", missing, "--debug"], name="mnist_convnet")
