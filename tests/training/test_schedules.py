import keras
import numpy as np
import pytest

from tfresnet.training.config import TrainConfig
from tfresnet.training.schedules import LearningRate, make_schedule


def rates(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def test_warmup_then_cosine_is_keras_cosine_decay():
    config = TrainConfig(schedule="cosine", lr=0.1, epochs=10, warmup_epochs=1)
    s = make_schedule(config, steps_per_epoch=10)
    assert isinstance(s, keras.optimizers.schedules.CosineDecay)
    np.testing.assert_allclose(rates(s, [0, 5, 10, 55, 100]), [0.0, 0.05, 0.1, 0.05, 0.0], atol=1e-6)
    plain = make_schedule(TrainConfig(schedule="cosine", lr=0.1, epochs=10), steps_per_epoch=10)
    np.testing.assert_allclose(rates(plain, [0, 50, 100]), [0.1, 0.05, 0.0], atol=1e-6)


def test_step_schedule_drops_at_the_boundary_step_with_or_without_warmup():
    config = TrainConfig(schedule="step", lr=1.0, epochs=10, step_epochs=[3, 6], step_gamma=0.1)
    keras_step = make_schedule(config, steps_per_epoch=10)
    assert isinstance(keras_step, keras.optimizers.schedules.PiecewiseConstantDecay)
    np.testing.assert_allclose(rates(keras_step, [0, 29, 30, 59, 60, 99]), [1, 1, 0.1, 0.1, 0.01, 0.01], rtol=1e-5)
    warm = make_schedule(TrainConfig(schedule="step", lr=1.0, epochs=10, step_epochs=[3, 6], warmup_epochs=1),
                         steps_per_epoch=10)
    np.testing.assert_allclose(rates(warm, [0, 5, 10, 29, 30, 60]), [0, 0.5, 1, 1, 0.1, 0.01], rtol=1e-5)


def test_step_and_constant():
    s = LearningRate("step", peak=1.0, total_steps=100, boundaries=[30, 60], gamma=0.1)
    np.testing.assert_allclose(rates(s, [0, 29, 30, 59, 60, 99]), [1, 1, 0.1, 0.1, 0.01, 0.01], rtol=1e-5)
    np.testing.assert_allclose(rates(LearningRate("constant", 0.3, 10), [0, 9]), [0.3, 0.3])


def test_onecycle_rises_to_peak_then_anneals():
    s = LearningRate("onecycle", peak=1.0, total_steps=100)
    r = rates(s, range(101))
    assert r[0] == pytest.approx(1 / 25)
    assert r.argmax() == 30 and r.max() == pytest.approx(1.0)
    assert r[-1] < 1e-4 and np.all(np.diff(r[30:]) <= 1e-7)


def test_schedule_serialises():
    s = LearningRate("onecycle", 0.2, 50, 5)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(s))
    np.testing.assert_allclose(rates(again, [0, 7, 40]), rates(s, [0, 7, 40]))


def test_triangular_rises_to_the_peak_then_falls_linearly_to_zero():
    s = make_schedule(TrainConfig(schedule="triangular", lr=1.0, epochs=1), steps_per_epoch=100)
    np.testing.assert_allclose(rates(s, [0, 15, 30, 65, 100]), [1 / 25, 1 / 25 + 0.5 * (1 - 1 / 25), 1.0, 0.5, 0.0],
                               atol=1e-6)
    warm = make_schedule(TrainConfig(schedule="triangular", lr=1.0, epochs=2, warmup_epochs=0.5), steps_per_epoch=10)
    np.testing.assert_allclose(rates(warm, [5, 10, 20]), [1.0, 2 / 3, 0.0], atol=1e-6)
