"""Fixtures of the data tests: an isolated environment, offline tensorflow-datasets, fixtures."""

from __future__ import annotations

import os

import pytest

from tests.data import fakes


@pytest.fixture(scope="session", autouse=True)
def isolated_data_environment(tmp_path_factory):
    """Points tfresnet's cache and tensorflow-datasets' data directory at temporary folders.

    Nothing a developer has in ``~/.cache/tfresnet``, ``~/tensorflow_datasets`` or
    ``$TFRESNET_DATA_DIR`` can change a result, and the tests write nothing outside tmp.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TFRESNET_CACHE_DIR", str(tmp_path_factory.mktemp("tfresnet_cache")))
        mp.setenv("TFDS_DATA_DIR", str(tmp_path_factory.mktemp("tfds_empty")))
        mp.delenv("TFRESNET_DATA_DIR", raising=False)
        yield


@pytest.fixture
def offline(monkeypatch):
    """Makes the connectivity probe fail, as on a machine without network."""
    from tfresnet.data import tfds_fallback

    monkeypatch.setattr(tfds_fallback, "network_available", lambda *a, **k: False)


@pytest.fixture(scope="session")
def defects_dir(tmp_path_factory):
    """A folder with every defect of `fakes.write_defects`; returns (folder, name -> path)."""
    directory = tmp_path_factory.mktemp("defects")
    return directory, fakes.write_defects(directory)


@pytest.fixture(scope="session")
def pets_sample(shared_data_dir):
    """The real Oxford-IIIT Pet sample under ../shared/data."""
    path = shared_data_dir / "oxford_iiit_pet_sample"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def mnist_npz(shared_data_dir):
    """The real mnist.npz under ../shared/data."""
    path = shared_data_dir / "mnist.npz"
    if not os.path.isfile(path):
        pytest.skip(f"{path} not found")
    return path
