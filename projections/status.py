"""The status report: verdict line, COMPLETE figures, per-service table, problem pairs, runs.

It is built from the same `Gathered` facts whether they come from the projection tables (a few
indexed reads, so it costs the same at any ledger size) or from an in-memory fold (`--as-of`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .completeness import Completeness, completeness
from .fold import State
from .live import daemon_view, live_progress, run_record
from .model import (
    COMPLETE,
    NOT_STARTED,
    PARTIAL,
    Flag,
    PairRow,
    RunRow,
    SweepInfo,
    flag_record,
    interrupted_detail,
    operator_flag,
    pair_order,
    subject_order,
)
from .tables import (
    PAIR_ORDER_SQL,
    _unjson,
    load_flags,
    load_sweep,
    pair_from_row,
    run_from_row,
)

PROBLEM_LIMIT = 20
"""Problem pairs listed by default; `problem_limit=None` (`status --all`) lists every one."""
RUN_LIMIT = 5


@dataclass(frozen=True, slots=True)
class Gathered:
    """The facts a report needs, however they were read."""

    head: int
    head_ts: str
    sweep: SweepInfo | None
    counters: dict[str, int]
    problems: list[PairRow]
    runs: list[RunRow]
    blocked: dict[tuple[str, str | None], Flag]
    paused: dict[str, Flag]
    heartbeat: dict[str, Any] | None = None
    problems_found: int = 0
    """Pairs not COMPLETE and not taken out of the sweeps by a pause or a block (what `problems`
    lists the first of; the flagged ones are listed with their flags)."""


def gather_from_state(state: State, *, problem_limit: int | None = PROBLEM_LIMIT) -> Gathered:
    found = sorted(
        (
            r
            for r in state.pairs.values()
            if r.state != COMPLETE
            and operator_flag(r.subject, r.service, state.blocked, state.paused) is None
        ),
        key=lambda r: pair_order(r.subject, r.service),
    )
    runs = sorted(state.runs.values(), key=lambda r: r.started_seq, reverse=True)[:RUN_LIMIT]
    return Gathered(
        state.head,
        state.head_ts,
        state.sweep,
        dict(state.counters),
        found if problem_limit is None else found[:problem_limit],
        runs,
        dict(state.blocked),
        dict(state.paused),
        state.heartbeat,
        len(found),
    )


def gather_from_tables(
    conn: sqlite3.Connection, *, problem_limit: int | None = PROBLEM_LIMIT
) -> Gathered:
    """The facts from the projection tables. The problem pairs are counted only when the list
    is cut (needed to say how many more there are)."""
    meta = dict(conn.execute("SELECT key, value FROM projection_state").fetchall())
    sweep, counters = load_sweep(conn, with_roster=False)
    problems = [
        pair_from_row(r)
        for r in conn.execute(
            f"SELECT * FROM pair_state WHERE state != 'COMPLETE' AND NOT {_FLAGGED_SQL} "
            f"ORDER BY {PAIR_ORDER_SQL} LIMIT ?",
            (-1 if problem_limit is None else problem_limit,),
        )
    ]
    blocked, paused = load_flags(conn)
    found = len(problems)
    if problem_limit is not None and found >= problem_limit:
        found = _count_problems(conn, sweep, blocked, paused)
    runs = [
        run_from_row(r)
        for r in conn.execute("SELECT * FROM runs ORDER BY started_seq DESC LIMIT ?", (RUN_LIMIT,))
    ]
    return Gathered(
        int(meta.get("head", 0)),
        meta.get("head_ts", ""),
        sweep,
        counters,
        problems,
        runs,
        blocked,
        paused,
        _unjson(meta.get("heartbeat")),
        found,
    )


_FLAGGED_SQL = (
    "EXISTS (SELECT 1 FROM operator_flags f WHERE f.subject = pair_state.subject "
    "AND f.service IN ('', pair_state.service))"
)
"""A `pair_state` row whose pair a pause or a block takes out of the sweeps (listed with the
flags, not as a problem; the flags table's key starts with the subject)."""


def _count_problems(
    conn: sqlite3.Connection,
    sweep: SweepInfo | None,
    blocked: Mapping[tuple[str, str | None], Flag],
    paused: Mapping[str, Flag],
) -> int:
    """The pairs not complete and not flagged: all those not complete (an index-only count)
    less the flagged ones, looked up one by one (operators flag a few subjects, not thousands)."""
    total = int(
        conn.execute("SELECT COUNT(*) FROM pair_state WHERE state != 'COMPLETE'").fetchone()[0]
    )
    if sweep is None:
        return total
    subjects = {subject for subject, _ in blocked} | set(paused)
    flagged = [
        (service, subject)
        for subject in subjects
        for service in sweep.services
        if operator_flag(subject, service, blocked, paused) is not None
    ]
    for key in flagged:
        row = conn.execute(
            "SELECT state != 'COMPLETE' FROM pair_state WHERE service = ? AND subject = ?", key
        ).fetchone()
        total -= bool(row and row[0])
    return total


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What `sweep status` prints, as data (`--json` prints exactly this)."""

    verdict: str
    headline: str
    head: int
    sweep: dict[str, Any] | None
    completeness: Completeness | None
    services: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    problems_total: int
    not_started: int
    runs: list[dict[str, Any]]
    blocked: list[dict[str, Any]] = field(default_factory=list)
    paused: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    """The live run's progress (`live.live_progress`), None when no run is live."""
    daemon: dict[str, Any] | None = None
    """The daemon's state (`live.daemon_view`), None if no daemon ever ran on this ledger."""
    problems_more: int = 0
    """Problem pairs not in `problems` because the list was cut (`status --all` lists them)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "headline": self.headline,
            "head_seq": self.head,
            "sweep": self.sweep,
            "invariants": None if self.completeness is None else self.completeness.as_dict(),
            "services": self.services,
            "problems": self.problems,
            "problems_total": self.problems_total,
            "problems_more": self.problems_more,
            "not_started": self.not_started,
            "blocked": self.blocked,
            "paused": self.paused,
            "runs": self.runs,
            "progress": self.progress,
            "daemon": self.daemon,
        }


def _age(ts: str, now: datetime) -> float | None:
    if not ts:
        return None
    then = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return round((now - then).total_seconds(), 1)


def _run_headline(live: list[RunRow], stale: list[RunRow], now: datetime) -> tuple[str, str] | None:
    """The verdict and headline an open run gives, before the sweep's figures (None: no run
    is open). A run is named the same way whether or not its sweep is open yet."""
    if live:
        run = live[0]
        age = _age(run.last_ts, now)
        return "RUNNING", f"RUNNING: run {run.run_id} (pid {run.pid}), last event {age}s ago"
    if stale:
        return "INTERRUPTED", (
            f"INTERRUPTED: run {stale[0].run_id} died without ending (the next "
            "`sweep run` closes it and continues)"
        )
    return None


def build_report(
    g: Gathered, *, live_run_ids: set[str], now: datetime | None = None
) -> StatusReport:
    """The report; `live_run_ids` are the runs whose process holds the ledger lock now."""
    now = now or datetime.now(UTC)
    runs = [run_record(r, live=r.run_id in live_run_ids, now=now) for r in g.runs]
    open_runs = [r for r in g.runs if r.status == "running"]
    live = [r for r in open_runs if r.run_id in live_run_ids]
    stale = [r for r in open_runs if r.run_id not in live_run_ids]
    daemon = daemon_view(g.heartbeat, live_run_ids, live, now)
    run_headline = _run_headline(live, stale, now)
    blocked = [
        {"subject": s, "service": svc, **flag_record(f)}
        for (s, svc), f in sorted(g.blocked.items(), key=lambda kv: pair_order(*kv[0]))
    ]
    paused = [
        {"subject": s, **flag_record(f)}
        for s, f in sorted(g.paused.items(), key=lambda kv: subject_order(kv[0]))
    ]
    if g.sweep is None:
        if run_headline is None:
            verdict, headline = "EMPTY", "EMPTY: no sweep yet (`sweep run` starts one)"
        else:
            verdict, headline = run_headline[0], f"{run_headline[1]}; no sweep opened yet"
        return StatusReport(
            verdict,
            headline,
            g.head,
            None,
            None,
            [],
            [],
            0,
            0,
            runs,
            blocked=blocked,
            paused=paused,
            daemon=daemon,
        )
    sweep = g.sweep
    figures = completeness(g.counters, sweep.services, run_live=bool(live))
    services = []
    problems_total = 0
    for s in sweep.services:
        c = g.counters
        row: dict[str, Any] = {
            "service": s,
            "pairs": c.get(f"pairs:{s}", 0),
            "complete": c.get(f"complete:{s}", 0),
            "partial": c.get(f"partial:{s}", 0),
            "in_progress": c.get(f"in_progress:{s}", 0),
            "errors": c.get(f"errors:{s}", 0),
            "exhausted": c.get(f"exhausted:{s}", 0),
            "items": c.get(f"items:{s}", 0),
        }
        if not live:  # an attempt whose run is dead is interrupted: PARTIAL (DESIGN 5)
            row["partial"] += row["in_progress"]
            row["in_progress"] = 0
        row["not_started"] = (
            row["pairs"] - row["complete"] - row["partial"] - row["in_progress"] - row["errors"]
        )
        problems_total += row["pairs"] - row["complete"]
        services.append(row)
    not_started = sum(r["not_started"] for r in services)
    counts = (
        f"{figures.complete_subjects_count}/{figures.active_targets_total} subjects "
        f"complete, {figures.partial_subjects_count} partial, "
        f"{figures.errors_count} errors"
    )
    if run_headline is not None:
        verdict, headline = run_headline[0], f"{run_headline[1]}; {counts}"
    elif daemon is not None and daemon["state"] == "idle":
        verdict = "IDLE"
        state = "COMPLETE" if sweep.closed == "complete" else "INCOMPLETE"
        last = g.runs[0].status if g.runs else "none"
        headline = (
            f"IDLE: daemon {daemon['daemon_id']} (pid {daemon['pid']}) waits, next cycle at "
            f"{daemon['next_cycle_at']}; last run {last}; sweep {sweep.sweep_id} {state}: {counts}"
        )
    elif sweep.closed == "complete":
        verdict = "COMPLETE"
        headline = f"COMPLETE: sweep {sweep.sweep_id}, {counts}"
    else:
        verdict = "INCOMPLETE"
        last = g.runs[0].status if g.runs else "none"
        headline = f"INCOMPLETE: sweep {sweep.sweep_id}, last run {last}; {counts}"
    problems = []
    for r in g.problems:
        state, detail, interrupted = r.state, r.last_detail, r.interrupted
        if r.open_run_id and r.open_run_id not in live_run_ids:
            # interrupted (DESIGN 4) until the next run closes the attempt, which records the
            # same detail (`State._end_run`)
            state, detail, interrupted = PARTIAL, interrupted_detail(r.open_run_id), True
        problems.append(
            {
                "service": r.service,
                "subject": r.subject,
                "state": state,
                "attempts": r.attempts,
                "last_err": r.last_err,
                "detail": detail,
                "interrupted": interrupted,
                "outstanding": list(r.outstanding),
                "checkpoint": r.checkpoint,
            }
        )
    return StatusReport(
        verdict=verdict,
        headline=headline,
        head=g.head,
        sweep={
            "sweep_id": sweep.sweep_id,
            "source": sweep.source,
            "services": sweep.services,
            "subjects": sweep.roster_size,
            "opened": sweep.opened_ts,
            "closed": sweep.closed,
            "options": sweep.options,
        },
        completeness=figures,
        services=services,
        problems=problems,
        problems_total=problems_total,
        not_started=not_started,
        runs=runs,
        blocked=blocked,
        paused=paused,
        progress=live_progress(live[0], g.counters, now) if live else None,
        daemon=daemon,
        problems_more=g.problems_found - len(g.problems),
    )


__all__ = [
    "NOT_STARTED",
    "Gathered",
    "StatusReport",
    "build_report",
    "gather_from_state",
    "gather_from_tables",
]
