"""Shared data files for the task tests (read in place, never copied into the repo)."""

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("DLLMRL_DATA_DIR", "/work/shared/data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "countdown_cd3_test.jsonl").is_file():
        pytest.skip(f"shared task data not found in {DATA} (set DLLMRL_DATA_DIR)")
    return DATA
