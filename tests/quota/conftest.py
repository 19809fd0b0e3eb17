"""Fixtures for the quota tests: `sweep emulate` subprocesses with a quota, and the `sweep` CLI.

Tests get helpers through the `quota_cli` fixture (no helper module is imported, so pytest never
needs the repository root on sys.path). Every process a helper starts is waited for and its
pipes closed: `filterwarnings = error` turns a leaked pipe into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sweepledger.collectors.emulator.control import EmulatorProcess

SWEEP = shutil.which("sweep")
ITEM_TABLES = ("gmail_messages", "calendar_events", "chat_messages", "drive_files")
UNCOUNTED = ("oauth2.token", "gmail.batch", "directory.users.list")
"""What no PAGE counts: token exchanges, batch envelopes (their parts count) and the roster,
listed before the sweep opens."""


def _env() -> dict[str, str]:
    drop = ("SWEEP_DB", "SWEEP_SOURCE", "MAX_SECONDS_PER_RUN", "RUN_TO_COMPLETION", "AUTH_DEBUG")
    return {k: v for k, v in os.environ.items() if k not in drop}


class QuotaCLI:
    """The installed `sweep` command and reads of the ledgers it writes."""

    def run(self, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert SWEEP is not None, "the sweep command is not installed"
        return subprocess.run(
            [SWEEP, *args],
            cwd=cwd,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, cwd: Path) -> subprocess.Popen[str]:
        """`sweep ARGS` in the background, stderr to `cwd/sweep.err`; the caller waits."""
        assert SWEEP is not None, "the sweep command is not installed"
        with (cwd / "sweep.err").open("w") as stderr:
            return subprocess.Popen(
                [SWEEP, *args],
                cwd=cwd,
                env=_env(),
                text=True,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def status(self, cwd: Path) -> dict[str, Any]:
        done = self.run("status", "--json", cwd=cwd)
        assert done.returncode in (0, 3), done.stderr
        return dict(json.loads(done.stdout))

    def items(self, db: Path) -> dict[str, set[tuple[Any, ...]]]:
        """Every item table's rows, without the ledger position they were written at."""
        conn = sqlite3.connect(db)
        try:
            tables = {}
            for table in ITEM_TABLES:
                cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
                cols = [c for c in cols if c != "last_seq"]
                rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table}")
                tables[table] = {tuple(r) for r in rows}
            return tables
        finally:
            conn.close()

    @staticmethod
    def counted_calls(stats: dict[str, Any]) -> int:
        """API calls the emulator answered that a sweep's PAGE events must count."""
        return sum(n for route, n in stats["routes"].items() if route not in UNCOUNTED)


@pytest.fixture(scope="session")
def quota_cli() -> QuotaCLI:
    return QuotaCLI()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Callable[[str], EmulatorProcess]]:
    """`emulator(SIM_URL)` starts `sweep emulate`; every one started is stopped after the test."""
    started: list[EmulatorProcess] = []

    def start(workspace: str) -> EmulatorProcess:
        running = EmulatorProcess(workspace, tmp_path / f"emulator{len(started)}")
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.stop()
