"""`sweep check`: every rule the ledger promises, each violation named with its seq.

One pass over the stored rows verifies the hash chain and gapless seq, the attempt grammar
`START PAGE* (CURSOR_WRITE | CURSOR_SKIP) END`, cursor gating and monotonicity, END counts,
overlapping attempts and run lifecycles; then the projection tables are compared with the fold.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from sweepledger.ledger.chain import ChainVerifier
from sweepledger.ledger.codec import decode_data
from sweepledger.ledger.events import Event, EventKind
from sweepledger.ledger.schema import GUARD_TRIGGERS
from sweepledger.ledger.store import SqliteStore

from .completeness import completeness
from .cursors import regresses, unit_key
from .fold import State
from .tables import PROJECTION_VERSION, state_rows, stored_rows


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, at the event where it shows."""

    seq: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.rule}: {self.message}"


@dataclass(slots=True)
class _Attempt:
    run_id: str | None
    start_seq: int
    units: list[str]
    page_sum: int = 0
    pages: int = 0
    last_exhausted: bool = False
    unit_exhausted: dict[str | None, bool] = field(default_factory=dict)
    decided: str | None = None


class EventChecker:
    """Folds events while checking each against the rules; `finish` adds end-of-ledger rules."""

    def __init__(self) -> None:
        self.state = State(incremental=False)
        self.violations: list[Violation] = []
        self.attempts: dict[tuple[str, str], _Attempt] = {}
        self.ended_runs: set[str] = set()
        self.started_runs: dict[str, int] = {}

    def _flag(self, seq: int, rule: str, message: str) -> None:
        self.violations.append(Violation(seq, rule, message))

    def feed(self, event: Event) -> None:
        kind = event.kind
        if event.run_id is not None and kind is not EventKind.RUN_START:
            if event.run_id in self.ended_runs:
                self._flag(event.seq, "run", f"{kind} after RUN_END of run {event.run_id}")
            elif event.run_id not in self.started_runs and kind is not EventKind.HEARTBEAT:
                self._flag(event.seq, "run", f"{kind} of run {event.run_id} with no RUN_START")
        if kind is EventKind.RUN_START:
            if event.run_id in self.started_runs:
                self._flag(event.seq, "run", f"second RUN_START of run {event.run_id}")
            self.started_runs[str(event.run_id)] = event.seq
        elif kind is EventKind.RUN_END:
            self.ended_runs.add(str(event.run_id))
            for key in [k for k, a in self.attempts.items() if a.run_id == event.run_id]:
                del self.attempts[key]
        elif kind is EventKind.SWEEP_CLOSE and event.data.get("status") == "complete":
            self._check_close(event)
        elif event.service is not None and event.subject is not None:
            self._check_pair(event)
        self.state.apply(event)

    def _check_close(self, event: Event) -> None:
        sweep = self.state.sweep
        if sweep is None or sweep.sweep_id != event.sweep_id:
            self._flag(event.seq, "complete", "SWEEP_CLOSE of a sweep that is not open")
            return
        figures = completeness(self.state.counters, sweep.services, run_live=True)
        if not figures.complete:
            self._flag(
                event.seq, "complete", "closed complete while " + "; ".join(figures.failures())
            )

    def _check_pair(self, event: Event) -> None:
        kind, key, data, seq = (
            event.kind,
            (str(event.service), str(event.subject)),
            event.data,
            event.seq,
        )
        if kind in (
            EventKind.BLOCK,
            EventKind.UNBLOCK,
            EventKind.PAUSE,
            EventKind.UNPAUSE,
            EventKind.CURSOR_RESET,
        ):
            return
        sweep = self.state.sweep
        if sweep is None or sweep.sweep_id != event.sweep_id or sweep.closed:
            self._flag(seq, "sweep", f"{kind} outside the open sweep")
        attempt = self.attempts.get(key)
        if kind is EventKind.START:
            if attempt is not None:
                self._flag(
                    seq,
                    "overlap",
                    f"START while the attempt started at seq {attempt.start_seq} is still open",
                )
            self.attempts[key] = _Attempt(event.run_id, seq, list(data.get("units") or []))
            return
        if attempt is None:
            self._flag(seq, "grammar", f"{kind} with no open attempt (START missing)")
            return
        if kind is EventKind.PAGE:
            if attempt.decided:
                self._flag(seq, "grammar", f"PAGE after {attempt.decided.upper()}")
            count = data.get("count")
            if not isinstance(count, int) or count < 0:
                self._flag(seq, "grammar", f"PAGE count {count!r} is not a count")
                count = 0
            attempt.page_sum += count
            attempt.pages += 1
            attempt.last_exhausted = bool(data.get("exhausted"))
            attempt.unit_exhausted[data.get("unit")] = attempt.last_exhausted
        elif kind is EventKind.CURSOR_WRITE:
            self._check_cursor_write(event, key, attempt)
        elif kind is EventKind.CURSOR_SKIP:
            if attempt.decided:
                self._flag(seq, "grammar", f"CURSOR_SKIP after {attempt.decided.upper()}")
            attempt.decided = "cursor_skip"
        elif kind is EventKind.END:
            if not attempt.decided:
                self._flag(seq, "grammar", "END without CURSOR_WRITE or CURSOR_SKIP")
            if data.get("count") != attempt.page_sum:
                self._flag(
                    seq,
                    "count",
                    f"END count {data.get('count')} != sum of PAGE counts {attempt.page_sum}",
                )
            if data.get("ok") and not data.get("partial") and attempt.decided != "cursor_write":
                self._flag(seq, "gating", "END ok without a CURSOR_WRITE")
            del self.attempts[key]

    def _check_cursor_write(self, event: Event, key: tuple[str, str], attempt: _Attempt) -> None:
        data, seq = event.data, event.seq
        unit = data.get("unit")
        if unit is not None:
            if attempt.decided:
                self._flag(seq, "grammar", f"unit CURSOR_WRITE after {attempt.decided.upper()}")
            if not attempt.unit_exhausted.get(unit):
                self._flag(
                    seq,
                    "gating",
                    f"cursor of unit {unit} written before its pagination was exhausted",
                )
        else:
            if attempt.decided == "cursor_skip":
                self._flag(seq, "grammar", "CURSOR_WRITE after CURSOR_SKIP")
            if attempt.decided is None:
                row = self.state.pairs.get(key)
                done = set(row.units_done) if row is not None else set()
                if attempt.units:
                    missing = [u for u in attempt.units if u not in done]
                    if missing:
                        self._flag(
                            seq,
                            "gating",
                            f"pair cursor written while units "
                            f"{', '.join(missing[:3])} are not exhausted",
                        )
                elif not attempt.last_exhausted:
                    self._flag(
                        seq,
                        "gating",
                        "cursor written before pagination was exhausted "
                        "(the attempt's last PAGE is not exhausted)",
                    )
            attempt.decided = "cursor_write"
        name = unit_key(str(data.get("key")), unit)
        current = self.state.cursors.get((key[0], key[1], name))
        value = str(data.get("value"))
        if current is not None and regresses(name, current.value, value):
            self._flag(
                seq,
                "regression",
                f"cursor {name} of {key[0]}/{key[1]} moves back from "
                f"{current.value} to {value} without CURSOR_RESET",
            )

    def finish(self, live_run_ids: Collection[str]) -> None:
        for run_id, seq in self.started_runs.items():
            if run_id not in self.ended_runs and run_id not in live_run_ids:
                self._flag(
                    seq,
                    "run",
                    f"run {run_id} never ended and its process is gone "
                    "(the next `sweep run` closes it as aborted)",
                )


@dataclass(frozen=True, slots=True)
class CheckResult:
    violations: list[Violation]
    state: State

    @property
    def ok(self) -> bool:
        return not self.violations


def check_events(events: Iterable[Event], live_run_ids: Collection[str] = ()) -> CheckResult:
    """The event rules alone, over decoded events (used on generated sequences in tests)."""
    checker = EventChecker()
    for event in events:
        checker.feed(event)
    checker.finish(live_run_ids)
    return CheckResult(checker.violations, checker.state)


def check_store(store: SqliteStore, live_run_ids: Collection[str] = ()) -> CheckResult:
    """Every rule, over a stored ledger: rows, chain, guard, events and projection tables."""
    checker = EventChecker()
    missing = [t for t in GUARD_TRIGGERS if t not in store.triggers()]
    for name in missing:
        checker._flag(0, "guard", f"trigger {name} is missing: events could be changed")
    chain = ChainVerifier()
    for row in store.read_rows():
        seq = int(row[0])
        for problem in chain.feed(row):
            checker._flag(seq, "chain", problem)
        try:
            kind = EventKind(row[4])
            data = decode_data(row[7])
        except ValueError as e:
            checker._flag(seq, "decode", f"unreadable event: {e}")
            continue
        checker.feed(Event(seq, row[1], row[2], row[3], kind, row[5], row[6], data, row[8]))
    checker.finish(live_run_ids)
    if store.get_meta("projection_version") == PROJECTION_VERSION:
        _compare_tables(store, checker)
    checker.violations.sort(key=lambda v: v.seq)
    return CheckResult(checker.violations, checker.state)


def _compare_tables(store: SqliteStore, checker: EventChecker) -> None:
    state = checker.state
    meta = dict(store.conn.execute("SELECT key, value FROM projection_state").fetchall())
    if int(meta.get("head", 0)) != state.head or meta.get("head_hash", "") != state.head_hash:
        checker._flag(
            state.head,
            "anchor",
            f"the projections were written through seq "
            f"{meta.get('head')} (hash {str(meta.get('head_hash'))[:12]}) but the "
            f"ledger ends at seq {state.head} (hash {state.head_hash[:12]}): events "
            "at the end were removed or rewritten",
        )
    expected = state_rows(state)
    stored = stored_rows(store.conn)
    for table, rows in expected.items():
        extra = stored[table] - rows
        lacking = rows - stored[table]
        if extra or lacking:
            sample = next(iter(extra or lacking))
            checker._flag(
                state.head,
                "projection",
                f"table {table} differs from a rebuild "
                f"({len(extra)} rows extra, {len(lacking)} missing; e.g. {sample[:3]})",
            )
