"""`GET /metrics`: the status and the latest run in the Prometheus text format.

A custom collector computes every family at scrape time from the same reads as `/api/status`, so
Prometheus sees what the page shows and the server keeps no state between scrapes. A ledger that
cannot be read gives `sweepledger_up 0` (with the reason on the page), never a failed scrape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sweepledger.projections.live import parse_ts

VERDICTS = ("EMPTY", "RUNNING", "IDLE", "INTERRUPTED", "COMPLETE", "INCOMPLETE")
PAIR_STATES = ("complete", "partial", "in_progress", "errors", "not_started")
INVARIANTS = (
    "active_targets_total",
    "attempted_count",
    "complete_subjects_count",
    "partial_subjects_count",
    "errors_count",
)

Reader = Callable[[], tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]
"""Returns (status as `status --json`, newest runs first); raises if the ledger is unreadable."""


def _gauge(name: str, doc: str, value: float, labels: Mapping[str, str] | None = None) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=list(labels or ()))
    family.add_metric(list((labels or {}).values()), value)
    return family


class LedgerCollector:
    """Reads the ledger on every scrape."""

    def __init__(self, read: Reader) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        try:
            status, runs = self.read()
        except Exception:  # an unreadable ledger is a value, not a failed scrape
            yield _gauge("sweepledger_up", "1 if the ledger could be read", 0)
            return
        yield _gauge("sweepledger_up", "1 if the ledger could be read", 1)
        yield _gauge(
            "sweepledger_ledger_events", "Events in the ledger (head seq)", status["head_seq"]
        )
        verdict = GaugeMetricFamily(
            "sweepledger_verdict",
            "1 for the status verdict in force, 0 for the others",
            labels=["verdict"],
        )
        for name in VERDICTS:
            verdict.add_metric([name], 1 if status["verdict"] == name else 0)
        yield verdict
        yield from _sweep(status)
        yield from _progress(status.get("progress"))
        yield from _daemon(status.get("daemon"))
        if runs:
            yield from _last_run(runs[0])
        yield _gauge(
            "sweepledger_scrape_seconds",
            "Time this scrape took to read the ledger",
            time.perf_counter() - started,
        )


def _sweep(status: Mapping[str, Any]) -> Iterator[Metric]:
    invariants = status.get("invariants")
    if not invariants:
        return
    yield _gauge(
        "sweepledger_sweep_complete",
        "1 if the sweep's COMPLETE invariants all hold",
        1 if invariants["complete"] else 0,
    )
    family = GaugeMetricFamily("sweepledger_invariant", "COMPLETE figures", labels=["figure"])
    for name in INVARIANTS:
        family.add_metric([name], invariants[name])
    yield family
    exhausted = GaugeMetricFamily(
        "sweepledger_pagination_exhausted",
        "Active pairs whose last attempt ended exhausted",
        labels=["service"],
    )
    for service, value in invariants["pagination_exhausted"].items():
        exhausted.add_metric([service], value)
    yield exhausted
    pairs = GaugeMetricFamily(
        "sweepledger_pairs", "Active pairs of the sweep by state", labels=["service", "state"]
    )
    items = GaugeMetricFamily(
        "sweepledger_sweep_items", "Items fetched in the sweep", labels=["service"]
    )
    for row in status["services"]:
        for state in PAIR_STATES:
            pairs.add_metric([row["service"], state], row[state])
        items.add_metric([row["service"]], row["items"])
    yield pairs
    yield items


def _progress(progress: Mapping[str, Any] | None) -> Iterator[Metric]:
    yield _gauge(
        "sweepledger_run_live", "1 while a run holds the ledger's lock", 1 if progress else 0
    )
    if not progress:
        return
    yield _gauge(
        "sweepledger_run_pairs_done",
        "Complete pairs of the sweep (live run)",
        progress["pairs_done"],
    )
    yield _gauge(
        "sweepledger_run_pairs_total",
        "Active pairs of the sweep (live run)",
        progress["pairs_total"],
    )
    yield _gauge("sweepledger_run_items", "Items the live run fetched", progress["items"])
    if progress["items_per_s"] is not None:
        yield _gauge(
            "sweepledger_run_items_per_second", "The live run's item rate", progress["items_per_s"]
        )
    if progress["eta_s"] is not None:
        yield _gauge(
            "sweepledger_run_eta_seconds", "Estimated seconds to the sweep's end", progress["eta_s"]
        )
    if progress["last_event_age_s"] is not None:
        yield _gauge(
            "sweepledger_run_last_event_age_seconds",
            "Age of the live run's last event",
            progress["last_event_age_s"],
        )


def _daemon(daemon: Mapping[str, Any] | None) -> Iterator[Metric]:
    if not daemon:
        return
    up = 1 if daemon["state"] in ("running", "idle", "starting") else 0
    yield _gauge(
        "sweepledger_daemon_up",
        "1 while the daemon holds the ledger's lock",
        up,
        {"daemon_id": str(daemon["daemon_id"])},
    )
    if daemon.get("next_cycle_at"):
        yield _gauge(
            "sweepledger_daemon_next_cycle_timestamp_seconds",
            "When the idle daemon starts its next cycle (Unix time)",
            parse_ts(daemon["next_cycle_at"]).timestamp(),
        )
    if daemon.get("heartbeat_age_s") is not None:
        yield _gauge(
            "sweepledger_daemon_heartbeat_age_seconds",
            "Age of the last HEARTBEAT",
            daemon["heartbeat_age_s"],
        )


def _last_run(run: Mapping[str, Any]) -> Iterator[Metric]:
    info = InfoMetricFamily("sweepledger_last_run", "The newest run")
    info.add_metric(
        [], {"run_id": run["run_id"], "status": run["status"], "trigger": str(run["trigger"] or "")}
    )
    yield info
    if run["duration_s"] is not None:
        yield _gauge(
            "sweepledger_last_run_duration_seconds", "The newest run's duration", run["duration_s"]
        )
    if run["items_per_s"] is not None:
        yield _gauge(
            "sweepledger_last_run_items_per_second",
            "The newest run's item rate",
            run["items_per_s"],
        )
    family = GaugeMetricFamily(
        "sweepledger_last_run_counter",
        "The newest run's counters, folded from its events",
        labels=["counter"],
    )
    for name, value in run["counters"].items():
        family.add_metric([name], value)
    yield family


def render_metrics(read: Reader) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(read))
    return generate_latest(registry), CONTENT_TYPE_LATEST
