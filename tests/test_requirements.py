"""setup.cfg's requirements: a Keras with the published security fixes, the tested KerasTuner."""

import configparser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tfresnet.tuning import TESTED_KERAS_TUNER

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"


def _requirements() -> dict[str, Requirement]:
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG)
    lines = [line for line in parser["options"]["install_requires"].splitlines() if line.strip()]
    return {Requirement(line).name: Requirement(line) for line in lines}


def test_keras_has_every_published_fix_for_loading_untrusted_files():
    keras = _requirements()["keras"]
    # 3.15.1: the last safe_mode, path traversal and unpickling fixes (see the comment in setup.cfg).
    assert all(Version(v) not in keras.specifier for v in ("3.9.0", "3.11.0", "3.12.0", "3.14.1", "3.15.0"))
    assert Version("3.15.1") in keras.specifier
    assert metadata.version("keras") in keras.specifier


def test_keras_tuner_is_bounded_to_the_tested_releases():
    tuner = _requirements()["keras-tuner"]
    assert tuner.specifier == SpecifierSet(",".join(TESTED_KERAS_TUNER))
    assert metadata.version("keras-tuner") in tuner.specifier
