"""Fixtures for the Google tests: the `sweep` command with what they add (`gcli`).

The emulators they sweep (`emulators`, `module_emulators`, `inproc_emulator`) come from
tests/conftest.py, shared with the quota tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest


class GoogleCLI:
    """The `sweep_command` helpers plus what the Google tests add, as the `gcli` fixture."""

    def __init__(self, command: Any) -> None:
        self.command = command
        self.run = command.run
        self.query = command.query
        self.run_json = command.run_json
        self.env = command.env
        self.snapshot = command.snapshot
        self.ITEM_TABLES = command.ITEM_TABLES

    def start(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
        """Start `sweep ARGS...` in the background (for kill tests); output is discarded."""
        return self.command.start(
            *args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def sim_sweep(self, folder: Path, *urls: str) -> Path:
        """A reference: `sweep run --exhaust` of each sim:// URL in turn, into folder/sweep.db."""
        folder.mkdir(parents=True, exist_ok=True)
        for url in urls:
            done = self.run("run", "--exhaust", "--quiet", "--source", url, cwd=folder)
            assert done.returncode == 0, done.stderr[-2000:]
        return folder / "sweep.db"


@pytest.fixture(scope="session")
def gcli(sweep_command: Any) -> GoogleCLI:
    return GoogleCLI(sweep_command)


class FixedTokens:
    """A token cache that hands out one fixed token (for calls whose answers are not the
    emulator's: a mock transport, a peer that never answers)."""

    def token(self, subject: str, scopes: object) -> str:
        return "fixed"

    def invalidate(self, subject: str, scopes: object, token: str) -> None:
        pass


@pytest.fixture
def fixed_tokens() -> FixedTokens:
    return FixedTokens()
