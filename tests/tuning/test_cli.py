"""`tfresnet tune`'s arguments: the tuner names its --help lists without importing KerasTuner."""

from tfresnet.tuning.cli import TUNER_NAMES
from tfresnet.tuning.tuners import TUNERS


def test_help_lists_every_tuner():
    assert tuple(TUNERS) == TUNER_NAMES
