"""The benchmark helpers: step timing, alternation, peak measurement and table/JSON output."""

import json
import math
import os

import keras
import numpy as np
import pytest

from tfresnet.bench import common


def _tiny_model(steps_per_execution=1):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile("sgd", "sparse_categorical_crossentropy", steps_per_execution=steps_per_execution)
    return model


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_step_timer_counts_steps_after_warmup(steps_per_execution):
    model = _tiny_model(steps_per_execution)
    x, y = np.zeros((80, 4), "float32"), np.zeros(80, "int32")
    timer = common.StepTimer(warmup=1)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[timer])  # 10 steps
    # The first call (one execution of k steps) is the warm-up; the other 10 - k are timed.
    assert timer.steps == 10 - steps_per_execution
    assert timer.seconds > 0


def test_alternate_takes_turns_and_reports_medians():
    calls = []
    values = {"a": iter([1.0, 5.0, 3.0]), "b": iter([2.0, 2.0, 8.0])}

    def runner(name):
        def run():
            calls.append(name)
            return next(values[name])
        return run

    result = common.alternate({"a": runner("a"), "b": runner("b")}, rounds=3)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert result["a"] == {"median": 3.0, "rounds": [1.0, 5.0, 3.0]}
    assert result["b"]["median"] == 2.0


def test_peak_flops_is_a_positive_rate_of_2n3_flops():
    peak = common.measure_peak_flops("float32", side=128, repeats=2)
    assert peak["side"] == 128 and peak["dtype"] == "float32"
    assert math.isclose(peak["flops_per_s"], 2 * 128**3 / peak["seconds"])
    assert peak["flops_per_s"] > 0


def test_training_flops_are_three_forward_passes():
    assert common.training_flops_per_example(1_000) == 6_000


def test_markdown_table_formats_numbers_and_missing_cells():
    table = common.markdown_table([{"a": "x", "b": 1234.5}, {"a": "y", "b": None, "c": 7}],
                                  [("a", "name"), ("b", "rate"), ("c", "n")])
    lines = table.splitlines()
    assert lines[0] == "| name | rate | n |"
    assert lines[2] == "| x | 1,234 | - |"
    assert lines[3] == "| y | - | 7 |"


def test_write_result_adds_machine_and_is_valid_json(tmp_path):
    path = tmp_path / "sub" / "r.json"
    common.write_result(str(path), "demo", {"rows": [{"rate": np.float32(2.5)}]})
    document = json.loads(path.read_text())
    assert document["benchmark"] == "demo" and document["rows"] == [{"rate": 2.5}]
    assert document["machine"]["backend"] == keras.backend.backend() and document["machine"]["cpus"] >= 1
    assert document["machine"]["load_average"] == pytest.approx(list(os.getloadavg()), abs=1.0)  # 1, 5, 15 min
    assert not list(path.parent.glob("*.tmp"))
