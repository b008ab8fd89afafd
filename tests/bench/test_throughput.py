"""The throughput benchmark's plain-Keras twins are the same networks as tfresnet's."""

import pytest

from tfresnet import create_model
from tfresnet.bench import throughput
from tfresnet.models.profile import count_macs


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2"])  # hand-written, keras.applications
def test_plain_keras_twin_is_the_same_network(name):
    spec = throughput.BENCH_MODELS[name]
    ours = create_model(name, input_shape=spec.input_shape, num_classes=spec.num_classes)
    theirs = spec.plain(spec.input_shape, spec.num_classes)
    assert theirs.count_params() == ours.count_params()
    assert count_macs(theirs) == count_macs(ours)


def test_bench_model_row_for_resnet20():
    row = throughput.bench_model("resnet20", batch_size=4, steps=(2, 2, 1), overrides=["lr=0.01"])
    assert row["macs"] == row["macs_plain"] > 0
    assert row["steps"] == {"warmup": 2, "timed": 2, "rounds": 1}
    for side in ("tfresnet", "keras"):
        assert row[f"{side}_examples_per_s"] > 0 and len(row[f"{side}_rounds"]) == 1
    assert row["ratio"] == pytest.approx(row["tfresnet_examples_per_s"] / row["keras_examples_per_s"])


def test_unknown_model_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="resnet20, resnet50"):
        throughput.run(models=["resnet21"])
