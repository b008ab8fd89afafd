"""The reproduction tables and their recipes: every recipe smoke-runs, configs follow the book."""

import dataclasses
import json
import time
from pathlib import Path

import pytest

from tfresnet import create_model
from tfresnet.reproduce import degradation, nielsen
from tfresnet.training.cli import load_recipe, main

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted(p.stem for p in (ROOT / "recipes").glob("*.py")
                 if p.stem.startswith(("nielsen_", "he_")))


def test_one_recipe_per_rung_plus_ch5_and_degradation():
    expected = [f"nielsen_rung{r}" for r in nielsen.RUNGS] + ["nielsen_ch5", "he_degradation"]
    assert sorted(expected) == RECIPES
    for rung in nielsen.RUNGS:
        _, get_config = load_recipe(str(ROOT / "recipes" / f"nielsen_rung{rung}.py"))
        assert get_config() == nielsen.rung_config(rung)


def test_rung_configs_follow_the_book():
    book = [97.80, 98.78, 99.06, 99.23, 99.37, 99.60, 99.67]
    assert [row.book for row in nielsen.RUNGS.values()] == book
    rung4, rung5, rung6 = (nielsen.rung_config(r) for r in (4, 5, 6))
    assert (rung4.optimizer, rung4.momentum, rung4.batch_size, rung4.epochs) == ("sgd", 0.0, 10, 60)
    assert rung4.data_args == {"holdout": "last"} and rung5.data_args["expand"] == "shift1"
    # network3.py: 0.5 * lambda * sum(w^2) / (n / batch) on the mean batch loss.
    assert rung4.l2 == pytest.approx(0.1 * 10 / (2 * 50_000))
    assert rung5.l2 == pytest.approx(0.1 * 10 / (2 * 250_000))
    assert (rung6.dropout, rung6.epochs, rung6.l2) == (0.5, 40, 0.0)
    assert nielsen.ch5_config(3).l2 == pytest.approx(5.0 / (2 * 50_000))  # network2.py: lambda/(2n)
    with pytest.raises(ValueError, match="rungs"):
        nielsen.rung_config(8)


def test_rung_models_have_the_books_parameter_counts():
    # Rung 1: 784*100+100 + 100*10+10; the rest are pinned from layer sizes in tests/models/test_mlp.py.
    assert create_model(nielsen.RUNGS[1].model).count_params() == 79_510


def test_degradation_milestones_are_the_papers_iterations():
    config = degradation.degradation_config("resnet56")
    assert (config.step_epochs, config.epochs) == ([82, 123], 164)  # 32k, 48k, 64k x 391 steps
    with pytest.raises(ValueError, match="plain56"):
        degradation.degradation_config("resnet110")
    cpu = degradation.degradation_config("resnet56", "cpu")  # 1,200 steps, lr / 10 at 600 and 900
    assert (cpu.steps_per_epoch, cpu.epochs, cpu.step_epochs) == (100, 12, [6, 9])
    harder = degradation.degradation_config("resnet56", "cpu-augmented")  # the same steps, augmented
    assert (harder.epochs, harder.step_epochs, harder.augment, cpu.augment) == (12, [6, 9], "standard", "none")
    warm = degradation.degradation_config("resnet56", "cpu-augmented-warmup")  # the paper's remedy, for all four
    assert (warm.warmup_epochs, warm.augment, harder.warmup_epochs) == (1, "standard", 0)
    long = degradation.degradation_config("resnet56", "cpu-long")  # twice the steps, milestones with them
    assert (long.epochs, long.step_epochs, long.warmup_epochs) == (24, [12, 18], 1)
    narrow = degradation.degradation_config("plain20", "cpu-narrow")  # cpu-augmented-warmup, a quarter of the width
    assert (narrow.epochs, narrow.step_epochs, narrow.augment, narrow.warmup_epochs) == (12, [6, 9], "standard", 1)
    assert (narrow.model_args, warm.model_args) == ({"width": 4}, {"width": 16})
    with pytest.raises(ValueError, match="'paper'"):
        degradation.degradation_config("resnet56", "weekend")


def test_faster_equivalent_scales_eta_linearly_and_keeps_the_books_decay_per_epoch():
    book, fast = nielsen.rung_config(4), nielsen.rung_config(4, batch_size=100)
    assert (fast.batch_size, fast.lr) == (100, pytest.approx(0.3))
    # Per epoch the decay is eta * 2 * l2 * steps: 10x the eta and 10x fewer steps cancel.
    assert fast.l2 == book.l2
    assert dataclasses.replace(fast, batch_size=10, lr=book.lr) == book
    assert nielsen.ch5_config(4, batch_size=50).lr == pytest.approx(0.5)
    with pytest.raises(ValueError, match="Received batch_size=0"):
        nielsen.rung_config(1, batch_size=0)


def test_rungs_without_their_own_smoke_run_differ_only_in_data():
    # Rung 7 trains rung 6's networks (the vote is the bench suite's); rung 4 is rung 5 without
    # the expansion (and its L2 for 50,000 digits). Both are smoke-run through those rungs.
    assert nielsen.rung_config(7) == nielsen.rung_config(6)
    rung4, rung5 = nielsen.rung_config(4), nielsen.rung_config(5)
    assert rung4 == dataclasses.replace(rung5, data_args={"holdout": "last"}, l2=rung4.l2)


# Rungs 4 and 7 match smoke-run rungs (above); rung 3 is rung 2 with one more conv-pool, which
# rungs 5 and 6 run. All 9 would take the whole test budget (about 2 s each, 8 s plain20).
@pytest.mark.parametrize("name", [n for n in RECIPES if n not in ("nielsen_rung3", "nielsen_rung4", "nielsen_rung7")])
def test_recipe_smoke_runs(name, tmp_path):
    _, get_config = load_recipe(str(ROOT / "recipes" / f"{name}.py"))
    run_dir = tmp_path / name
    started = time.perf_counter()
    code = main(get_config, ["--set", "smoke=true", "--set", "data=mnist-sample",
                             "--run-dir", str(run_dir)], name=name)
    assert code == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data_args"]["holdout"] == "last" and config["optimizer"] == "sgd"
    assert json.loads((run_dir / "metrics.json").read_text())["examples"] > 0
    assert time.perf_counter() - started < 60
