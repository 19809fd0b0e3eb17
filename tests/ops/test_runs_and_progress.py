"""Run history (`sweep runs`), a failed run's error, and the live progress `status` shows."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from sweepledger.cli.render import status_text
from sweepledger.cli.runs_cmd import runs_text
from sweepledger.collectors.retry import RetryPolicy
from sweepledger.collectors.runner import RunOptions, SweepRunner
from sweepledger.collectors.sim.source import SimSource
from sweepledger.ledger.events import Event, EventKind
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.api import check_ledger, read_status, replay
from sweepledger.projections.live import daemon_view, iso, live_progress, parse_ts
from sweepledger.projections.model import RunRow
from sweepledger.projections.runs import read_run, read_runs

if TYPE_CHECKING:
    from conftest import Ops

SOURCE = "sim://?subjects=2&page_size=5"


def _runner(db: Path, **kwargs: Any) -> SweepRunner:
    source = SimSource(SOURCE)
    options = RunOptions(source.url, ("gmail", "drive"), max_pages=None)
    return SweepRunner(db, source, options, **kwargs)


def test_a_run_that_raises_ends_failed_with_its_error_class_and_message(tmp_path: Path) -> None:
    """An exception escaping a started run (here: raised once its RUN_START is committed)
    appends RUN_END failed carrying the error's class and message; the history shows them, the
    ledger still checks clean and the next run starts normally."""
    db = tmp_path / "sweep.db"

    def explode(events: Sequence[Event]) -> None:
        if any(e.kind is EventKind.RUN_START for e in events):
            raise RuntimeError("disk on fire")

    runner = _runner(db, on_commit=explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        runner.run()
    [run] = read_runs(db)
    assert run["run_id"] == runner.run_id and run["status"] == "failed"
    assert run["error"] == {"class": "RuntimeError", "message": "disk on fire"}
    assert "failed: RuntimeError: disk on fire" in runs_text([run])
    assert check_ledger(db).ok
    assert _runner(db).run().exit_code == 0


def test_runs_cli_lists_newest_first_in_text_and_json(tmp_path: Path, ops: Ops) -> None:
    """`sweep runs` prints one line per run, newest first; `--json` the objects; `--limit N`."""
    db = tmp_path / "sweep.db"
    first = SweepRunner(db, SimSource(SOURCE), RunOptions(SOURCE, ("gmail",), max_pages=1)).run()
    second = SweepRunner(db, SimSource(SOURCE), RunOptions(SOURCE, ("gmail",))).run()
    text = ops.run("runs", "--db", str(db), cwd=tmp_path)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "status", "trigger"]
    assert lines[1].startswith(second.run_id) and lines[2].startswith(first.run_id)
    listed = orjson.loads(ops.run("runs", "--db", str(db), "--json", cwd=tmp_path).stdout)
    assert [r["run_id"] for r in listed] == [second.run_id, first.run_id]
    assert listed[1]["counters"]["pairs_partial"] == 2
    limited = ops.run("runs", "--db", str(db), "--json", "--limit", "1", cwd=tmp_path)
    assert [r["run_id"] for r in orjson.loads(limited.stdout)] == [second.run_id]
    missing = ops.run("runs", "--db", str(tmp_path / "nope.db"), cwd=tmp_path)
    assert missing.returncode == 2 and "no ledger at" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_status_shows_the_live_runs_progress(tmp_path: Path) -> None:
    """While a run works, `status` has its progress: complete pairs of the total, items so far,
    rate, ETA and the age of its last event; the run's detail says it is live."""
    db = tmp_path / "sweep.db"
    seen: list[Any] = []

    def look(events: Sequence[Event]) -> None:
        if any(e.kind is EventKind.END for e in events) and not seen:
            seen.append((read_status(db), read_run(db, runner.run_id)))

    runner = _runner(db, on_commit=look)
    runner.run()
    report, detail = seen[0]
    assert report.verdict == "RUNNING"
    progress = report.progress
    assert progress["run_id"] == runner.run_id and progress["pairs_total"] == 4
    assert progress["pairs_done"] == 1 and progress["items"] > 0
    assert progress["last_event_age_s"] is not None
    assert "progress: 1/4 pairs complete" in status_text(report)
    assert report.as_dict()["progress"] == progress
    assert detail["live"] is True and detail["status"] == "running"
    assert read_status(db).progress is None


def test_status_as_of_a_past_event_measures_time_from_that_event(tmp_path: Path) -> None:
    """Time travel shows the run as it stood right after the chosen event: live, its last event
    0 s old, its elapsed time and ETA measured from that event's time, not from today."""
    db = tmp_path / "sweep.db"
    _runner(db).run()
    with SqliteStore.open(db, readonly=True) as store:
        seq, ts, started = store.conn.execute(
            "SELECT e.seq, e.ts, s.ts FROM events e JOIN events s ON s.run_id = e.run_id "
            "AND s.kind = 'RUN_START' WHERE e.kind = 'END' ORDER BY e.seq LIMIT 1"
        ).fetchone()
    for report in (read_status(db, as_of=seq), replay(db, as_of=seq).report):
        progress = report.progress
        assert report.verdict == "RUNNING"
        assert progress["last_event_age_s"] == 0.0
        expected = (parse_ts(ts) - parse_ts(started)).total_seconds()
        assert progress["elapsed_s"] == round(expected, 1)
        if progress["eta_at"] is not None:
            assert parse_ts(progress["eta_at"]) >= parse_ts(ts)
            assert parse_ts(progress["eta_at"]) < parse_ts(ts) + timedelta(hours=1)


def test_run_history_folds_the_events_when_the_tables_are_of_another_version(
    tmp_path: Path,
) -> None:
    """A reader never rebuilds tables: with projections of another version it folds the events,
    and the history and a run's detail say the same as the tables did."""
    db = tmp_path / "sweep.db"
    SweepRunner(db, SimSource(SOURCE), RunOptions(SOURCE, ("gmail",), max_pages=1)).run()
    run_id = read_runs(db)[0]["run_id"]
    from_tables = (read_runs(db), read_run(db, run_id))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = 'other' WHERE key = 'projection_version'")

    def without_ages(record: dict[str, Any] | None) -> dict[str, Any]:
        return {k: v for k, v in (record or {}).items() if "age" not in k}

    folded = (read_runs(db), read_run(db, run_id))
    assert [without_ages(r) for r in folded[0]] == [without_ages(r) for r in from_tables[0]]
    assert without_ages(folded[1]) == without_ages(from_tables[1])
    assert folded[1] is not None and folded[1]["checkpoint"]["unfinished_pairs"] == 2


def _run_row(**counters: int) -> RunRow:
    return RunRow(
        run_id="run-1",
        sweep_id="sweep-1",
        started_seq=1,
        started_ts="2026-01-01T00:00:00.000Z",
        trigger="daemon cycle 7",
        last_ts="2026-01-01T00:00:09.000Z",
        counters=counters,
    )


def test_live_progress_rates_and_eta() -> None:
    """The ETA is the remaining pairs at the run's pace of completing them."""
    now = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    counters = {"pairs_total": 40, "complete:gmail": 5, "complete:drive": 5}
    p = live_progress(_run_row(pairs_completed=10, fetched=500), counters, now)
    assert (p["pairs_done"], p["pairs_total"], p["items"]) == (10, 40, 500)
    assert p["items_per_s"] == 50.0 and p["eta_s"] == 30.0
    assert p["eta_at"] == iso(now + timedelta(seconds=30))
    assert p["last_event_age_s"] == 1.0
    assert live_progress(_run_row(), counters, now)["eta_s"] is None


def test_live_progress_rounds_the_elapsed_time_once() -> None:
    """0.0496 s is 0.0 s to the tenth, not 0.1 s by way of 0.050 s: `status --as-of` must
    agree with the event times it is measured from."""
    now = datetime(2026, 1, 1, 0, 0, 0, 49_627, tzinfo=UTC)
    assert live_progress(_run_row(), {}, now)["elapsed_s"] == 0.0


@pytest.mark.parametrize(
    ("beat", "live_ids", "live_runs", "state"),
    [
        ({"state": "idle"}, {"daemon-1"}, [], "idle"),
        ({"state": "idle"}, {"run-1"}, ["run-1"], "running"),
        ({"state": "stopped"}, set(), [], "stopped"),
        ({"state": "idle"}, set(), [], "dead"),
        ({"state": "starting"}, {"daemon-1"}, [], "starting"),
    ],
)
def test_daemon_state_is_the_heartbeat_judged_by_the_lock(
    beat: dict[str, Any], live_ids: set[str], live_runs: list[str], state: str
) -> None:
    """idle (its lock, no run), running (a cycle's run holds the lock), stopped (it said so),
    dead (said idle, but nobody holds the lock for it)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    heartbeat = {"daemon": "daemon-1", "pid": 7, "ts": "2026-01-01T00:00:00Z", "cycle": 3,
                 "next_cycle_at": "2026-01-01T00:05:00Z", **beat}  # fmt: skip
    runs = [_run_row() for _ in live_runs]
    view = daemon_view(heartbeat, live_ids, runs, now)
    assert view is not None and view["state"] == state
    assert (view["next_cycle_at"] is not None) == (state == "idle")
    if state == "running":
        assert view["cycle"] == 7
    assert daemon_view(None, live_ids, runs, now) is None


def test_what_a_failing_request_cost_is_counted_in_its_run(tmp_path: Path) -> None:
    """A pair that fails after retrying a rate limit has no PAGE; its END carries the requests,
    retries and rate-limit refusals, so the run's counters still say what failing cost."""
    db = tmp_path / "sweep.db"
    source = SimSource("sim://?subjects=1&rate_limit=1")
    policy = RetryPolicy(max_retries=2, base_delay=0.001, max_retry_after=0.01)
    options = RunOptions(source.url, ("gmail",), policy=policy)
    assert SweepRunner(db, source, options).run().exit_code == 3
    [run] = read_runs(db)
    c = run["counters"]
    assert (c["pairs_errored"], c["pages"]) == (1, 0)
    assert (c["requests"], c["retries"], c["rate_limit_waits"]) == (3, 2, 3)
    assert check_ledger(db).ok


def test_a_pairs_outstanding_items_are_counted_once_on_its_status_line(tmp_path: Path) -> None:
    """A pair left PARTIAL by items that could not be stored says how many once: its detail
    counts them already, so the line adds no second count."""
    db = tmp_path / "sweep.db"
    source = SimSource("sim://?subjects=1&page_size=5&item_errors=0.5")
    SweepRunner(db, source, RunOptions(source.url, ("gmail",), max_pages=None)).run()
    report = read_status(db)
    [problem] = report.problems
    count = len(problem["outstanding"])
    [line] = [row for row in status_text(report).splitlines() if row.startswith("  gmail")]
    assert count > 0 and line.count("outstanding") == 1
    assert f"{count} items outstanding: " in line
