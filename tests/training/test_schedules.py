import keras
import numpy as np
import pytest

from tfresnet.training.schedules import LearningRate


def rates(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def test_warmup_then_cosine():
    s = LearningRate("cosine", peak=0.1, total_steps=100, warmup_steps=10)
    r = rates(s, [0, 5, 10, 55, 100])
    np.testing.assert_allclose(r, [0.0, 0.05, 0.1, 0.05, 0.0], atol=1e-6)


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
