"""What an operator watching a sweep asks: is a run alive, how far is it, is the daemon alive?

All are read off the projections plus two facts only a reader has: which run holds the ledger's
lock now (`live_run_ids`) and the time. Nothing here is stored: a run's verdict and duration are
its folded record judged by the lock, its progress is its folded counters against the sweep's,
and the daemon's state is its last HEARTBEAT judged by the lock. Every view of a run (`status`,
`replay`, `runs`, the web view) takes them from here, so they never disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .model import RunRow, closed_as_stale

DAEMON_TRIGGER = "daemon cycle "
"""Runs started by `sweep daemon` carry the trigger `daemon cycle N`."""

HEARTBEAT_STALE_S = 90.0
"""For a future shared backend, where no OS lock tells liveness: a daemon whose heartbeat is
older than this is taken as dead. On one machine the lock decides and this is informative."""


def parse_ts(ts: str) -> datetime:
    """A ledger timestamp (RFC 3339, `Z`) as an aware datetime."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def iso(moment: datetime) -> str:
    """The ledger's own timestamp format, to the millisecond."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def seconds_between(start: str, end: str | datetime) -> float | None:
    if not start:
        return None
    stop = end if isinstance(end, datetime) else parse_ts(end) if end else None
    if stop is None:
        return None
    return round((stop - parse_ts(start)).total_seconds(), 3)


STALE_REASON = "stale: its process is gone; the next run closes it as aborted"


def run_verdict(run: RunRow, *, live: bool) -> tuple[str, str | None]:
    """A run's status and reason as every view reports them.

    A run still `running` in the ledger whose process no longer holds the lock is `interrupted`
    (stale): that is what it is, and the next run records it as aborted. Liveness is a fact of
    the moment of reading, so the fold never decides it; `live` is the reader's.
    """
    if run.status == "running" and not live:
        return "interrupted", STALE_REASON
    return run.status, run.reason


def run_duration(run: RunRow, *, live: bool, now: datetime) -> float | None:
    """Seconds the run worked: from its RUN_START to its RUN_END, to now while it is live, and
    to its own last event once its process is gone.

    A run closed as stale (`RUN_END aborted stale`, appended by the next run) ends at its own
    last event too: the time it lay dead before that run came is not its work, and its figures
    do not change when it is closed.
    """
    if run.ended_ts and not closed_as_stale(run.status, run.reason):
        end: str | datetime = run.ended_ts
    elif run.ended_ts is None and live:
        end = now
    else:
        end = run.last_ts
    return seconds_between(run.started_ts, end)


def items_rate(items: int, seconds: float | None) -> float | None:
    """Items per second over `seconds`, as every view of a run shows it (None without time)."""
    return round(items / seconds, 1) if seconds else None


COUNTERS = {
    "pairs_attempted": "pairs_attempted",
    "pairs_completed": "pairs_completed",
    "pairs_partial": "pairs_partial",
    "pairs_errored": "pairs_errored",
    "items_fetched": "fetched",
    "items_inserted": "inserted",
    "items_updated": "updated",
    "items_unchanged": "unchanged",
    "items_deleted": "deleted",
    "pages": "pages",
    "requests": "requests",
    "quota_units": "quota_units",
    "retries": "retries",
    "rate_limit_waits": "rate_limited",
}
"""History name -> the fold's counter name. Every key is always present (0 if never bumped)."""


def run_record(run: RunRow, *, live: bool, now: datetime) -> dict[str, Any]:
    """One run as the history shows it: its verdict and duration are `live.run_verdict` and
    `live.run_duration` (a dead run is `interrupted`, and worked until its own last event)."""
    status, reason = run_verdict(run, live=live)
    duration = run_duration(run, live=live, now=now)
    counters = _named(run.counters)
    fetched = counters["items_fetched"]
    error = None
    if run.status == "failed":
        cls, _, message = (run.reason or "").partition(": ")
        error = {"class": cls or "Internal", "message": message}
    opts = run.options
    return {
        "run_id": run.run_id,
        "sweep_id": run.sweep_id,
        "status": status,
        "reason": reason,
        "live": live,
        "trigger": run.trigger,
        "pid": run.pid,
        "host": run.host,
        "started": run.started_ts,
        "finished": run.ended_ts,
        "duration_s": duration,
        "last_event": run.last_ts,
        "last_event_age_s": seconds_between(run.last_ts, now),
        "options": {
            "source": opts.get("source"),
            "services": opts.get("services"),
            "subjects": opts.get("subjects"),
            "since": opts.get("since"),
            "months_back": opts.get("months_back"),
            "run_to_completion": opts.get("max_seconds") is None,
            "max_seconds": opts.get("max_seconds"),
            "max_pages": opts.get("max_pages"),
            "workers": opts.get("workers"),
        },
        "counters": counters,
        "items_per_s": items_rate(fetched, duration),
        "error": error,
        "by_service": {service: _named(per) for service, per in run.by_service.items()},
    }


def _named(folded: Mapping[str, int]) -> dict[str, int]:
    """The fold's counters under the names every view gives them, each present (0 if never
    bumped): a run's totals and its per-service breakdown read alike."""
    return {name: int(folded.get(key, 0)) for name, key in COUNTERS.items()}


def daemon_cycle(trigger: str | None) -> int | None:
    """N of a `daemon cycle N` trigger, else None."""
    if not trigger or not trigger.startswith(DAEMON_TRIGGER):
        return None
    tail = trigger[len(DAEMON_TRIGGER) :]
    return int(tail) if tail.isdigit() else None


def live_progress(run: RunRow, counters: Mapping[str, int], now: datetime) -> dict[str, Any]:
    """The live run's progress: the sweep's complete pairs of its total, this run's items, rate,
    ETA and the age of its last event (a stuck run shows a growing age)."""
    # unrounded: rounding to the millisecond first would round 0.0496 s to 0.1 s below
    elapsed = (now - parse_ts(run.started_ts)).total_seconds() if run.started_ts else 0.0
    total = counters.get("pairs_total", 0)
    done = sum(v for k, v in counters.items() if k.startswith("complete:"))
    c = run.counters
    completed = c.get("pairs_completed", 0)
    items = c.get("fetched", 0)
    eta = None
    if completed and elapsed > 0 and total >= done:
        eta = round((total - done) / (completed / elapsed), 1)
    return {
        "run_id": run.run_id,
        "trigger": run.trigger,
        "started": run.started_ts,
        "elapsed_s": round(elapsed, 1),
        "pairs_done": done,
        "pairs_total": total,
        "pairs_ended_this_run": completed + c.get("pairs_partial", 0) + c.get("pairs_errored", 0),
        "items": items,
        "items_per_s": round(items / elapsed, 1) if elapsed > 0 else None,
        "eta_s": eta,
        "eta_at": None if eta is None else iso(now + timedelta(seconds=eta)),
        "last_event_age_s": seconds_between(run.last_ts, now),
    }


def daemon_view(
    heartbeat: Mapping[str, Any] | None,
    live_run_ids: Collection[str],
    live_runs: Sequence[RunRow],
    now: datetime,
) -> dict[str, Any] | None:
    """The daemon's state from its last HEARTBEAT: `running` (a cycle's run holds the lock),
    `idle` (it holds the lock between cycles), `stopped` (it said so) or `dead` (no process
    holds the lock for it any more); None if no daemon ever ran on this ledger."""
    if not heartbeat or not heartbeat.get("daemon"):
        return None
    cycle = heartbeat.get("cycle")
    cycle_runs = [r for r in live_runs if daemon_cycle(r.trigger) is not None]
    if cycle_runs:
        state = "running"
        cycle = daemon_cycle(cycle_runs[0].trigger)
    elif heartbeat["daemon"] in live_run_ids:
        state = "starting" if heartbeat.get("state") == "starting" else "idle"
    elif heartbeat.get("state") == "stopped":
        state = "stopped"
    else:
        state = "dead"
    return {
        "daemon_id": heartbeat["daemon"],
        "state": state,
        "pid": heartbeat.get("pid"),
        "host": heartbeat.get("host"),
        "cycle": cycle,
        "interval_s": heartbeat.get("interval"),
        "next_cycle_at": heartbeat.get("next_cycle_at") if state == "idle" else None,
        "last_heartbeat": heartbeat.get("ts"),
        "heartbeat_age_s": seconds_between(str(heartbeat.get("ts") or ""), now),
        "reason": heartbeat.get("reason"),
        "last_error": heartbeat.get("last_error"),
    }


def daemon_text(daemon: Mapping[str, Any]) -> str:
    """One line about the daemon for `status` and the web page."""
    who = f"daemon {daemon['daemon_id']} (pid {daemon['pid']})"
    match daemon["state"]:
        case "running":
            return f"{who} running cycle {daemon['cycle']}"
        case "idle":
            nxt = daemon["next_cycle_at"]
            return f"{who} idle after cycle {daemon['cycle']}, next cycle at {nxt}"
        case "starting":
            return f"{who} starting cycle {daemon['cycle']}"
        case "stopped":
            why = f" ({daemon['reason']})" if daemon.get("reason") else ""
            # a daemon stopped (by a signal) before its first cycle ran has no cycle to name
            when = "before its first cycle" if daemon["cycle"] is None else "after cycle"
            cycle = "" if daemon["cycle"] is None else f" {daemon['cycle']}"
            return f"{who} stopped {when}{cycle}{why} at {daemon['last_heartbeat']}"
    return (
        f"{who} is DEAD: it holds no lock; last heartbeat {daemon['last_heartbeat']} "
        f"({daemon['heartbeat_age_s']}s ago)"
    )
