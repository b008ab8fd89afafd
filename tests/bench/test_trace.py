"""The profile behind the throughput suite's "where the step goes", and each row's own peak."""

import keras
import numpy as np
import pytest

from tfresnet.bench import common, throughput, trace


def test_an_op_is_charged_to_its_layer_kind_through_keras_scope_suffixes():
    kinds = {"conv1_bn": "BatchNormalization", "conv1_conv": "Conv2D"}
    assert trace.layer_kind("StatefulPartitionedCall/resnet20_1/conv1_bn_1/moments/mean", kinds) == "BatchNormalization"
    assert trace.layer_kind("StatefulPartitionedCall/gradient_tape/resnet20_1/conv1_conv_1/convolution/"
                            "Conv2DBackpropFilter", kinds) == "Conv2D"
    assert trace.layer_kind("StatefulPartitionedCall/adam/Sub_223", kinds, "adam") == "optimizer"
    assert trace.layer_kind("StatefulPartitionedCall/Equal", kinds, "adam") == "other"


def test_a_traced_training_step_is_summed_per_layer_kind_and_op_type(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    outputs = keras.layers.Dense(4, name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    x, y = np.ones((64, 16, 16, 3), "float32"), np.zeros((64, 4), "float32")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # traced and warm before the profile

    profile = trace.profile_steps(lambda: model.fit(x, y, batch_size=16, epochs=1, verbose=0),
                                  str(tmp_path / "trace"), model=model, steps=4)
    kinds = profile["layer_seconds"]
    assert {"Conv2D", "BatchNormalization", "Dense", "optimizer"} <= set(kinds)
    assert any("Conv2D" in t for t in profile["op_seconds"])  # forward and backward convolutions
    assert 0 < profile["matrix_seconds"] < profile["total_seconds"]
    assert profile["total_seconds"] == pytest.approx(sum(kinds.values()))
    assert "| BatchNormalization |" in trace.format_profile(profile)
    line = profile["timeline"]
    assert 0 < line["span_seconds"] <= profile["wall_seconds"]
    assert sum(line["matrix_ops_running"].values()) + line["idle_seconds"] == pytest.approx(line["span_seconds"])
    assert sum(line["exposed_seconds"].values()) == pytest.approx(line["matrix_ops_running"]["0"])
    assert line["matrix_ops_running"]["1"] + line["matrix_ops_running"]["2+"] > 0
    assert not any(trace.MATRIX_OPS.search(t) for t in line["exposed_seconds"])
    assert "while no matrix op" in trace.format_profile(profile)
    assert list((tmp_path / "trace" / "plugins" / "profile").glob("*/*.xplane.pb"))  # opens in TensorBoard


def test_the_timeline_splits_the_span_by_matrix_ops_running_and_charges_the_rest_to_what_ran():
    second = 10**12  # the trace's picoseconds
    events = [("Conv2D", 0, 10), ("Conv2DBackpropFilter", 5, 15),  # two at once in [5, 10)
              ("FusedBatchNormV3", 15, 20), ("Relu", 18, 22),  # no matrix op: 15 to 22
              ("Conv2D", 25, 30),  # nothing at all runs in [22, 25)
              ("AddN", 30, 34), ("AddN", 30, 32), ("Relu", 32, 34)]  # two AddN events at once, then AddN and Relu
    line = trace.timeline([(t, start * second, end * second) for t, start, end in events])
    assert line["span_seconds"] == 34
    assert line["matrix_ops_running"] == {"0": 11, "1": 15, "2+": 5}
    assert line["idle_seconds"] == 3
    assert line["exposed_seconds"] == {"FusedBatchNormV3": 4, "Relu": 4, "AddN": 3}
    assert trace.timeline([]) == {"span_seconds": 0.0, "matrix_ops_running": {"0": 0.0, "1": 0.0, "2+": 0.0},
                                  "idle_seconds": 0.0, "exposed_seconds": {}}


def test_a_mixed_bfloat16_row_is_held_against_the_bfloat16_peak():
    peaks = {"float32": {"flops_per_s": 1e11}, "bfloat16": {"flops_per_s": 4e11}}
    row = {"macs": 1_000_000, "mixed_precision": "mixed_bfloat16",
           "tfresnet_examples_per_s": 1000.0, "keras_examples_per_s": 500.0}
    throughput._efficiency(row, peaks)
    assert row["peak_dtype"] == "bfloat16"
    assert row["tfresnet_fraction_of_peak"] == pytest.approx(6e9 / 4e11)
    row["mixed_precision"] = None
    throughput._efficiency(row, peaks)
    assert row["tfresnet_fraction_of_peak"] == pytest.approx(6e9 / 1e11)


@pytest.mark.parametrize(("flags", "expected"), [
    ({"avx512_bf16": True, "amx_bf16": False}, ("float32", "bfloat16")),
    ({"avx512_bf16": False, "amx_bf16": True}, ("float32", "bfloat16")),
    ({"avx512_bf16": False, "amx_bf16": False}, ("float32",)),
])
def test_a_cpu_peak_in_bfloat16_is_measured_only_with_bf16_matrix_hardware(monkeypatch, flags, expected):
    monkeypatch.setattr(common, "accelerator", lambda: "cpu")
    monkeypatch.setattr(common, "cpu_features", lambda: {"flags": flags})
    assert common.peak_dtypes() == expected


def test_the_best_batch_is_the_fastest_candidate(monkeypatch):
    spec = throughput.BENCH_MODELS["resnet20"]
    monkeypatch.setitem(throughput.BENCH_MODELS, "resnet20", throughput.BenchModel(
        spec.input_shape, spec.num_classes, spec.batch_size, spec.plain, spec.plain_name, {"cpu": (4, 8)}))
    monkeypatch.setattr(throughput, "accelerator", lambda: "cpu")
    monkeypatch.setattr(throughput, "_tfresnet_side", lambda config, spec, batch_size: (None, None))
    monkeypatch.setattr(throughput, "_steps_per_round", lambda *a: 1)
    monkeypatch.setattr(throughput, "_rate", lambda fit, steps, batch_size: {4: 10.0, 8: 30.0}[batch_size])
    chosen = throughput.best_batch("resnet20", log=lambda _: None)
    assert chosen == {"batch_size": 8, "sweep": {4: 10.0, 8: 30.0}}
