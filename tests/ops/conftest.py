"""Helpers for the operating tests: the installed `sweep` as a subprocess, ledger reads, a server.

Tests get them through the `ops` fixture (no helper module is imported, so pytest never needs the
repository root on sys.path). Every process a helper starts is waited for and its pipes closed,
because `filterwarnings = error` turns a leaked pipe into a failure.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

ITEM_TABLES = {
    "gmail": "gmail_messages",
    "calendar": "calendar_events",
    "chat": "chat_messages",
    "drive": "drive_files",
}


class Ops:
    """What the tests do to and read from a ledger."""

    ITEM_TABLES = ITEM_TABLES

    def __init__(self, command: Any) -> None:
        self.command = command
        """The `sweep_command` fixture (tests/conftest.py)."""
        self.procs: list[subprocess.Popen[str]] = []

    def run(self, *args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done: subprocess.CompletedProcess[str] = self.command.run(*args, cwd=cwd, timeout=timeout)
        return done

    def start(self, *args: str, cwd: Path) -> subprocess.Popen[str]:
        """Start `sweep ARGS...`; `cleanup` kills it if the test did not wait for it."""
        proc: subprocess.Popen[str] = self.command.start(*args, cwd=cwd)
        self.procs.append(proc)
        return proc

    def finish(self, proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)

    def query(self, db: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Read-only: polling a ledger a run is writing must not create or change it."""
        rows: list[tuple[Any, ...]] = self.command.query(db, sql, params, readonly=True)
        return rows

    @staticmethod
    def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
        """Poll `check` until it returns something truthy (errors count as not yet)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = check()
            except (sqlite3.Error, OSError):
                value = None
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what or check}")

    def wait_sql(self, db: Path, sql: str, timeout: float = 30) -> Any:
        def check() -> Any:
            if not db.exists():
                return None
            rows = self.query(db, sql)
            return rows[0][0] if rows and rows[0][0] else None

        return self.wait_for(check, timeout, sql)

    @staticmethod
    def items(conn: sqlite3.Connection, table: str) -> dict[tuple[str, str], tuple[Any, ...]]:
        """An item table as {(subject_email, id): row without last_seq and listed_seq} (so
        `deleted` is the row's last value)."""
        try:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        except sqlite3.Error:
            return {}
        keep = [c for c in cols if c not in ("last_seq", "listed_seq")]
        if not keep:
            return {}
        rows = conn.execute(f"SELECT {', '.join(keep)} FROM {table}")
        return {(r[0], r[1]): tuple(r) for r in rows}

    def serve(self, db: Path, cwd: Path) -> tuple[subprocess.Popen[str], str]:
        """`sweep serve --port 0`; returns the process and its base URL (from its first line)."""
        proc = self.start("serve", "--db", str(db), "--port", "0", cwd=cwd)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + (proc.stderr.read() if proc.stderr else "")
        url = line.split("http://", 1)[1].split("/", 1)[0]
        return proc, f"http://{url}"

    @staticmethod
    def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """An HTTP request on loopback with no proxy; returns status, headers and body."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(url, method=method)
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read()

    def get_json(self, url: str) -> Any:
        status, _, body = self.get(url)
        assert status == 200, (status, body[:300])
        return orjson.loads(body)


@pytest.fixture
def ops(sweep_command: Any) -> Iterator[Ops]:
    helper = Ops(sweep_command)
    try:
        yield helper
    finally:
        helper.cleanup()


@pytest.fixture(scope="module")
def module_ops(sweep_command: Any) -> Iterator[Ops]:
    helper = Ops(sweep_command)
    try:
        yield helper
    finally:
        helper.cleanup()
