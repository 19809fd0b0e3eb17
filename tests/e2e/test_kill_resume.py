"""Acceptance 2: a sweep killed with SIGKILL continues where it stopped when rerun."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import SweepCLI


SOURCE = "sim://?subjects=6&latency_ms=30"


def _wait_for_pages(cli: SweepCLI, db: Path, at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                pages = cli.query(db, "SELECT COUNT(*) FROM events WHERE kind = 'PAGE'")[0][0]
                units = cli.query(
                    db,
                    "SELECT COUNT(*) FROM sync_cursor WHERE service = 'chat' "
                    "AND key LIKE 'last_create_time@%'",
                )[0][0]
            except Exception:
                pages = units = 0
            if isinstance(pages, int) and pages >= at_least and units:
                return
        time.sleep(0.05)
    raise AssertionError("the run made no progress")


def test_sigkill_then_rerun_converges_to_the_same_items(tmp_path: Path, cli: SweepCLI) -> None:
    """After SIGKILL mid-run, the same command skips what is complete (spaces with cursors too),
    shows no partial, exits 0, passes check, and stores the same chat messages as a clean run."""
    killed = tmp_path / "killed"
    clean = tmp_path / "clean"
    killed.mkdir()
    clean.mkdir()
    args = ("run", "--full-sweep", "--exhaust", "--services", "chat", "--source", SOURCE)
    proc = cli.start(*args, cwd=killed)
    _wait_for_pages(cli, killed / "sweep.db", 12)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    db = killed / "sweep.db"
    done_units = cli.query(
        db,
        "SELECT COUNT(*) FROM sync_cursor WHERE service = 'chat' AND key LIKE 'last_create_time@%'",
    )[0][0]
    assert isinstance(done_units, int) and done_units >= 1
    resumed = cli.run(*args, cwd=killed)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "partial=1" not in resumed.stderr
    first_pages = re.findall(r"phase=PAGE .*unit:(spaces/\S+) page:1 ", resumed.stderr)
    completed_before = {
        r[0]
        for r in cli.query(
            db,
            "SELECT DISTINCT json_extract(data, '$.unit') FROM events WHERE kind = "
            "'CURSOR_WRITE' AND json_extract(data, '$.unit') IS NOT NULL AND seq < ("
            "SELECT MIN(seq) FROM events WHERE kind = 'RUN_END' AND "
            "json_extract(data, '$.reason') = 'stale')",
        )
    }
    assert completed_before and not completed_before & set(first_pages)
    assert cli.run("check", "--require-complete", cwd=killed).returncode == 0
    reference = cli.run(*args, cwd=clean)
    assert reference.returncode == 0
    assert cli.items(db, "chat_messages") == cli.items(clean / "sweep.db", "chat_messages")
    stale = cli.query(db, "SELECT data FROM events WHERE kind = 'RUN_END'")
    assert any('"aborted"' in str(r[0]) and '"stale"' in str(r[0]) for r in stale)
