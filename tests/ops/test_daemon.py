"""Acceptance 1: `sweep daemon` cycles, exact run counters, the held lock and its signals."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

if TYPE_CHECKING:
    from conftest import Ops

AUTO = "sim://?subjects=3&generation=auto"
SLOW = "sim://?subjects=3&latency_ms=40&generation=auto"

Snapshot = dict[str, dict[tuple[str, str], tuple[Any, ...]]]


def _snapshot_at_idle(ops: Ops, db: Path, cycle: int) -> Snapshot:
    """The item tables as cycle `cycle` left them: read while the daemon sleeps after it, in one
    read transaction whose newest event is that cycle's idle HEARTBEAT (nothing after it)."""
    sql = (
        "SELECT seq FROM events WHERE kind = 'HEARTBEAT' AND json_extract(data, '$.state') = "
        f"'idle' AND json_extract(data, '$.cycle') = {cycle}"
    )
    beat = ops.wait_sql(db, sql, timeout=30)
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        head = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        assert head == beat, f"cycle {cycle + 1} started before the snapshot (interval too short)"
        tables = {svc: ops.items(conn, table) for svc, table in ops.ITEM_TABLES.items()}
        conn.execute("COMMIT")
    finally:
        conn.close()
    return tables


def _diff(
    before: dict[tuple[str, str], tuple[Any, ...]], after: dict[tuple[str, str], tuple[Any, ...]]
) -> dict[str, int]:
    """What the sink must have counted to turn `before` into `after` (row[-1] is `deleted`)."""
    counts = {"items_inserted": 0, "items_updated": 0, "items_deleted": 0}
    for key, row in after.items():
        old = before.get(key)
        deleted = bool(row[-1])
        if old is None:
            counts["items_deleted" if deleted else "items_inserted"] += 1
        elif old != row:
            counts["items_deleted" if deleted and not old[-1] else "items_updated"] += 1
    return counts


def test_daemon_three_cycles_full_then_incremental_with_exact_counters(
    tmp_path: Path, ops: Ops
) -> None:
    """`sweep daemon --max-cycles 3 --interval 1` over `generation=auto`: cycle 1 is a full
    sync, cycles 2-3 incremental polls that fetch only what changed; each run's counters in
    `sweep runs --json` equal, service by service, the change of the item tables it made."""
    db = tmp_path / "sweep.db"
    proc = ops.start(
        "daemon",
        "--db",
        str(db),
        "--source",
        AUTO,
        "--exhaust",
        "--interval",
        "1",
        "--max-cycles",
        "3",
        "--quiet",
        cwd=tmp_path,
    )
    snapshots: list[Snapshot] = [{svc: {} for svc in ops.ITEM_TABLES}]
    snapshots.append(_snapshot_at_idle(ops, db, 1))
    snapshots.append(_snapshot_at_idle(ops, db, 2))
    code, out, err = ops.finish(proc)
    assert code == 0, out + err[-2000:]
    conn = sqlite3.connect(db)
    try:
        snapshots.append({svc: ops.items(conn, t) for svc, t in ops.ITEM_TABLES.items()})
    finally:
        conn.close()

    listed = ops.run("runs", "--db", str(db), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    runs = list(reversed(orjson.loads(listed.stdout)))
    assert [r["trigger"] for r in runs] == ["daemon cycle 1", "daemon cycle 2", "daemon cycle 3"]
    assert {r["status"] for r in runs} == {"completed"}
    for number, run in enumerate(runs, start=1):
        total_fetched = 0
        for service, table in ops.ITEM_TABLES.items():
            got = run["by_service"][service]
            want = _diff(snapshots[number - 1][service], snapshots[number][service])
            for name, value in want.items():
                assert got[name] == value, (number, table, name, got, want)
            parts = ("items_inserted", "items_updated", "items_unchanged", "items_deleted")
            assert got["items_fetched"] == sum(got[k] for k in parts)
            total_fetched += got["items_fetched"]
        c = run["counters"]
        assert c["items_fetched"] == total_fetched
        assert c["pairs_attempted"] == c["pairs_completed"] == 12
        assert run["options"]["run_to_completion"] is True
        # the counters are the ledger's: the sum of this run's PAGE counts
        pages = ops.query(
            db,
            "SELECT coalesce(sum(json_extract(data, '$.count')), 0) FROM events "
            "WHERE kind = 'PAGE' AND run_id = ?",
            (run["run_id"],),
        )
        assert pages == [(total_fetched,)]
    full, second, third = (r["counters"] for r in runs)
    assert (
        full["items_inserted"]
        == full["items_fetched"]
        == sum(len(t) for t in snapshots[1].values())
    )
    for later in (second, third):
        assert 0 < later["items_fetched"] < full["items_fetched"] / 5
        assert later["items_inserted"] > 0
    modes = ops.query(
        db,
        "SELECT r.run_id, count(*) FROM events e JOIN runs r ON e.run_id = r.run_id WHERE "
        "e.kind = 'START' AND json_extract(e.data, '$.cursor_before') IS NULL GROUP BY r.run_id",
    )
    assert modes == [(runs[0]["run_id"], 12)], "only cycle 1 may start a pair without a cursor"
    assert ops.run("check", "--db", str(db), "--require-complete", cwd=tmp_path).returncode == 0


def _idle_daemon(ops: Ops, db: Path, cwd: Path) -> subprocess.Popen[str]:
    """A daemon that finished its first cycle and sleeps (60 s) before the next."""
    proc = ops.start(
        "daemon", "--db", str(db), "--source", AUTO, "--exhaust", "--interval", "60", "--quiet",
        cwd=cwd,
    )  # fmt: skip
    ops.wait_sql(
        db,
        "SELECT count(*) FROM events WHERE kind = 'HEARTBEAT' AND "
        "json_extract(data, '$.state') = 'idle'",
    )
    return proc


def test_an_idle_daemon_holds_the_lock_shows_idle_and_exits_0_at_once_on_sigterm(
    tmp_path: Path, ops: Ops
) -> None:
    """While the daemon sleeps it keeps the ledger: `sweep run` and a second daemon exit 4
    naming it; `status` says IDLE with the next cycle's time; SIGTERM ends it at once, exit 0."""
    db = tmp_path / "sweep.db"
    proc = _idle_daemon(ops, db, tmp_path)
    daemon_id = ops.query(
        db, "SELECT json_extract(data, '$.daemon') FROM events WHERE kind = 'HEARTBEAT' LIMIT 1"
    )[0][0]
    for args in (("run", "--exhaust"), ("daemon", "--max-cycles", "1")):
        refused = ops.run(*args, "--db", str(db), "--source", AUTO, cwd=tmp_path)
        assert refused.returncode == 4, refused.stderr
        assert f"is held by daemon {daemon_id} (pid {proc.pid}" in refused.stderr
        assert "sweep daemon daemon-" not in refused.stdout, "a refused daemon announced itself"
    status = orjson.loads(ops.run("status", "--db", str(db), "--json", cwd=tmp_path).stdout)
    assert status["verdict"] == "IDLE"
    assert status["daemon"]["state"] == "idle" and status["daemon"]["next_cycle_at"]
    text = ops.run("status", "--db", str(db), cwd=tmp_path).stdout
    assert text.startswith("IDLE: daemon ") and "next cycle at" in text
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, out, _ = ops.finish(proc, timeout=10)
    assert code == 0, out
    assert time.monotonic() - sent < 2.0
    runs = ops.query(db, "SELECT count(*) FROM events WHERE kind = 'RUN_START'")
    assert runs == [(1,)], "no cycle may start after the signal"
    after = orjson.loads(ops.run("status", "--db", str(db), "--json", cwd=tmp_path).stdout)
    assert after["verdict"] == "COMPLETE" and after["daemon"]["state"] == "stopped"
    assert ops.run("check", "--db", str(db), cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_cycle_stops_its_run_as_a_run_stops(
    tmp_path: Path, ops: Ops, signum: signal.Signals, code: int
) -> None:
    """SIGTERM/SIGINT while a cycle runs: the run records its interrupted attempt (CURSOR_SKIP
    reason=interrupted, RUN_END interrupted) and the daemon exits 143/130 without sleeping."""
    db = tmp_path / "sweep.db"
    proc = ops.start(
        "daemon",
        "--db",
        str(db),
        "--source",
        SLOW,
        "--exhaust",
        "--interval",
        "60",
        "--quiet",
        cwd=tmp_path,
    )
    ops.wait_sql(db, "SELECT count(*) FROM events WHERE kind = 'PAGE'")
    sent = time.monotonic()
    proc.send_signal(signum)
    got, out, _ = ops.finish(proc, timeout=10)
    assert got == code, out
    assert time.monotonic() - sent < 5
    ends = ops.query(
        db,
        "SELECT json_extract(e.data, '$.status'), r.trigger FROM events e "
        "JOIN runs r USING (run_id) WHERE e.kind = 'RUN_END'",
    )
    assert ends == [("interrupted", "daemon cycle 1")]
    skips = ops.query(
        db,
        "SELECT count(*) FROM events WHERE kind = 'CURSOR_SKIP' AND "
        "json_extract(data, '$.reason') = 'interrupted'",
    )
    assert skips == [(1,)]
    beat = ops.query(
        db,
        "SELECT json_extract(data, '$.state') FROM events "
        "WHERE kind = 'HEARTBEAT' ORDER BY seq DESC LIMIT 1",
    )
    assert beat == [("stopped",)]
    assert ops.run("check", "--db", str(db), cwd=tmp_path).returncode == 0


def test_a_killed_daemon_is_told_from_an_idle_one(tmp_path: Path, ops: Ops) -> None:
    """A daemon killed while it sleeps leaves a HEARTBEAT that says idle but no lock: `status`
    calls it dead (not IDLE), and the next run takes the ledger."""
    db = tmp_path / "sweep.db"
    proc = _idle_daemon(ops, db, tmp_path)
    proc.send_signal(signal.SIGKILL)
    ops.finish(proc)
    status = orjson.loads(ops.run("status", "--db", str(db), "--json", cwd=tmp_path).stdout)
    assert status["verdict"] == "COMPLETE"
    assert status["daemon"]["state"] == "dead"
    assert "DEAD" in ops.run("status", "--db", str(db), cwd=tmp_path).stdout
    rerun = ops.run("run", "--db", str(db), "--source", AUTO, "--exhaust", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-500:]


def test_the_daemon_counts_its_cycles_in_words(tmp_path: Path, ops: Ops) -> None:
    """One cycle is `1 cycle`, in the opening line and in the closing one."""
    done = ops.run(
        "daemon", "--source", "sim://?subjects=1", "--exhaust", "--interval", "0",
        "--max-cycles", "1", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, *_, last = done.stdout.strip().splitlines()
    assert first.endswith(", every 0s, 1 cycle"), first
    assert last.endswith(": stopped after 1 cycle, exit 0"), last
