"""Importing tfresnet.tuning checks that the installed KerasTuner is a tested release."""

from importlib import metadata

import pytest

from tfresnet import tuning


def test_installed_keras_tuner_is_a_tested_release():
    assert tuning.check_keras_tuner_version() is True, metadata.version("keras-tuner")


@pytest.mark.parametrize("version", ["1.5.0", "1.5.0rc1", "1.4.6", "2.0.0"])
def test_an_untested_keras_tuner_gets_one_line_naming_both_versions(version):
    with pytest.warns(RuntimeWarning) as caught:
        assert tuning.check_keras_tuner_version(version) is False
    (warning,) = caught
    message = str(warning.message)
    assert len(message.splitlines()) == 1
    assert f"keras-tuner {version} is installed" in message and ">=1.4.7,<1.5" in message
