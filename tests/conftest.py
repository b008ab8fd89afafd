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
