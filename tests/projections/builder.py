"""Hand-built and generated event sequences for the projection tests.

`Recorder` writes a ledger's events in order the way the runner and the operator commands do (the
runner's own choices: RUN_START before SWEEP_OPEN, a stale run closed by the next run's
`RUN_END aborted`, chat cursors per unit before the pair's). `valid_ledger(seed)` drives a
Recorder with a seeded random plan: several sweeps and runs, complete / partial / error / reset /
killed attempts, operator blocks and pauses, and returns a sequence `check_events` must accept.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
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
    """Stored-looking events (seq from 1; ts and hash are placeholders `check_events` ignores)."""
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


def cursor_value(service: str, tick: int) -> str:
    """A cursor value that grows with `tick` (historyId integer, RFC 3339 times, opaque tokens)."""
    if service == "gmail":
        return str(1000 + tick)
    if service == "calendar":
        return f"sync-{tick:05d}"
    return (EPOCH + timedelta(seconds=tick)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def earlier(service: str, value: str) -> str:
    """A value strictly before `value` in the service's cursor order."""
    if service == "gmail":
        return str(int(value) - 7)
    instant = datetime.fromisoformat(value.replace("Z", "+00:00")) - timedelta(hours=1)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Recorder:
    """Appends events in order; remembers the current run and sweep for the events that follow."""

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
        *,
        run: str | None | bool = True,
        sweep: str | None | bool = True,
        **data: Any,
    ) -> int:
        """Add one event (`run`/`sweep` True = the current ones); returns its seq."""
        run_id = self.run_id if run is True else (run or None)
        sweep_id = self.sweep_id if sweep is True else (sweep or None)
        fields = {k: v for k, v in data.items() if v is not None}
        self.news.append(NewEvent(kind, sweep_id, run_id, service, subject, fields))
        return self.seq

    # -- runs and sweeps -----------------------------------------------------------------------

    def run_start(self, run_id: str, sweep_id: str | None = None) -> int:
        self.run_id = run_id
        if sweep_id is not None:
            self.sweep_id = sweep_id
        return self.add(EventKind.RUN_START, pid=4242, host="test", argv=["run"], options={})

    def run_end(self, status: str = "completed", reason: str | None = None, *, run: str = "") -> int:
        return self.add(EventKind.RUN_END, run=run or self.run_id, status=status, reason=reason)

    def sweep_open(
        self, roster: Sequence[str], services: Sequence[str], sweep_id: str | None = None
    ) -> int:
        self.sweep_id = sweep_id or self.sweep_id or "sweep-1"
        return self.add(
            EventKind.SWEEP_OPEN,
            roster=list(roster),
            services=list(services),
            source="sim://",
            options={},
        )

    def sweep_close(self, status: str = "complete", *, sweep: str = "") -> int:
        return self.add(EventKind.SWEEP_CLOSE, sweep=sweep or self.sweep_id, status=status)

    # -- attempt grammar -----------------------------------------------------------------------

    def start(self, service: str, subject: str, units: Sequence[str] | None = None) -> int:
        return self.add(
            EventKind.START,
            service,
            subject,
            attempt=1,
            units=None if units is None else list(units),
        )

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
        return self.add(
            EventKind.PAGE,
            service,
            subject,
            unit=unit,
            page=page,
            count=count,
            exhausted=exhausted,
            next_page_token=None if exhausted else f"tok-{page}",
        )

    def cursor_write(
        self, service: str, subject: str, value: str, *, key: str = "", unit: str | None = None
    ) -> int:
        return self.add(
            EventKind.CURSOR_WRITE,
            service,
            subject,
            key=key or CURSOR_KEY[service],
            value=value,
            unit=unit,
        )

    def cursor_skip(self, service: str, subject: str, reason: str, err: str | None = None) -> int:
        return self.add(EventKind.CURSOR_SKIP, service, subject, reason=reason, err=err)

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
        return self.add(
            EventKind.END,
            service,
            subject,
            ok=ok,
            count=count,
            partial=partial,
            err=err,
            exhausted=exhausted or None,
            detail=detail,
        )

    def cursor_reset(
        self, service: str, subject: str, reason: str = "expired", unit: str | None = None
    ) -> int:
        return self.add(EventKind.CURSOR_RESET, service, subject, reason=reason, unit=unit)

    # -- whole attempts ------------------------------------------------------------------------

    def complete(
        self, service: str, subject: str, value: str, counts: Sequence[int] = (3,)
    ) -> int:
        """START, PAGEs (the last exhausted), CURSOR_WRITE, END ok; returns END's seq."""
        self.start(service, subject)
        for number, count in enumerate(counts, start=1):
            self.page(service, subject, count, exhausted=number == len(counts), page=number)
        self.cursor_write(service, subject, value)
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

    # -- operator events -----------------------------------------------------------------------

    def operator(self, kind: EventKind, subject: str, service: str | None = None) -> int:
        """BLOCK/UNBLOCK/PAUSE/UNPAUSE, as an operator command appends it (no run)."""
        return self.add(
            kind,
            service,
            subject,
            run=None,
            subject_=None,
            **{"subject": subject, "service": service, "reason": "operator"},
        )


# -- a generator of valid ledgers ----------------------------------------------------------------

SUBJECT_POOL = (
    "ana@corp.example",
    "Bob@corp.example",
    "carla@corp.example",
    "Dan@corp.example",
    "eve@corp.example",
)
ERRORS = ("Transient", "RateLimited", "Forbidden", "Auth")


@dataclass
class _Pair:
    state: str = "NOT_STARTED"
    units_done: dict[str, str] = field(default_factory=dict)


@dataclass
class _Generator:
    rng: random.Random
    rec: Recorder = field(default_factory=Recorder)
    tick: int = 0
    cursors: dict[tuple[str, str, str | None], str] = field(default_factory=dict)
    units: dict[str, list[str]] = field(default_factory=dict)
    blocked: set[tuple[str, str]] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    stale_run: str | None = None
    run_no: int = 0

    def value(self, service: str) -> str:
        self.tick += 1 + self.rng.randrange(5)
        return cursor_value(service, self.tick)

    def units_of(self, subject: str) -> list[str]:
        if subject not in self.units:
            self.units[subject] = [f"spaces/{subject[:3]}{n}" for n in range(self.rng.randrange(3))]
        return self.units[subject]

    def new_run(self) -> str:
        self.run_no += 1
        run_id = f"run-{self.run_no:03d}"
        if self.stale_run is not None:
            self.rec.run_end("aborted", "stale", run=self.stale_run)
            self.stale_run = None
        return run_id

    def counts(self, n: int) -> list[int]:
        return [self.rng.randrange(0, 6) for _ in range(n)]

    def attempt(self, service: str, subject: str, pair: _Pair) -> str:
        """One attempt; returns how it ended: complete, partial, error, stop or killed."""
        rec, rng = self.rec, self.rng
        if service == "chat":
            return self.unit_attempt(subject, pair)
        outcome = rng.choices(
            ("complete", "partial", "error", "reset", "stop", "killed"), (6, 2, 1, 1, 1, 1)
        )[0]
        if outcome == "complete":
            value = self.value(service)
            rec.complete(service, subject, value, self.counts(rng.randint(1, 3)))
            self.wrote(service, subject, value)
        elif outcome == "reset":
            previous = self.cursors.get((service, subject, None))
            rec.start(service, subject)
            rec.cursor_reset(service, subject)
            counts = self.counts(rng.randint(1, 2))
            for number, count in enumerate(counts, start=1):
                rec.page(service, subject, count, exhausted=number == len(counts), page=number)
            ordered = service != "calendar"
            value = earlier(service, previous) if previous and ordered else self.value(service)
            rec.cursor_write(service, subject, value)
            rec.end(service, subject, sum(counts), exhausted=True)
            self.cursors[(service, subject, None)] = value
            outcome = "complete"
        elif outcome == "partial":
            rec.partial(service, subject, self.counts(rng.randint(1, 3)))
        elif outcome == "error":
            rec.error(service, subject, rng.choice(ERRORS), rng.randrange(3))
        elif outcome == "stop":
            rec.partial(service, subject, self.counts(1), reason=rng.choice(("interrupted", "budget")))
        else:
            rec.start(service, subject)
            if rng.random() < 0.7:
                rec.page(service, subject, rng.randrange(6), exhausted=False)
        return outcome

    def wrote(self, service: str, subject: str, value: str) -> None:
        self.cursors[(service, subject, None)] = value
        if service == "drive":
            token = f"spt-{self.tick}"
            self.rec.cursor_write(service, subject, token, key="start_page_token")
            # The END of `complete` came first; keep the grammar by writing the token before it.
            end = self.rec.news.pop(-2)
            self.rec.news.append(end)

    def unit_attempt(self, subject: str, pair: _Pair) -> str:
        rec, rng = self.rec, self.rng
        units = self.units_of(subject)
        rec.start("chat", subject, units)
        count = 0
        for unit in units:
            if unit in pair.units_done:
                continue
            pages = rng.randint(1, 3)
            for number in range(1, pages + 1):
                roll = rng.random()
                if roll < 0.06:
                    rec.page("chat", subject, 1, exhausted=False, unit=unit, page=number)
                    return "killed"
                last = number == pages and roll > 0.2
                c = rng.randrange(6)
                count += c
                rec.page("chat", subject, c, exhausted=last, unit=unit, page=number)
                if last:
                    value = self.value("chat")
                    rec.cursor_write("chat", subject, value, unit=unit)
                    pair.units_done[unit] = value
                    break
            else:
                rec.cursor_skip("chat", subject, "partial")
                rec.end("chat", subject, count, partial=True)
                return "partial"
        if not units:
            rec.page("chat", subject, 0, exhausted=True)
        previous = self.cursors.get(("chat", subject, None))
        values = [v for v in (previous, *pair.units_done.values()) if v]
        value = max(values) if values else self.value("chat")
        rec.cursor_write("chat", subject, value)
        rec.end("chat", subject, count, exhausted=True)
        self.cursors[("chat", subject, None)] = value
        return "complete"

    def sweep(self, number: int, last: bool) -> None:
        rec, rng = self.rec, self.rng
        roster = sorted(rng.sample(SUBJECT_POOL, rng.randint(1, 3)), key=subject_order)
        services = [s for s in SERVICES if rng.random() < 0.6] or ["gmail"]
        pairs = {(svc, subj): _Pair() for subj in roster for svc in services}
        sweep_id = f"sweep-{number:02d}"
        opened = False
        for _ in range(rng.randint(1, 5)):
            run_id = self.new_run()
            rec.run_start(run_id, sweep_id if not opened else None)
            if not opened:
                previous = rec.sweep_id if number else None
                if previous is not None and previous != sweep_id:
                    rec.sweep_close("abandoned", sweep=previous)
                rec.sweep_open(roster, services, sweep_id)
                opened = True
            self.operator_events(roster, services)
            if rng.random() < 0.3:
                rec.add(EventKind.HEARTBEAT, run=run_id, sweep=None, pid=4242)
            ending = self.run_plan(pairs, roster, services)
            if ending == "killed":
                self.stale_run = run_id
                continue
            if self.complete(pairs, roster, services):
                rec.sweep_close("complete")
                rec.run_end("completed")
                return
            rec.run_end({"stop": "interrupted", "partial": "completed"}.get(ending, "paused"))
        if self.stale_run is not None and not last:
            # The next sweep's first run closes the killed run before anything else.
            pass

    def active(self, subject: str, service: str) -> bool:
        return subject not in self.paused and (subject, service) not in self.blocked

    def complete(self, pairs: dict[tuple[str, str], _Pair], roster: list[str], services: list[str]) -> bool:
        return all(
            pairs[(svc, subj)].state == "complete"
            for subj in roster
            for svc in services
            if self.active(subj, svc)
        )

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

    def run_plan(self, pairs: dict[tuple[str, str], _Pair], roster: list[str], services: list[str]) -> str:
        """Attempt the remaining pairs in plan order; returns how the run stopped."""
        for subject in roster:
            for service in services:
                pair = pairs[(service, subject)]
                if pair.state == "complete" or not self.active(subject, service):
                    continue
                outcome = self.attempt(service, subject, pair)
                pair.state = {"stop": "partial", "killed": "partial"}.get(outcome, outcome)
                if outcome in ("killed", "stop"):
                    return outcome
        return "partial"


def valid_ledger(seed: int) -> tuple[list[NewEvent], set[str]]:
    """A seeded random ledger the checker must accept, and the run ids to pass as live."""
    gen = _Generator(random.Random(seed))
    sweeps = gen.rng.randint(1, 3)
    for number in range(sweeps):
        gen.sweep(number, number == sweeps - 1)
    live: set[str] = set()
    if gen.stale_run is not None:
        live.add(gen.stale_run)
    return gen.rec.news, live
