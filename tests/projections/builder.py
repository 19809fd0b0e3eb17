"""Hand-built and generated event sequences for the projection tests.

`Recorder` writes a ledger's events in order the way the runner and the operator commands do
(RUN_START before SWEEP_OPEN, a killed run closed by the next run's `RUN_END aborted`, chat
cursors per unit before the pair's). `valid_ledger(seed)` drives a Recorder with a seeded random
plan: several sweeps and runs; complete, partial, failed, reset and killed attempts; operator
blocks and pauses. It returns a sequence `check_events` must accept.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sweepledger.ledger.events import Event, EventKind, NewEvent
from sweepledger.projections.model import SERVICES, subject_order

CURSOR_KEY = {
    "gmail": "historyId",
    "calendar": "syncToken",
    "chat": "last_create_time",
    "drive": "last_modified_time",
}
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
DUMMY_HASH = "0" * 64


def as_events(news: Iterable[NewEvent]) -> list[Event]:
    """Stored-looking events: seq from 1; ts and hash are placeholders `check_events` ignores."""
    return [
        Event(
            seq,
            f"2025-01-01T00:00:00.{seq:06d}Z",
            new.sweep_id,
            new.run_id,
            new.kind,
            new.service,
            new.subject,
            new.data,
            DUMMY_HASH,
        )
        for seq, new in enumerate(news, start=1)
    ]


def rfc3339(seconds: float) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cursor_value(service: str, tick: int) -> str:
    """A cursor value that grows with `tick`: historyId integer, RFC 3339 times, opaque tokens."""
    if service == "gmail":
        return str(1000 + tick)
    if service == "calendar":
        return f"sync-{tick:05d}"
    return rfc3339(tick)


def earlier(service: str, value: str) -> str:
    """A value strictly before `value` in the service's cursor order."""
    if service == "gmail":
        return str(int(value) - 7)
    instant = datetime.fromisoformat(value.replace("Z", "+00:00")) - timedelta(hours=1)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Recorder:
    """Adds events in order; remembers the current run and sweep for the events that follow."""

    news: list[NewEvent] = field(default_factory=list)
    run_id: str | None = None
    sweep_id: str | None = None

    @property
    def events(self) -> list[Event]:
        return as_events(self.news)

    @property
    def seq(self) -> int:
        """The seq of the last event added."""
        return len(self.news)

    def add(
        self,
        kind: EventKind,
        service: str | None = None,
        subject: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        run: str | None = "",
        sweep: str | None = "",
    ) -> int:
        """Add one event (`run`/`sweep` left empty: the current ones); returns its seq."""
        run_id = self.run_id if run == "" else run
        sweep_id = self.sweep_id if sweep == "" else sweep
        fields = {k: v for k, v in (data or {}).items() if v is not None}
        self.news.append(NewEvent(kind, sweep_id, run_id, service, subject, fields))
        return self.seq

    # -- runs and sweeps -----------------------------------------------------------------------

    def run_start(self, run_id: str, sweep_id: str | None = None) -> int:
        self.run_id = run_id
        self.sweep_id = sweep_id or self.sweep_id
        return self.add(
            EventKind.RUN_START, data={"pid": 4242, "host": "test", "argv": ["run"], "options": {}}
        )

    def run_end(
        self, status: str = "completed", reason: str | None = None, *, run: str = ""
    ) -> int:
        return self.add(EventKind.RUN_END, data={"status": status, "reason": reason}, run=run)

    def sweep_open(self, roster: Sequence[str], services: Sequence[str]) -> int:
        data = {"roster": list(roster), "services": list(services), "source": "sim://"}
        return self.add(EventKind.SWEEP_OPEN, data={**data, "options": {}})

    def sweep_close(self, status: str = "complete", *, sweep: str = "") -> int:
        return self.add(EventKind.SWEEP_CLOSE, data={"status": status}, sweep=sweep)

    # -- the attempt grammar -------------------------------------------------------------------

    def start(self, service: str, subject: str, units: Sequence[str] | None = None) -> int:
        data = {"attempt": 1, "units": None if units is None else list(units)}
        return self.add(EventKind.START, service, subject, data)

    def page(
        self,
        service: str,
        subject: str,
        count: int,
        *,
        exhausted: bool,
        unit: str | None = None,
        page: int = 1,
    ) -> int:
        data = {
            "unit": unit,
            "page": page,
            "count": count,
            "exhausted": exhausted,
            "next_page_token": None if exhausted else f"tok-{page}",
        }
        return self.add(EventKind.PAGE, service, subject, data)

    def cursor_write(
        self, service: str, subject: str, value: str, *, key: str = "", unit: str | None = None
    ) -> int:
        data = {"key": key or CURSOR_KEY[service], "value": value, "unit": unit}
        return self.add(EventKind.CURSOR_WRITE, service, subject, data)

    def cursor_skip(self, service: str, subject: str, reason: str, err: str | None = None) -> int:
        return self.add(EventKind.CURSOR_SKIP, service, subject, {"reason": reason, "err": err})

    def end(
        self,
        service: str,
        subject: str,
        count: int,
        *,
        ok: bool = True,
        partial: bool = False,
        err: str | None = None,
        exhausted: bool = False,
        detail: str | None = None,
    ) -> int:
        data = {
            "ok": ok,
            "count": count,
            "partial": partial,
            "err": err,
            "exhausted": exhausted or None,
            "detail": detail,
        }
        return self.add(EventKind.END, service, subject, data)

    def cursor_reset(
        self, service: str, subject: str, reason: str = "expired", unit: str | None = None
    ) -> int:
        return self.add(EventKind.CURSOR_RESET, service, subject, {"reason": reason, "unit": unit})

    def operator(self, kind: EventKind, subject: str, service: str | None = None) -> int:
        """BLOCK/UNBLOCK/PAUSE/UNPAUSE, as an operator command appends it (outside any run)."""
        data = {"subject": subject, "service": service, "reason": "operator said so"}
        return self.add(kind, service, subject, data, run=None)

    # -- whole attempts ------------------------------------------------------------------------

    def complete(
        self,
        service: str,
        subject: str,
        value: str,
        counts: Sequence[int] = (3,),
        extra: Mapping[str, str] | None = None,
    ) -> int:
        """START, PAGEs (the last exhausted), CURSOR_WRITE(s), END ok; returns END's seq."""
        self.start(service, subject)
        for number, count in enumerate(counts, start=1):
            self.page(service, subject, count, exhausted=number == len(counts), page=number)
        self.cursor_write(service, subject, value)
        for key, other in (extra or {}).items():
            self.cursor_write(service, subject, other, key=key)
        return self.end(service, subject, sum(counts), exhausted=True)

    def partial(
        self, service: str, subject: str, counts: Sequence[int] = (2,), reason: str = "partial"
    ) -> int:
        """START, non-exhausted PAGEs, CURSOR_SKIP, END partial; returns END's seq."""
        self.start(service, subject)
        for number, count in enumerate(counts, start=1):
            self.page(service, subject, count, exhausted=False, page=number)
        self.cursor_skip(service, subject, reason)
        return self.end(service, subject, sum(counts), partial=True, detail=f"{reason}: skipped")

    def error(self, service: str, subject: str, err: str = "Transient", count: int = 0) -> int:
        """START, [PAGE], CURSOR_SKIP error, END failed with `err`; returns END's seq."""
        self.start(service, subject)
        if count:
            self.page(service, subject, count, exhausted=False)
        self.cursor_skip(service, subject, "error", err)
        return self.end(service, subject, count, ok=False, err=err, detail=f"{err}: boom")


# -- a generator of valid ledgers ----------------------------------------------------------------

SUBJECT_POOL = (
    "ana@corp.example",
    "Bob@corp.example",
    "carla@corp.example",
    "Dan@corp.example",
    "eve@corp.example",
)
ERRORS = ("Transient", "RateLimited", "Forbidden", "Auth")
OUTCOMES = ("complete", "partial", "error", "reset", "stop", "killed")
OUTCOME_WEIGHTS = (6, 2, 1, 1, 1, 1)


@dataclass
class _Generator:
    """A random but rule-abiding runner: its own small model decides what is valid next."""

    rng: random.Random
    rec: Recorder = field(default_factory=Recorder)
    tick: int = 0
    cursors: dict[tuple[str, str], str] = field(default_factory=dict)
    units: dict[str, list[str]] = field(default_factory=dict)
    blocked: set[tuple[str, str]] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    killed_run: str | None = None
    open_sweep: str | None = None
    runs: int = 0

    def value(self, service: str) -> str:
        self.tick += 1 + self.rng.randrange(5)
        return cursor_value(service, self.tick)

    def counts(self, n: int) -> list[int]:
        return [self.rng.randrange(6) for _ in range(n)]

    def active(self, subject: str, service: str) -> bool:
        return subject not in self.paused and (subject, service) not in self.blocked

    def begin_run(self, sweep_id: str) -> None:
        """Close a killed run (as the next run does), then RUN_START."""
        self.runs += 1
        if self.killed_run is not None:
            self.rec.run_end("aborted", "stale", run=self.killed_run)
            self.killed_run = None
        self.rec.run_start(f"run-{self.runs:03d}", sweep_id)

    def sweep(self, number: int) -> None:
        rng, rec = self.rng, self.rec
        roster = sorted(rng.sample(SUBJECT_POOL, rng.randint(1, 3)), key=subject_order)
        services = [s for s in SERVICES if rng.random() < 0.6] or ["gmail"]
        state = {(svc, subj): "NOT_STARTED" for subj in roster for svc in services}
        units_done: dict[str, dict[str, str]] = {subj: {} for subj in roster}
        sweep_id = f"sweep-{number:02d}"
        self.begin_run(sweep_id)
        if self.open_sweep is not None:
            rec.sweep_close("abandoned", sweep=self.open_sweep)
        rec.sweep_open(roster, services)
        self.open_sweep = sweep_id
        for run in range(rng.randint(1, 5)):
            if run:
                self.begin_run(sweep_id)
            self.operator_events(roster, services)
            if rng.random() < 0.3:
                rec.add(EventKind.HEARTBEAT, data={"pid": 4242}, sweep=None)
            stopped = self.run_plan(state, units_done, roster, services)
            if stopped == "killed":
                self.killed_run = rec.run_id
                continue
            if all(s == "COMPLETE" for (svc, subj), s in state.items() if self.active(subj, svc)):
                rec.sweep_close("complete")
                rec.run_end("completed")
                self.open_sweep = None
                return
            rec.run_end("interrupted" if stopped == "stop" else "completed")

    def run_plan(
        self,
        state: dict[tuple[str, str], str],
        units_done: dict[str, dict[str, str]],
        roster: list[str],
        services: list[str],
    ) -> str:
        """Attempt the remaining pairs in plan order; says whether the run stopped early."""
        for subject in roster:
            for service in services:
                if state[(service, subject)] == "COMPLETE" or not self.active(subject, service):
                    continue
                if service == "chat":
                    outcome = self.chat_attempt(subject, units_done[subject])
                else:
                    outcome = self.attempt(service, subject)
                state[(service, subject)] = {
                    "complete": "COMPLETE",
                    "error": "ERR",
                }.get(outcome, "PARTIAL")
                if outcome in ("killed", "stop"):
                    return outcome
        return "done"

    def attempt(self, service: str, subject: str) -> str:
        """One attempt at a pair without units; returns its outcome."""
        rng, rec = self.rng, self.rec
        outcome = rng.choices(OUTCOMES, OUTCOME_WEIGHTS)[0]
        extra = {"start_page_token": f"spt-{self.tick}"} if service == "drive" else None
        if outcome == "complete":
            value = self.value(service)
            rec.complete(service, subject, value, self.counts(rng.randint(1, 3)), extra)
            self.cursors[(service, subject)] = value
        elif outcome == "reset":
            previous = self.cursors.get((service, subject))
            rec.start(service, subject)
            rec.cursor_reset(service, subject)
            counts = self.counts(rng.randint(1, 2))
            for number, count in enumerate(counts, start=1):
                rec.page(service, subject, count, exhausted=number == len(counts), page=number)
            ordered = service != "calendar"
            value = earlier(service, previous) if previous and ordered else self.value(service)
            rec.cursor_write(service, subject, value)
            rec.end(service, subject, sum(counts), exhausted=True)
            self.cursors[(service, subject)] = value
            outcome = "complete"
        elif outcome == "partial":
            rec.partial(service, subject, self.counts(rng.randint(1, 3)))
        elif outcome == "error":
            rec.error(service, subject, rng.choice(ERRORS), rng.randrange(3))
        elif outcome == "stop":
            rec.partial(service, subject, self.counts(1), rng.choice(("interrupted", "budget")))
        else:
            rec.start(service, subject)
            if rng.random() < 0.7:
                rec.page(service, subject, rng.randrange(6), exhausted=False)
        return outcome

    def chat_attempt(self, subject: str, done: dict[str, str]) -> str:
        """A chat attempt: each unfinished space paged to its own cursor, then the pair's."""
        rng, rec = self.rng, self.rec
        if subject not in self.units:
            self.units[subject] = [f"spaces/{subject[:3]}{n}" for n in range(rng.randrange(4))]
        units = self.units[subject]
        rec.start("chat", subject, units)
        count = 0
        for unit in units:
            if unit in done:
                continue
            pages = rng.randint(1, 3)
            for number in range(1, pages + 1):
                roll = rng.random()
                if roll < 0.05:
                    rec.page("chat", subject, 1, exhausted=False, unit=unit, page=number)
                    return "killed"
                exhausted = number == pages and roll > 0.25
                n = rng.randrange(6)
                count += n
                rec.page("chat", subject, n, exhausted=exhausted, unit=unit, page=number)
                if exhausted:
                    done[unit] = self.value("chat")
                    rec.cursor_write("chat", subject, done[unit], unit=unit)
            if unit not in done:
                rec.cursor_skip("chat", subject, "partial")
                rec.end("chat", subject, count, partial=True)
                return "partial"
        if not units:
            rec.page("chat", subject, 0, exhausted=True)
        known = [v for v in (self.cursors.get(("chat", subject)), *done.values()) if v]
        value = max(known) if known else self.value("chat")
        rec.cursor_write("chat", subject, value)
        rec.end("chat", subject, count, exhausted=True)
        self.cursors[("chat", subject)] = value
        return "complete"

    def operator_events(self, roster: list[str], services: list[str]) -> None:
        rng, rec = self.rng, self.rec
        roll = rng.random()
        subject = rng.choice(roster)
        if roll < 0.08:
            service = rng.choice(services)
            rec.operator(EventKind.BLOCK, subject, service)
            self.blocked.add((subject, service))
        elif roll < 0.14:
            rec.operator(EventKind.PAUSE, subject)
            self.paused.add(subject)
        elif roll < 0.24 and self.paused:
            subject = sorted(self.paused)[0]
            rec.operator(EventKind.UNPAUSE, subject)
            self.paused.discard(subject)
        elif roll < 0.30 and self.blocked:
            subject, service = sorted(self.blocked)[0]
            rec.operator(EventKind.UNBLOCK, subject, service)
            self.blocked.discard((subject, service))


def valid_ledger(seed: int) -> tuple[list[NewEvent], set[str]]:
    """A seeded random ledger the checker must accept, and the run ids to pass as live.

    A run killed last is still live (its process holds the lock), so it is returned in the set.
    """
    gen = _Generator(random.Random(seed))
    for number in range(gen.rng.randint(1, 3)):
        gen.sweep(number)
    return gen.rec.news, {gen.killed_run} if gen.killed_run else set()
