"""A `sweep daemon` refused for its input writes nothing, as a refused `sweep run` does; a daemon
stopped before its first cycle is described without a Python `None`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sweepledger.collectors.daemon import DaemonOptions, SweepDaemon
from sweepledger.collectors.runner import RunOptions

if TYPE_CHECKING:
    from conftest import Ops

SOURCE = "sim://?subjects=2"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--source", "sim://?subjects=3"], "covers source sim://?subjects=2"),
        (["--source", SOURCE, "--months-back", "2"], "was opened with"),
        (["--source", SOURCE, "--subjects", "nobody@example.com"], "nobody@example.com is not"),
    ],
)
def test_a_refused_daemon_leaves_the_ledger_unchanged(
    tmp_path: Path, ops: Ops, flags: list[str], needle: str
) -> None:
    """Another scope, another window or a subject outside the open sweep's roster: exit 2 and
    one line, before the daemon's first HEARTBEAT (no event is appended)."""
    opened = ops.run("run", "--source", SOURCE, "--max-pages", "1", "--quiet", cwd=tmp_path)
    assert opened.returncode == 3, opened.stderr
    db = tmp_path / "sweep.db"
    before = _digest(db)
    count = ops.query(db, "SELECT count(*) FROM events")
    refused = ops.run("daemon", *flags, "--max-cycles", "1", "--quiet", cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], refused.stderr
    assert ops.query(db, "SELECT count(*) FROM events") == count
    assert ops.query(db, "SELECT count(*) FROM events WHERE kind = 'HEARTBEAT'") == [(0,)]
    assert _digest(db) == before


def test_a_daemon_refused_for_a_subject_the_source_lacks_creates_no_ledger(
    tmp_path: Path, ops: Ops
) -> None:
    """With no sweep to continue, `--subjects` is checked against the source's roster before
    anything is written: no ledger file appears."""
    refused = ops.run(
        "daemon", "--source", SOURCE, "--subjects", "nobody@example.com", "--quiet", cwd=tmp_path
    )
    assert refused.returncode == 2
    assert "nobody@example.com is not in the roster of sim://?subjects=2" in refused.stderr
    assert not (tmp_path / "sweep.db").exists()


def test_a_daemon_stopped_before_its_first_cycle_names_no_cycle(tmp_path: Path, ops: Ops) -> None:
    """A signal before the first cycle stops the daemon with no cycle run: `status` says so in
    words, never `cycle None`."""
    db = tmp_path / "sweep.db"
    daemon = SweepDaemon(db, RunOptions(SOURCE, ("gmail",)), DaemonOptions(max_cycles=1))
    daemon.request_stop("SIGTERM")
    outcome = daemon.run()
    assert outcome.cycles == [] and outcome.exit_code == 0
    status = ops.run("status", "--db", str(db), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    line = next(x for x in status.stdout.splitlines() if x.startswith(f"daemon {daemon.daemon_id}"))
    assert "stopped before its first cycle (SIGTERM)" in line and "None" not in line
