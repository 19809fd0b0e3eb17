"""Fixtures for the quota tests: the `sweep` CLI (`quota_cli`); the emulators they sweep come
from tests/conftest.py (`emulators`, `inproc_emulator`).

Tests get helpers through the `quota_cli` fixture (no helper module is imported, so pytest never
needs the repository root on sys.path). Every process a helper starts is waited for and its
pipes closed: `filterwarnings = error` turns a leaked pipe into a failure.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

UNCOUNTED = ("oauth2.token", "gmail.batch", "directory.users.list")
"""What no PAGE counts: token exchanges, batch envelopes (their parts count) and the roster,
listed before the sweep opens."""


class QuotaCLI:
    """The installed `sweep` command and reads of the ledgers it writes."""

    def __init__(self, command: Any) -> None:
        self.command = command
        """The `sweep_command` fixture (tests/conftest.py)."""
        self.run = command.run
        self.items = command.snapshot

    def start(self, *args: str, cwd: Path) -> subprocess.Popen[str]:
        """`sweep ARGS` in the background, stderr to `cwd/sweep.err`; the caller waits."""
        with (cwd / "sweep.err").open("w") as stderr:
            proc: subprocess.Popen[str] = self.command.start(
                *args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr
            )
            return proc

    def status(self, cwd: Path) -> dict[str, Any]:
        done = self.run("status", "--json", cwd=cwd)
        assert done.returncode in (0, 3), done.stderr
        return dict(json.loads(done.stdout))

    @staticmethod
    def counted_calls(stats: dict[str, Any]) -> int:
        """API calls the emulator answered that a sweep's PAGE events must count."""
        return sum(n for route, n in stats["routes"].items() if route not in UNCOUNTED)


@pytest.fixture(scope="session")
def quota_cli(sweep_command: Any) -> QuotaCLI:
    return QuotaCLI(sweep_command)
