"""The rules of `sweep check` over the event stream, one event at a time (DESIGN 4).

`EventChecker` folds the events while checking each against the attempt grammar `START PAGE*
(CURSOR_WRITE | CURSOR_SKIP) END`, cursor gating and monotonicity, END counts, overlapping
attempts, run lifecycles and closing a sweep complete; `finish` adds the end-of-ledger rules.

A checker can also take one part of the subjects (`projections.parallel`): it then folds every
shared event and its own subjects' pair events, and reports a violation only where it is the
event's reporter (the owner of the event's subject, else the primary part), so the parts'
reports add up to one pass's. Closing a sweep complete is judged on the sum of the parts'
counters, so a part only records them (`closes`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sweepledger.ledger.events import Event, EventKind

from .bulk import step
from .completeness import completeness
from .cursors import regresses, unit_key
from .fold import Bounds, State, owns


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

    def __init__(self, part: Bounds | None = None, *, primary: bool = True) -> None:
        self.part = part
        self.primary = primary
        self.state = State(incremental=False, subjects=part)
        self.violations: list[Violation] = []
        self.attempts: dict[tuple[str, str], _Attempt] = {}
        self.ended_runs: set[str] = set()
        self.started_runs: dict[str, int] = {}
        self.closes: list[tuple[int, dict[str, int], list[str]]] = []
        """A part's SWEEP_CLOSE complete events: (seq, its subjects' counters, services)."""
        self.muted = False
        """Set by a part's pass for an event another part reports."""
        self.created: dict[tuple[str, str], tuple[int | None, int]] = {}
        """(service, subject) -> the rows its PAGE events say they added to its item table,
        and the last such PAGE's seq. None once a PAGE did not say (written before PAGE events
        carried `created`): that pair's rows cannot be counted against the ledger."""

    def _flag(self, seq: int, rule: str, message: str) -> None:
        if not self.muted:
            self.violations.append(Violation(seq, rule, message))

    def reports(self, shared: bool, subject: object) -> bool:
        """Whether this part reports the violations of an event (always, when not a part).

        A pair event came to this part because it owns its subject; a shared event is
        reported by the owner of its subject, or by the primary part when it has none.
        """
        if self.part is None or not shared:
            return True
        return self.primary if subject is None else owns(self.part, subject)

    def feed(self, event: Event) -> None:
        """Check and fold one decoded event."""
        self.check(
            event.seq,
            event.sweep_id,
            event.run_id,
            event.kind,
            event.service,
            event.subject,
            event.data,
        )
        self.state.apply(event)

    def feed_fields(
        self,
        seq: int,
        ts: str,
        sweep_id: str | None,
        run_id: str | None,
        kind: EventKind,
        service: str | None,
        subject: str | None,
        data: dict[str, Any],
    ) -> None:
        """Check and fold one stored event without building an `Event` (the bulk pass)."""
        self.check(seq, sweep_id, run_id, kind, service, subject, data)
        step(self.state, seq, ts, sweep_id, run_id, kind, service, subject, data)

    def check(
        self,
        seq: int,
        sweep_id: str | None,
        run_id: str | None,
        kind: EventKind,
        service: str | None,
        subject: str | None,
        data: dict[str, Any],
    ) -> None:
        """The rules for one event, against the state folded up to the event before it."""
        if run_id is not None and kind is not EventKind.RUN_START:
            if run_id in self.ended_runs:
                self._flag(seq, "run", f"{kind} after RUN_END of run {run_id}")
            elif run_id not in self.started_runs and kind is not EventKind.HEARTBEAT:
                self._flag(seq, "run", f"{kind} of run {run_id} with no RUN_START")
        if kind is EventKind.RUN_START:
            if run_id in self.started_runs:
                self._flag(seq, "run", f"second RUN_START of run {run_id}")
            self.started_runs[str(run_id)] = seq
        elif kind is EventKind.RUN_END:
            self.ended_runs.add(str(run_id))
            for key in [k for k, a in self.attempts.items() if a.run_id == run_id]:
                del self.attempts[key]
        elif kind is EventKind.SWEEP_CLOSE and data.get("status") == "complete":
            self._check_close(seq, sweep_id)
        elif service is not None and subject is not None:
            self._check_pair(seq, sweep_id, run_id, kind, (service, subject), data)

    def _check_close(self, seq: int, sweep_id: str | None) -> None:
        sweep = self.state.sweep
        if sweep is None or sweep.sweep_id != sweep_id:
            self._flag(seq, "complete", "SWEEP_CLOSE of a sweep that is not open")
            return
        if self.part is not None:  # every part records it: the sum is judged after
            self.closes.append((seq, dict(self.state.counters), list(sweep.services)))
            return
        figures = completeness(self.state.counters, sweep.services, run_live=True)
        if not figures.complete:
            self._flag(seq, "complete", "closed complete while " + "; ".join(figures.failures()))

    def _check_pair(
        self,
        seq: int,
        sweep_id: str | None,
        run_id: str | None,
        kind: EventKind,
        key: tuple[str, str],
        data: dict[str, Any],
    ) -> None:
        if kind in (
            EventKind.BLOCK,
            EventKind.UNBLOCK,
            EventKind.PAUSE,
            EventKind.UNPAUSE,
            EventKind.CURSOR_RESET,
        ):
            return
        if kind is EventKind.PAGE:
            self._count_created(seq, key, data.get("created"))
        sweep = self.state.sweep
        if sweep is None or sweep.sweep_id != sweep_id or sweep.closed:
            self._flag(seq, "sweep", f"{kind} outside the open sweep")
        attempt = self.attempts.get(key)
        if kind is EventKind.START:
            if attempt is not None:
                self._flag(
                    seq,
                    "overlap",
                    f"START while the attempt started at seq {attempt.start_seq} is still open",
                )
            self.attempts[key] = _Attempt(run_id, seq, list(data.get("units") or []))
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
            self._check_cursor_write(seq, data, key, attempt)
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

    def _count_created(self, seq: int, key: tuple[str, str], made: object) -> None:
        total, _ = self.created.get(key, (0, 0))
        if total is not None and type(made) is int and made >= 0:
            self.created[key] = (total + made, seq)
        else:
            self.created[key] = (None, seq)

    def _check_cursor_write(
        self, seq: int, data: dict[str, Any], key: tuple[str, str], attempt: _Attempt
    ) -> None:
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
        """The end-of-ledger rules; the state is complete after it (checkpoints built)."""
        self.state.settle()
        if not self.primary:
            return  # runs are shared events: the primary part reports them
        for run_id, seq in self.started_runs.items():
            if run_id not in self.ended_runs and run_id not in live_run_ids:
                self._flag(
                    seq,
                    "run",
                    f"run {run_id} never ended and its process is gone "
                    "(the next `sweep run` closes it as aborted)",
                )


@dataclass(slots=True)
class PartResult:
    """What one part's pass found; the checker stays for `finish` (the primary part).

    Defined here, not beside `check.check_part`, so a worker running `check` as `__main__`
    pickles it under a name the caller can load.
    """

    violations: list[Violation]
    checker: EventChecker
