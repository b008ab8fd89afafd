"""`tfresnet --version` and `tfresnet.__version__` come from the package metadata, and the
changelog has this version's entry."""

import configparser
import importlib.metadata
import re
from pathlib import Path

import tfresnet
from tfresnet.cli import main

ROOT = Path(__file__).resolve().parents[1]


def setup_cfg_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser.get("metadata", "version")


def test_version_is_the_installed_distributions(capsys):
    assert tfresnet.__version__ == importlib.metadata.version("tfresnet") == setup_cfg_version()
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"tfresnet {setup_cfg_version()}\n"


def test_a_checkout_that_was_never_installed_reads_setup_cfg(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert tfresnet._package_version() == setup_cfg_version()


def test_changelog_has_this_versions_entry():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "https://keepachangelog.com/en/1.1.0/" in text
    assert re.search(rf"^## \[{re.escape(setup_cfg_version())}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.MULTILINE)
    assert re.search(r"^## \[Unreleased\]$", text, re.MULTILINE)
