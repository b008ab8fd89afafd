"""The time-to-accuracy probe: when it probes, what it records, when it stops training."""

import time

import keras
import numpy as np
import pytest

from tfresnet.bench import time_to_accuracy as tta


class _Scripted(keras.Model):
    """A stand-in model whose test accuracy follows a script, one value per `predict`."""

    def __init__(self, accuracies, labels, delay=0.0):
        super().__init__()
        self.accuracies, self.labels, self.delay = list(accuracies), labels, delay
        self.stop_training = False

    def predict(self, images, batch_size=None, verbose=0):
        time.sleep(self.delay)
        accuracy = self.accuracies.pop(0)
        right = round(accuracy * len(self.labels))
        predicted = np.where(np.arange(len(self.labels)) < right, self.labels, (self.labels + 1) % 10)
        return np.eye(10)[predicted]


def _probe(model, targets=(0.9, 0.95), every=100, **kwargs):
    labels = np.arange(100) % 10
    probe = tta.AccuracyProbe(np.zeros((100, 2, 2, 1)), labels, targets=targets, every=every, batch_size=50,
                              **kwargs)
    probe.set_model(model)
    probe.on_train_begin()
    probe.on_epoch_begin(0)
    return probe


def test_probe_every_n_examples_records_first_hits_and_stops_when_all_reached():
    model = _Scripted([0.5, 0.92, 0.91, 0.96], np.arange(100) % 10)
    probe = _probe(model)
    for batch in range(8):  # 50 examples a step: a probe after steps 1, 3, 5, 7
        probe.on_train_batch_end(batch)
        if model.stop_training:
            break
    assert [p["examples"] for p in probe.probes] == [100, 200, 300, 400]
    assert [p["accuracy"] for p in probe.probes] == [0.5, 0.92, 0.91, 0.96]
    assert probe.reached[0.9]["examples"] == 200  # the first probe at or above, not a later one
    assert probe.reached[0.95]["examples"] == 400
    assert model.stop_training and probe.stopped_by == "targets"


def test_probe_time_is_not_training_time():
    model = _Scripted([0.1, 0.1], np.arange(100) % 10, delay=0.3)
    probe = _probe(model, every=50)
    probe.on_train_batch_end(0)
    probe.on_train_batch_end(1)
    assert len(probe.probes) == 2
    assert probe.clock() < 0.25  # two 0.3 s probes ran, and are not on the clock
    assert not model.stop_training


def test_probe_stops_at_the_time_limit_and_probes_at_the_end():
    model = _Scripted([0.2], np.arange(100) % 10)
    probe = _probe(model, every=10_000, max_seconds=0.0)
    probe.on_train_batch_end(0)
    assert model.stop_training and probe.stopped_by == "time"
    probe.on_train_end()
    assert probe.probes[-1]["examples"] == 50 and probe.reached == {}


def test_speedups_and_lower_bounds():
    def record(name, trained, **reached):
        return {"recipe": name, "train_seconds": trained,
                "reached": {"0.99": reached.get("a"), "0.995": reached.get("b")}}

    baseline = record("convnet", 300.0, a={"seconds": 200.0})
    fast = record("fast", 60.0, a={"seconds": 40.0}, b={"seconds": 50.0})
    rows = tta._speedups([baseline, fast], (0.99, 0.995))
    assert rows[0]["speedup"] == 5.0 and rows[0]["bound"] is None
    # 99.5% reached by the contender only: the baseline trained 300 s without it, so >= 6x.
    assert rows[1]["speedup"] == 6.0 and rows[1]["bound"] == ">="


def _fake_time_recipe(times):
    """`time_recipe` replaced: seconds to 99% by (recipe, seed, overrides); None: not reached."""
    calls = []

    def fake(recipe, *, overrides, targets, probe_every, max_seconds):
        seed = int(next(o for o in reversed(overrides) if o.startswith("seed="))[5:])
        key = (recipe, seed, "label_smoothing=0.0" in overrides)
        calls.append(key)
        seconds = times[key]
        hit = None if seconds is None else {"seconds": seconds, "examples": 100, "epochs": seconds / 10}
        return {"recipe": recipe, "model": "m", "params": 1, "config": {"batch_size": 8}, "setup_seconds": 0.1,
                "reached": {"0.99": hit, "0.995": None}, "final_accuracy": 0.99, "train_seconds": 30.0,
                "probes": [{"accuracy": 0.991}]}

    return fake, calls


def test_seeds_medians_spread_speedups_and_ablation_rows(monkeypatch):
    times = {("base", 0, False): 60.0, ("base", 1, False): 90.0, ("base", 2, False): 70.0,
             ("fast", 0, False): 5.0, ("fast", 1, False): 7.0, ("fast", 2, False): 6.0,
             ("fast", 0, True): 9.0, ("fast", 1, True): None, ("fast", 2, True): 8.0}
    fake, calls = _fake_time_recipe(times)
    monkeypatch.setattr(tta, "time_recipe", fake)
    monkeypatch.setattr(tta, "_check_recipes", lambda recipes: None)
    monkeypatch.setattr(tta, "recipe_ablations", lambda recipe: {"label smoothing": ["label_smoothing=0.0"]})
    result = tta.run(recipes=("base", "fast"), seeds=3, ablation=True, smoke=True, log=lambda line: None)
    assert len(calls) == 9 and {seed for _, seed, _ in calls} == {0, 1, 2}
    base, fast, ablated = result["summaries"]
    assert (base["reached"]["0.99"]["seconds"], base["reached"]["0.99"]["min"], base["reached"]["0.99"]["max"]) \
        == (70.0, 60.0, 90.0)
    assert fast["reached"]["0.99"]["seconds"] == 6.0 and fast["reached"]["0.995"] is None
    # One seed of three missed: it counts as slower than both others, so the median is the slower hit.
    assert ablated["variant"] == "label smoothing" and ablated["reached"]["0.99"]["seconds"] == 9.0
    assert ablated["not_reached"]["0.99"] == 1 and ablated["reached"]["0.99"]["seeds_reached"] == 2
    assert result["speedups"][0]["speedup"] == pytest.approx(70.0 / 6.0)
    [row] = tta.ablation_rows(result)
    assert row["trick"] == "label smoothing" and row["with"].startswith("6.0 s") and "1 missed" in row["without"]
    assert "### Ablations" in tta.format_tables(result)


def test_median_is_none_when_half_the_seeds_miss():
    assert tta._median([3.0, None]) is None and tta._median([3.0, 1.0, None]) == 3.0
    assert tta._median([4.0, 2.0]) == 3.0
