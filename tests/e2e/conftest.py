"""End-to-end helpers: the installed `sweep` command (`SweepCommand` of tests/conftest.py) as
the `cli` fixture, and a working folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def cli(sweep_command: Any) -> Any:
    return sweep_command


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
