"""Fixtures shared by every test package.

`shared_data_dir` is the folder of real data that stands in for dataset downloads on machines
without network (``../shared/data`` from the repository root; see its README.md). Tests that
need it are skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> pathlib.Path:
    """The shared real-data folder (``<repo>/../shared/data``); skips the test if it is absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA_DIR} (../shared/data)")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def imagenet_weights_dir(shared_data_dir) -> pathlib.Path:
    """The real keras.applications ImageNet files (``../shared/data/imagenet_weights``); skips
    the test if they are absent."""
    path = shared_data_dir / "imagenet_weights"
    if not path.is_dir():
        pytest.skip(f"ImageNet weights folder not found at {path} (../shared/data/imagenet_weights)")
    return path


def pytest_collection_modifyitems(items):
    """Tests marked slow run first: spread over the xdist workers at the start, they leave no
    worker running a long test alone at the end (the suite's wall time is the longest worker's)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
