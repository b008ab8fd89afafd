"""What the wheel ships: every data file of the package is named by setup.cfg's package_data, and
every folder of modules is a package. (`make wheel-check` builds and installs the wheel itself.)"""

import configparser
import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tfresnet"


def _package_data_patterns() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return [p.strip() for p in parser.get("options.package_data", "tfresnet").replace("\n", ",").split(",")
            if p.strip()]


def _files():
    return [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def test_every_data_file_of_the_package_is_package_data():
    patterns = _package_data_patterns()
    data = sorted(str(p.relative_to(PACKAGE)) for p in _files() if p.suffix not in (".py", ".pyc"))
    assert {"data/mnist_sample.npz", "model_table.json"} <= set(data)
    unshipped = [f for f in data if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not unshipped, f"add to [options.package_data] in setup.cfg: {unshipped}"


def test_every_folder_of_modules_is_a_package():
    folders = {p.parent for p in _files() if p.suffix == ".py"}
    assert PACKAGE / "recipes" in folders
    assert not [str(f) for f in folders if not (f / "__init__.py").is_file()]
