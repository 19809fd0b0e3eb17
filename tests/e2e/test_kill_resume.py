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


def _kill_mid_attempt(cli: SweepCLI, folder: Path) -> str:
    """Start a sweep with four pairs in flight, SIGKILL it once it has paged and while an attempt
    is open; returns its run id."""
    db = folder / "sweep.db"
    proc = cli.start("run", "--exhaust", "--workers", "4", "--source", SOURCE, cwd=folder)
    open_attempts = (
        "SELECT COUNT(*) FROM events s WHERE s.kind = 'START' AND NOT EXISTS (SELECT 1 FROM "
        "events e WHERE e.kind = 'END' AND e.service = s.service AND e.subject = s.subject "
        "AND e.seq > s.seq)"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            pages = cli.query(db, "SELECT COUNT(*) FROM events WHERE kind = 'PAGE'")[0][0]
            if pages >= 12 and cli.query(db, open_attempts)[0][0]:
                break
        except Exception:
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert cli.query(db, open_attempts)[0][0], "no attempt was open when the run died"
    return str(cli.query(db, "SELECT run_id FROM events WHERE kind = 'RUN_START'")[0][0])


def test_a_killed_run_is_interrupted_in_every_view(tmp_path: Path, cli: SweepCLI) -> None:
    """After SIGKILL, `status` (text and JSON), `replay --json` and `runs` all call the run
    interrupted (stale), as the status headline does, and status and replay stay equal."""
    run_id = _kill_mid_attempt(cli, tmp_path)
    status = cli.run_json("status", cwd=tmp_path)
    replayed = cli.run_json("replay", cwd=tmp_path)
    history = cli.run_json("runs", cwd=tmp_path)
    assert status["headline"].startswith(f"INTERRUPTED: run {run_id} died without ending")
    for runs in (status["runs"], replayed["runs"], history):
        assert (runs[0]["run_id"], runs[0]["status"]) == (run_id, "interrupted")
        assert runs[0]["reason"].startswith("stale:")
    assert cli.without_clock(status) == cli.without_clock(replayed)
    text = cli.run("status", cwd=tmp_path).stdout
    [line] = [line for line in text.splitlines() if line.startswith(f"  {run_id}  ")]
    assert line.split()[1] == "interrupted" and "running" not in line


def test_a_killed_runs_figures_do_not_change_when_the_next_run_closes_it(
    tmp_path: Path, cli: SweepCLI
) -> None:
    """A run killed and later closed `aborted stale` by the next run worked until its own last
    event: its duration and rate are the same before and after the close, in `runs` and
    `status`, and do not count the time it lay dead."""
    run_id = _kill_mid_attempt(cli, tmp_path)
    before = cli.run_json("runs", cwd=tmp_path)[0]
    time.sleep(1.5)  # dead time, which is not the run's work
    assert cli.run("run", "--exhaust", "--source", SOURCE, cwd=tmp_path).returncode == 0
    after = next(r for r in cli.run_json("runs", cwd=tmp_path) if r["run_id"] == run_id)
    assert (after["status"], after["reason"]) == ("aborted", "stale")
    assert after["finished"] is not None
    for key in ("duration_s", "items_per_s", "last_event", "counters"):
        assert after[key] == before[key], key
    [shown] = [r for r in cli.run_json("status", cwd=tmp_path)["runs"] if r["run_id"] == run_id]
    assert (shown["duration_s"], shown["items_per_s"]) == (
        before["duration_s"],
        before["items_per_s"],
    )


def test_a_pair_left_open_by_a_killed_run_says_so(tmp_path: Path, cli: SweepCLI) -> None:
    """A pair whose attempt the killed run never closed is PARTIAL with the reason `interrupted:
    run ... ended without closing the attempt`, in `status` and `replay` alike (the fold records
    the same reason when the next run closes the run: tests/projections/test_run_views.py)."""
    run_id = _kill_mid_attempt(cli, tmp_path)
    why = f"interrupted: run {run_id} ended without closing the attempt"
    status = cli.run_json("status", cwd=tmp_path)
    interrupted = [p for p in status["problems"] if p["interrupted"]]
    assert interrupted and all((p["state"], p["detail"]) == ("PARTIAL", why) for p in interrupted)
    assert cli.without_clock(status) == cli.without_clock(cli.run_json("replay", cwd=tmp_path))
    first = interrupted[0]
    line = (
        f"  {first['service']:<9} {first['subject']}  PARTIAL  attempts {first['attempts']}: {why}"
    )
    assert line in cli.run("status", cwd=tmp_path).stdout.splitlines()
