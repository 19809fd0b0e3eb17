"""One test per reliability behaviour not covered elsewhere: item retries, passes, the sync
window, expired cursors and an operator's cursor reset."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import SweepCLI


def _events(cli: SweepCLI, db: Path, kind: str) -> list[dict[str, object]]:
    rows = cli.query(
        db, "SELECT service, subject, data FROM events WHERE kind = ? ORDER BY seq", (kind,)
    )
    return [{"service": s, "subject": e, **json.loads(str(d))} for s, e, d in rows]


def test_only_failed_items_are_fetched_again(workdir: Path, cli: SweepCLI) -> None:
    """Items that failed are recorded by id; the next attempt fetches exactly those first, no
    cursor is written while one is outstanding, and the sweep then completes with every item."""
    source = "sim://?subjects=2&item_errors=0.05&seed=4"
    first = cli.run("run", "--exhaust", "--source", source, "--services", "gmail", cwd=workdir)
    db = workdir / "sweep.db"
    failed = {i for p in _events(cli, db, "PAGE") for i in p.get("failed_ids", [])}  # type: ignore[attr-defined]
    assert failed, "the seed must make some items fail"
    assert first.returncode == 3
    status = json.loads(cli.run("status", "--json", cwd=workdir).stdout)
    outstanding = {i for p in status["problems"] for i in p["outstanding"]}
    assert outstanding == failed
    writes_before = len(_events(cli, db, "CURSOR_WRITE"))
    second = cli.run("run", "--exhaust", "--source", source, "--services", "gmail", cwd=workdir)
    retry_pages = [p for p in _events(cli, db, "PAGE") if p.get("retried_ids")]
    assert {i for p in retry_pages for i in p["retried_ids"]} >= failed  # type: ignore[union-attr]
    for page in retry_pages:
        assert page["count"] + len(page.get("failed_ids", [])) == len(page["retried_ids"])  # type: ignore[arg-type]
    while second.returncode == 3:
        second = cli.run("run", "--exhaust", "--source", source, "--services", "gmail", cwd=workdir)
    assert second.returncode == 0
    assert len(_events(cli, db, "CURSOR_WRITE")) > writes_before
    stored = {r[0] for r in cli.query(db, "SELECT id FROM gmail_messages")}
    assert failed <= stored
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0


def test_items_failing_past_max_attempts_end_err_item_failed(workdir: Path, cli: SweepCLI) -> None:
    """An item still failing at the --max-attempts-th attempt ends the pair ERR:ItemFailed,
    naming the ids, instead of COMPLETE."""
    source = "sim://?subjects=1&item_errors=0.9&seed=2"
    args = ("run", "--exhaust", "--source", source, "--services", "gmail", "--max-attempts", "2")
    cli.run(*args, cwd=workdir)
    second = cli.run(*args, cwd=workdir)
    assert second.returncode == 3
    assert "err=ItemFailed" in second.stderr
    status = json.loads(cli.run("status", "--json", cwd=workdir).stdout)
    problem = status["problems"][0]
    assert problem["state"] == "ERR:ItemFailed"
    assert "items failed in 2 attempts" in problem["detail"]
    assert problem["outstanding"][0] in problem["detail"]


def test_passes_retry_errored_pairs_in_the_same_run(workdir: Path, cli: SweepCLI) -> None:
    """With --passes, pairs left in ERR after a pass are tried again in the same run."""
    source = "sim://?subjects=3&errors=0.2&seed=9"
    args = ("run", "--exhaust", "--source", source, "--max-retries", "0", "--retry-wait", "0")
    one = cli.run(*args, "--db", "one.db", cwd=workdir)
    many = cli.run(*args, "--db", "many.db", "--passes", "12", cwd=workdir)
    assert one.returncode == 3
    assert many.returncode == 0, many.stdout
    starts = cli.query(workdir / "many.db", "SELECT COUNT(*) FROM events WHERE kind = 'START'")
    assert starts[0][0] > 12  # more attempts than pairs: the later passes retried the errors
    runs = cli.query(workdir / "many.db", "SELECT COUNT(*) FROM events WHERE kind = 'RUN_START'")
    assert runs == [(1,)]


def test_since_bounds_the_full_sync_and_is_part_of_the_sweep(workdir: Path, cli: SweepCLI) -> None:
    """--since keeps older items out of a full sync (reaching the bound counts as exhausted),
    and resuming the sweep with another window is refused."""
    source = "sim://?subjects=2&page_size=5"
    bounded = cli.run(
        "run",
        "--exhaust",
        "--source",
        source,
        "--since",
        "2025-12-01",
        "--db",
        "bounded.db",
        cwd=workdir,
    )
    full = cli.run("run", "--exhaust", "--source", source, "--db", "full.db", cwd=workdir)
    assert bounded.returncode == 0 and full.returncode == 0
    dates = cli.query(workdir / "bounded.db", "SELECT MIN(internal_date) FROM gmail_messages")
    assert str(dates[0][0]) >= "2025-12-01"
    count = "SELECT COUNT(*) FROM gmail_messages"
    bounded_n = cli.query(workdir / "bounded.db", count)[0][0]
    assert 0 < bounded_n < cli.query(workdir / "full.db", count)[0][0]  # type: ignore[operator]
    partial = cli.run(
        "run",
        "--source",
        source,
        "--since",
        "2025-06-01",
        "--max-pages",
        "1",
        "--db",
        "window.db",
        cwd=workdir,
    )
    assert partial.returncode == 3
    other = cli.run(
        "run", "--source", source, "--since", "2025-09-01", "--db", "window.db", cwd=workdir
    )
    assert other.returncode == 2 and "window" in other.stderr


def test_expired_cursors_reset_and_resync_in_full(workdir: Path, cli: SweepCLI) -> None:
    """A cursor the service declares expired is reset (CURSOR_RESET reason=expired) and the
    pair resyncs in full in the same attempt: nothing is lost, no regression is reported, and
    the items the full listing no longer holds are tombstoned, as the changes feed would have
    reported them: the item tables equal an incremental sweep's, row for row."""
    base = "sim://?subjects=2&seed=6"
    assert cli.run("run", "--exhaust", "--source", base, cwd=workdir).returncode == 0
    first = workdir / "sweep.db"
    assert all(row[-1] == 0 for t in cli.ITEM_TABLES for row in cli.items(first, t))
    expired = f"{base}&generation=2&expire_cursors=1"
    run = cli.run("run", "--exhaust", "--source", expired, "--no-resume", cwd=workdir)
    assert run.returncode == 0, run.stderr[-800:]
    db = workdir / "sweep.db"
    resets = _events(cli, db, "CURSOR_RESET")
    assert resets and all(r["reason"] == "expired" for r in resets)
    assert {r["service"] for r in resets} >= {"gmail", "calendar", "drive"}
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0
    reference = workdir / "ref"
    reference.mkdir()
    gen2 = f"{base}&generation=2"
    assert cli.run("run", "--exhaust", "--source", base, cwd=reference).returncode == 0
    assert cli.run("run", "--exhaust", "--source", gen2, cwd=reference).returncode == 0
    assert cli.snapshot(db) == cli.snapshot(reference / "sweep.db")
    vanished = cli.query(db, "SELECT SUM(json_extract(data, '$.vanished')) FROM events")[0][0]
    tombstones = cli.query(db, "SELECT COUNT(*) FROM gmail_messages WHERE deleted = 1")[0][0]
    assert vanished and tombstones, "generation 2 deletes items: the resync must find them"


def test_a_resync_spread_over_runs_still_finds_every_deletion(
    tmp_path: Path, cli: SweepCLI
) -> None:
    """A resync cut into attempts of two pages, each in its own run: each attempt resumes the
    full pass from its checkpoint, which keeps the seq the pass began after, so the pass's end
    tombstones exactly what the service deleted (an incremental sweep's rows, row for row)."""
    base = "sim://?subjects=3&seed=8"
    resync, reference = tmp_path / "resync", tmp_path / "ref"
    for folder in (resync, reference):
        folder.mkdir()
        assert cli.run("run", "--exhaust", "--source", base, cwd=folder).returncode == 0
    expired = f"{base}&generation=2&expire_cursors=1"
    codes = []
    for _ in range(30):
        codes.append(cli.run("run", "--max-pages", "2", "--source", expired, cwd=resync).returncode)
        if codes[-1] == 0:
            break
    assert codes[-1] == 0 and len(codes) >= 3, codes
    gen2 = f"{base}&generation=2"
    assert cli.run("run", "--exhaust", "--source", gen2, cwd=reference).returncode == 0
    db = resync / "sweep.db"
    assert cli.snapshot(db) == cli.snapshot(reference / "sweep.db")
    resumed = cli.query(
        db,
        "SELECT COUNT(*) FROM events WHERE kind = 'PAGE' AND json_extract(data, '$.vanished') "
        "AND json_extract(data, '$.page') > 2",
    )[0][0]
    assert resumed, "some pass must have ended in a later attempt than it began"


def test_reset_cursor_forces_a_full_resync(workdir: Path, cli: SweepCLI) -> None:
    """After `sweep reset-cursor`, the pair's next attempt starts from nothing (a full listing)
    while the other pairs poll incrementally from their cursors."""
    source = "sim://?subjects=2"
    assert cli.run("run", "--exhaust", "--source", source, cwd=workdir).returncode == 0
    reset = cli.run(
        "reset-cursor",
        "--service",
        "gmail",
        "--subject",
        "user1@example.com",
        "--reason",
        "audit asked for a full copy",
        cwd=workdir,
    )
    assert reset.returncode == 0
    db = workdir / "sweep.db"
    keys = cli.query(
        db, "SELECT key FROM sync_cursor WHERE service = 'gmail' AND subject = 'user1@example.com'"
    )
    assert keys == []
    again = cli.run("run", "--exhaust", "--source", source, cwd=workdir)
    assert again.returncode == 0
    starts = [line for line in again.stderr.splitlines() if "phase=START" in line]
    full = [line for line in starts if "from:full" in line]
    assert len(full) == 1 and "service=gmail subject=user1@example.com" in full[0]
    assert len(starts) == 8
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0


def test_a_reset_during_the_pairs_attempt_is_not_undone(workdir: Path, cli: SweepCLI) -> None:
    """`reset-cursor` from another process while the pair's attempt runs from the cursor it
    forgets: the attempt does not write the cursor it earned (CURSOR_SKIP reason=reset), the
    reset is recorded again after its END, and the next run resyncs the pair in full."""
    quick = "sim://?subjects=1&page_size=500"  # one page per pass
    first = cli.run("run", "--exhaust", "--services", "gmail", "--source", quick, cwd=workdir)
    assert first.returncode == 0, first.stderr[-800:]
    slow = f"{quick}&latency_ms=2000"
    db = workdir / "sweep.db"
    head = cli.query(db, "SELECT max(seq) FROM events")[0][0]
    proc = cli.start("run", "--exhaust", "--services", "gmail", "--source", slow, cwd=workdir)
    deadline = time.monotonic() + 20
    started = "SELECT 1 FROM events WHERE kind = 'RUN_START' AND seq > ?"
    while not cli.query(db, started, (head,)):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    reset = cli.run(
        "reset-cursor",
        "--service",
        "gmail",
        "--subject",
        "user1@example.com",
        "--reason",
        "x",
        cwd=workdir,
    )
    assert reset.returncode == 0, reset.stderr
    proc.communicate(timeout=60)
    assert proc.returncode == 3  # the pair is due again: the sweep is not complete
    kinds = [k for (k,) in cli.query(db, "SELECT kind FROM events WHERE service = 'gmail'")]
    assert kinds[-5:] == ["START", "PAGE", "CURSOR_SKIP", "END", "CURSOR_RESET"], kinds
    assert _events(cli, db, "CURSOR_SKIP")[-1]["reason"] == "reset"
    rerun = cli.run("run", "--exhaust", "--services", "gmail", "--source", slow, cwd=workdir)
    assert rerun.returncode == 0, rerun.stderr[-800:]
    assert "attempt:2 from:full" in rerun.stderr
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0
