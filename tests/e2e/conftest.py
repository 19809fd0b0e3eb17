"""End-to-end helpers: run the installed `sweep` command as a subprocess, read its ledger."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

SWEEP = shutil.which("sweep")


def sweep_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SWEEP_DB", "SWEEP_SOURCE", "MAX_SECONDS_PER_RUN", "RUN_TO_COMPLETION")
    }
    env.update(extra)
    return env


def sweep(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `sweep ARGS...` and capture its output."""
    assert SWEEP is not None, "the sweep command is not installed"
    return subprocess.run(
        [SWEEP, *args],
        cwd=cwd,
        env=env or sweep_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_sweep(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start `sweep ARGS...` in the background (for kill and signal tests)."""
    assert SWEEP is not None, "the sweep command is not installed"
    return subprocess.Popen(
        [SWEEP, *args],
        cwd=cwd,
        env=env or sweep_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def query(db: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


ITEM_TABLES = ("gmail_messages", "calendar_events", "chat_messages", "drive_files")


def item_snapshot(db: Path, table: str) -> set[tuple[object, ...]]:
    """Every row of an item table except the ledger position it was written at."""
    with sqlite3.connect(db) as conn:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "last_seq"]
        return {tuple(r) for r in conn.execute(f"SELECT {', '.join(cols)} FROM {table}")}


class SweepCLI:
    """The helpers above, handed to tests as the `cli` fixture (tests import no helper module,
    so pytest never needs the repository root on sys.path)."""

    run = staticmethod(sweep)
    start = staticmethod(start_sweep)
    query = staticmethod(query)
    items = staticmethod(item_snapshot)
    env = staticmethod(sweep_env)
    ITEM_TABLES = ITEM_TABLES


@pytest.fixture
def cli() -> SweepCLI:
    return SweepCLI()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
