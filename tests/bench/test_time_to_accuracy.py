"""The time-to-accuracy probe: when it probes, what it records, when it stops training."""

import time

import keras
import numpy as np

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
