"""Fixtures shared by every layer's tests: a ledger path, an opened ledger in a tmp folder, the
installed `sweep` command as the end-to-end tests run it, and emulators of Google's APIs (as
`sweep emulate` subprocesses, or on threads of the test process).

Test folders reach `SweepCommand` through the `sweep_command` fixture and wrap it in their own
helpers (`cli`, `gcli`, `ops`, `quota_cli`): tests import no helper module, so pytest never needs
the repository root on sys.path.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from sweepledger.collectors.emulator.control import EmulatorProcess
from sweepledger.collectors.emulator.server import Emulator as EmulatorApp
from sweepledger.collectors.emulator.server import EmulatorServer
from sweepledger.collectors.emulator.tokens import ServiceAccount
from sweepledger.ledger.store import SqliteStore

ITEM_TABLES = ("gmail_messages", "calendar_events", "chat_messages", "drive_files")
SETTINGS = ("SWEEP_DB", "SWEEP_SOURCE", "MAX_SECONDS_PER_RUN", "RUN_TO_COMPLETION", "AUTH_DEBUG")
"""Environment settings the command reads; a test's run must not inherit the developer's."""


class SweepCommand:
    """The installed `sweep` command, run as a subprocess as an operator would run it, and plain
    reads of the ledgers it writes."""

    ITEM_TABLES = ITEM_TABLES

    def __init__(self) -> None:
        found = shutil.which("sweep")
        assert found is not None, "the sweep command is not installed"
        self.path = found

    @staticmethod
    def env(**extra: str) -> dict[str, str]:
        """This process's environment without the command's own settings, plus `extra`."""
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
        env.update(extra)
        return env

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run `sweep ARGS...` to the end and capture its output."""
        return subprocess.run(
            [self.path, *args],
            cwd=cwd,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdout: int | IO[Any] = subprocess.PIPE,
        stderr: int | IO[Any] = subprocess.PIPE,
    ) -> subprocess.Popen[str]:
        """Start `sweep ARGS...` in the background; the caller waits for it and closes pipes."""
        return subprocess.Popen(
            [self.path, *args],
            cwd=cwd,
            env=env or self.env(),
            text=True,
            stdout=stdout,
            stderr=stderr,
        )

    @staticmethod
    def query(
        db: Path, sql: str, params: Sequence[object] = (), *, readonly: bool = False
    ) -> list[tuple[Any, ...]]:
        """Rows of one query; `readonly` never creates the file and never writes to it."""
        target = f"{db.resolve().as_uri()}?mode=ro" if readonly else str(db)
        conn = sqlite3.connect(target, uri=readonly)
        try:
            return [tuple(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def run_json(self, *args: str, cwd: Path) -> Any:
        """The decoded `--json` output of a command that must succeed."""
        done = self.run(*args, "--json", cwd=cwd)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    @staticmethod
    def without_clock(report: dict[str, Any]) -> dict[str, Any]:
        """A status report without what the reading's own time gives (ages) or replay adds."""
        report = {k: v for k, v in report.items() if k not in ("replayed_events", "seconds")}
        report["runs"] = [
            {k: v for k, v in r.items() if k != "last_event_age_s"} for r in report["runs"]
        ]
        return report

    @staticmethod
    def items(db: Path, table: str) -> set[tuple[Any, ...]]:
        """Every row of an item table except the ledger positions it was written and listed at
        (`deleted` included: a tombstone is part of what a sweep must agree on)."""
        conn = sqlite3.connect(db)
        try:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            keep = ", ".join(c for c in cols if c not in ("last_seq", "listed_seq"))
            return {tuple(r) for r in conn.execute(f"SELECT {keep} FROM {table}")}
        finally:
            conn.close()

    def snapshot(self, db: Path) -> dict[str, set[tuple[Any, ...]]]:
        """Every item table's rows (what two sweeps of one workspace must agree on)."""
        return {table: self.items(db, table) for table in ITEM_TABLES}


@pytest.fixture(scope="session")
def sweep_command() -> SweepCommand:
    return SweepCommand()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's ledger lives (the file does not exist yet)."""
    return tmp_path / "ledger.db"


@pytest.fixture
def failing_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every worker process started from here on exits 1 at once, as a broken install would."""
    false = shutil.which("false")
    assert false is not None, "no `false` program to stand in for a broken interpreter"
    monkeypatch.setattr(sys, "executable", false)


@pytest.fixture
def fresh_db(db_path: Path) -> Iterator[SqliteStore]:
    """A new, empty ledger opened for appending; closed after the test."""
    store = SqliteStore.open(db_path, create=True)
    try:
        yield store
    finally:
        store.close()


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis imports libcst to print a patch for a failing example, and libcst warns on
    # import; with `filterwarnings = error` that turned every hypothesis failure into an
    # INTERNALERROR hiding the falsifying example.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )


# -- emulators of Google's APIs (the Google and quota tests) ---------------------------------


@dataclass
class EmulatorFactory:
    """Starts `sweep emulate` subprocesses (`EmulatorProcess`) and stops every one it started."""

    command: SweepCommand
    """The `sweep_command` fixture: its environment (without the developer's settings)."""
    base: Path
    started: list[EmulatorProcess] = field(default_factory=list)

    def __call__(self, workspace: str) -> EmulatorProcess:
        folder = self.base / f"emulator{len(self.started)}"
        emulator = EmulatorProcess(workspace, folder, env=self.command.env())
        self.started.append(emulator)
        return emulator

    def stop_all(self) -> None:
        for emulator in self.started:
            emulator.stop()


@pytest.fixture
def emulators(tmp_path: Path, sweep_command: SweepCommand) -> Iterator[EmulatorFactory]:
    """Start emulators with `emulators(SIM_URL)`; every one is stopped after the test."""
    factory = EmulatorFactory(sweep_command, tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def module_emulators(
    tmp_path_factory: pytest.TempPathFactory, sweep_command: SweepCommand
) -> Iterator[EmulatorFactory]:
    """The same, shared by the tests of one module (for read-only use of one workspace)."""
    factory = EmulatorFactory(sweep_command, tmp_path_factory.mktemp("emulators"))
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def inproc_emulator(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], EmulatorServer]]:
    """Start emulators on threads of this process (fast unit tests); each has `key_path`, its
    key file. All are stopped when the module's tests are done."""
    started: list[EmulatorServer] = []

    def start(workspace: str) -> EmulatorServer:
        account = ServiceAccount.create()
        running = EmulatorServer(
            0, lambda url: EmulatorApp(workspace, "admin@example.com", url + "/token", account)
        )
        key = tmp_path_factory.mktemp("key") / "key.json"
        key.write_bytes(json.dumps(account.key_file(running.url + "/token")).encode())
        running.key_path = key  # type: ignore[attr-defined]
        running.serve_in_thread()
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.stop()
