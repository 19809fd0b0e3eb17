"""The fold: `State.apply(event)` derives every projection from the event stream.

The same fold runs in memory (replay, `--as-of`, check) and write-through (the tables `status`
reads): `State` remembers which rows an event changed, and `tables.TableWriter` writes exactly
those in the appending transaction. No part of the fold reads the clock or the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from sweepledger.ledger.events import Event, EventKind

from .completeness import Vector, apply_difference, subject_vector
from .cursors import unit_key
from .model import (
    COMPLETE,
    ERR_PREFIX,
    IN_PROGRESS,
    NOT_STARTED,
    PARTIAL,
    CursorRow,
    Flag,
    PairRow,
    RunRow,
    SweepInfo,
    closed_as_stale,
    interrupted_detail,
)

PairKey = tuple[str, str]
PairHandler = Callable[["State", PairRow, int, "str | None", dict[str, Any], "RunRow | None"], None]
"""A pair phase's effect: (state, pair row, seq, run_id, data, the run if known)."""
END_COUNTER_FIELDS = ("requests", "retries", "rate_limited", "quota_units")
"""What an END adds to its run: the cost of a call that ended the attempt (no PAGE has them)."""
RUN_COUNTER_FIELDS = (
    "fetched",
    "inserted",
    "updated",
    "unchanged",
    "deleted",
    "requests",
    "rate_limited",
    "quota_units",
    "retries",
)
Bounds = tuple["str | None", "str | None"]
"""A part of the subjects (`projections.parallel`): lowest included, highest excluded (None:
unbounded)."""


def owns(part: Bounds | None, subject: object) -> bool:
    """Whether `part` holds `subject`, in SQLite's order of values (numbers < text < blobs),
    which is how the part's rows were selected."""
    if part is None:
        return True
    low, high = part
    if isinstance(subject, bytes):
        return high is None
    if not isinstance(subject, str):
        return low is None
    return (low is None or subject >= low) and (high is None or subject < high)


VECTOR_CACHE = 4096
"""Subjects whose vectors the write-through fold keeps (far more than the pairs in flight)."""
_PAGE_COUNTER_FIELDS = tuple(name for name in RUN_COUNTER_FIELDS if name != "fetched")
"""What a PAGE adds to its run besides "fetched" (its count, added first as it is listed)."""


class State:
    """Everything the projections know after folding events up to `head`.

    `incremental` keeps the sweep's counters current after every event (the write-through
    projector needs them for each transaction); without it, a bulk fold (replay, check, rebuild)
    marks them stale and recounts once when they are read, which is the same sum computed once
    instead of after every event.
    """

    def __init__(self, *, incremental: bool = True, subjects: Bounds | None = None) -> None:
        self.incremental = incremental
        self.subjects = subjects
        """A bulk fold of one part of the subjects (`projections.parallel`): lowest included,
        highest excluded (None: unbounded). Its counters then sum only those subjects' vectors,
        so the parts' counters add up to the whole's."""
        self._counters: dict[str, int] = {}
        self._counters_stale = False
        self.frozen: dict[str, int] | None = None
        """The latest sweep's counters as they stood when it closed (None while it is open).
        A closed sweep's figures are those it ended with: an operator event after the close
        (an unblock, a cursor reset) shapes the next sweep, and leaves a COMPLETE sweep's
        figures all met instead of showing the unblocked subject as missing from it."""
        self.head = 0
        self.head_ts = ""
        self.head_hash = ""
        self.sweep: SweepInfo | None = None
        self.past_sweeps: dict[str, tuple[SweepInfo, dict[str, int]]] = {}
        self.pairs: dict[PairKey, PairRow] = {}
        self.cursors: dict[tuple[str, str, str], CursorRow] = {}
        self._by_pair: dict[PairKey, set[tuple[str, str, str]]] = {}
        self.runs: dict[str, RunRow] = {}
        self.blocked: dict[tuple[str, str | None], Flag] = {}
        self.paused: dict[str, Flag] = {}
        self.heartbeat: dict[str, Any] | None = None
        self._touched: dict[str, Vector] = {}
        """Incremental mode: subjects changed since the counters were last settled, with the
        vector each had before its first change."""
        self._vectors: dict[str, Vector] = {}
        """Incremental mode: the vectors of the subjects changed lately, as `_retally` left
        them, so an event's "before" is not computed again (a page changes its subject twice:
        the vector before and after)."""
        self._pending_checkpoints: dict[PairKey, dict[str, Any]] = {}
        """Bulk mode only: the data of each pair's latest PAGE whose checkpoint `settle` has
        not yet built (most pages are followed by another, so building each one is waste)."""
        self.clear_dirty()

    def clear_dirty(self) -> None:
        """Forget what changed (after the table writer has written it)."""
        self.dirty_pairs: set[PairKey] = set()
        self.dirty_runs: set[str] = set()
        self.dirty_cursors: set[tuple[str, str, str]] = set()
        self.dirty_sweep = False
        self.dirty_counters: set[str] = set()
        self.dirty_heartbeat = False
        self.dirty_flags = False
        self.pairs_reset = False

    # -- cursors, indexed by pair (a tenant has hundreds of thousands) ------------------------

    def set_cursor(self, key: tuple[str, str, str], cursor: CursorRow) -> None:
        self.cursors[key] = cursor
        self._by_pair.setdefault((key[0], key[1]), set()).add(key)

    def drop_cursor(self, key: tuple[str, str, str]) -> None:
        self.cursors.pop(key, None)
        self._by_pair.get((key[0], key[1]), set()).discard(key)

    def pair_cursors(self, service: str, subject: str) -> dict[tuple[str, str, str], CursorRow]:
        """The pair's cursors (and its units'), without scanning every cursor."""
        keys = self._by_pair.get((service, subject), ())
        return {k: self.cursors[k] for k in keys if k in self.cursors}

    # -- reading -------------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        """The latest sweep's figures: sums of every roster subject's `vector` (the figures it
        closed with, once closed)."""
        if self.frozen is not None:
            return self.frozen
        if self._touched:
            self.settle_counters()
        if self._counters_stale:
            self._counters = self.recount()
            self._counters_stale = False
        return self._counters

    @counters.setter
    def counters(self, value: dict[str, int]) -> None:
        self._counters = value
        self._counters_stale = False
        self._touched = {}

    def recount(self) -> dict[str, int]:
        """The counters computed from nothing (what the incremental ones must always equal)."""
        total: dict[str, int] = {}
        if self.sweep is not None:
            for subject in self.sweep.roster:
                if owns(self.subjects, subject):
                    apply_difference(total, {}, self.vector(subject))
        return total

    def is_blocked(self, subject: str, service: str) -> bool:
        return (subject, None) in self.blocked or (subject, service) in self.blocked

    def is_paused(self, subject: str) -> bool:
        return subject in self.paused

    def vector(self, subject: str) -> Vector:
        if self.sweep is None or subject not in self._roster_set:
            return {}
        return subject_vector(
            subject,
            self.sweep.services,
            lambda s, e: self.pairs.get((s, e)),
            self.is_blocked,
            self.is_paused,
        )

    # -- folding (the bulk fold over stored rows is `projections.bulk`) -----------------------

    def apply_all(self, events: Iterable[Event]) -> State:
        for event in events:
            self.apply(event)
        self.settle()
        return self

    def settle(self) -> None:
        """Build the checkpoints a bulk fold left pending; a no-op in incremental mode.

        The bulk fold remembers only the data of a pair's latest PAGE and builds its checkpoint
        here, once, from the same fields `_on_page` would have used then: nothing between that
        PAGE and now changed them (the next PAGE replaces the pending data; an END that
        completes the pair and a CURSOR_RESET drop it).
        """
        pending, self._pending_checkpoints = self._pending_checkpoints, {}
        for key, data in pending.items():
            row = self.pairs[key]
            row.checkpoint = _page_checkpoint(data, bool(data.get("exhausted")), row.outstanding)

    def apply(self, event: Event) -> None:
        self.head = event.seq
        self.head_ts = event.ts
        self.head_hash = event.hash
        kind = event.kind
        if event.run_id is not None and event.run_id in self.runs:
            run = self.runs[event.run_id]
            if not (
                kind is EventKind.RUN_END
                and closed_as_stale(event.data.get("status"), event.data.get("reason"))
            ):
                # a run's last event is its own: the stale close is another run's, written
                # after the dead run stopped working
                run.last_seq, run.last_ts = event.seq, event.ts
            self.dirty_runs.add(run.run_id)
        if event.service is not None and event.subject is not None:
            self._apply_pair(event)
        elif kind is EventKind.SWEEP_OPEN:
            self._open_sweep(event)
        elif kind is EventKind.SWEEP_CLOSE:
            if self.sweep is not None and self.sweep.sweep_id == event.sweep_id:
                self.sweep.closed = str(event.data.get("status", "complete"))
                self.sweep.closed_seq, self.sweep.closed_ts = event.seq, event.ts
                self.frozen = dict(self.counters)
                self.dirty_sweep = True
        elif kind is EventKind.RUN_START:
            self._start_run(event)
        elif kind is EventKind.RUN_END:
            self._end_run(event)
        elif kind in (EventKind.BLOCK, EventKind.UNBLOCK, EventKind.PAUSE, EventKind.UNPAUSE):
            self._operator_flag(event)
        elif kind is EventKind.HEARTBEAT:
            self.heartbeat = {"seq": event.seq, "ts": event.ts, **event.data}
            self.dirty_heartbeat = True

    def _open_sweep(self, event: Event) -> None:
        data = event.data
        if self.sweep is not None:
            # keep what the sweeps tables show of it; its roster stays in its SWEEP_OPEN
            past = self.sweep
            final = dict(self.counters)
            past.roster = []
            self.past_sweeps[past.sweep_id] = (past, final)
        self.frozen = None
        self.sweep = SweepInfo(
            sweep_id=str(event.sweep_id),
            opened_seq=event.seq,
            opened_ts=event.ts,
            roster=list(data["roster"]),
            services=list(data["services"]),
            source=str(data["source"]),
            options=dict(data.get("options") or {}),
        )
        self._roster_set = set(self.sweep.roster)
        self.pairs = {}
        self._vectors.clear()
        self._pending_checkpoints = {}
        self.pairs_reset = True
        self.dirty_pairs.clear()
        self.dirty_sweep = True
        if self.incremental:
            self.counters = self.recount()
            self.dirty_counters = set(self.counters)
        else:
            self._counters_stale = True

    def _before(self, subject: str) -> Vector | None:
        """Note the subject's contribution before an event changes it (incremental mode only):
        the first change in a transaction keeps the vector it had, which `settle_counters`
        compares with the vector after the last change; None in bulk mode."""
        if not self.incremental:
            return None
        touched = self._touched
        if subject not in touched:
            cached = self._vectors.get(subject)
            touched[subject] = self.vector(subject) if cached is None else cached
        return touched[subject]

    def _retally(self, subject: str, old: Vector | None) -> None:
        if old is None:
            self._counters_stale = True

    def settle_counters(self) -> None:
        """Apply the changes of the subjects touched since the last call to the counters.

        One vector per touched subject per transaction, however many of its events the
        transaction holds; the `counters` property settles before it answers.
        """
        touched, self._touched = self._touched, {}
        vectors = self._vectors
        if self.frozen is not None:  # the sweep closed: its figures stay; the vectors moved
            for subject in touched:
                vectors.pop(subject, None)
            return
        for subject, old in touched.items():
            new = self.vector(subject)
            self.dirty_counters |= apply_difference(self._counters, old, new)
            vectors.pop(subject, None)
            vectors[subject] = new
            if len(vectors) > VECTOR_CACHE:
                del vectors[next(iter(vectors))]  # the subject touched longest ago

    def _operator_flag(self, event: Event) -> None:
        subject = str(event.subject or event.data["subject"])
        old = self._before(subject)
        flag = Flag(str(event.data.get("reason", "")), event.seq, event.ts)
        service = event.data.get("service") or event.service
        match event.kind:
            case EventKind.BLOCK:
                self.blocked[(subject, service)] = flag
            case EventKind.UNBLOCK:
                self.blocked.pop((subject, service), None)
            case EventKind.PAUSE:
                self.paused[subject] = flag
            case EventKind.UNPAUSE:
                self.paused.pop(subject, None)
        self.dirty_flags = True
        self._retally(subject, old)

    def _start_run(self, event: Event) -> None:
        data = event.data
        self.runs[str(event.run_id)] = RunRow(
            run_id=str(event.run_id),
            sweep_id=event.sweep_id,
            started_seq=event.seq,
            started_ts=event.ts,
            pid=data.get("pid"),
            host=data.get("host"),
            argv=list(data.get("argv") or []),
            options=dict(data.get("options") or {}),
            trigger=str(data.get("trigger", "cli")),
            last_seq=event.seq,
            last_ts=event.ts,
        )
        self.dirty_runs.add(str(event.run_id))

    def _end_run(self, event: Event) -> None:
        run = self.runs.get(str(event.run_id))
        if run is None:
            return
        run.status = str(event.data.get("status", "completed"))
        run.reason = event.data.get("reason")
        run.ended_seq, run.ended_ts = event.seq, event.ts
        self.dirty_runs.add(run.run_id)
        for key, row in self.pairs.items():
            if row.open_run_id == run.run_id:
                old = self._before(row.subject)
                row.state = PARTIAL
                row.interrupted = True
                row.last_detail = interrupted_detail(run.run_id)
                row.open_run_id = row.open_seq = None
                row.updated_seq = event.seq
                self.dirty_pairs.add(key)
                self._retally(row.subject, old)

    def _apply_pair(self, event: Event) -> None:
        service, subject = str(event.service), str(event.subject)
        key = (service, subject)
        kind = event.kind
        if kind is EventKind.CURSOR_RESET:
            self._reset_cursor(event, service, subject)
            return
        if kind in (EventKind.BLOCK, EventKind.UNBLOCK, EventKind.PAUSE, EventKind.UNPAUSE):
            self._operator_flag(event)
            return
        row = self.pairs.get(key)
        if row is None:
            row = self.pairs[key] = PairRow(service, subject)
        old = self._before(subject)
        run = self.runs.get(str(event.run_id)) if event.run_id else None
        handler = self._PAIR_HANDLERS.get(kind)
        if handler is not None:
            handler(self, row, event.seq, event.run_id, event.data, run)
        row.updated_seq = event.seq
        self.dirty_pairs.add(key)
        self._retally(subject, old)

    def _on_start(
        self, row: PairRow, seq: int, run_id: str | None, data: dict[str, Any], run: RunRow | None
    ) -> None:
        row.state = IN_PROGRESS
        row.attempts += 1
        row.open_run_id, row.open_seq = run_id, seq
        row.last_run_id = run_id
        row.attempt_count = 0
        row.last_page_exhausted = False
        row.exhausted = False
        row.interrupted = False
        row.skip_reason = None
        if run is not None:
            _bump(run, row.service, "pairs_attempted")

    def _on_page(
        self, row: PairRow, seq: int, run_id: str | None, data: dict[str, Any], run: RunRow | None
    ) -> None:
        service = row.service
        count = int(data.get("count", 0))
        row.attempt_count += count
        row.items += count
        exhausted = bool(data.get("exhausted"))
        row.last_page_exhausted = exhausted
        retried = data.get("retried_ids")
        failed = data.get("failed_ids")
        if retried or failed:
            retried_set = set(retried or ())
            kept = [i for i in row.outstanding if i not in retried_set]
            row.outstanding = kept + [i for i in list(failed or ()) if i not in kept]
        if self.incremental:
            row.checkpoint = _page_checkpoint(data, exhausted, row.outstanding)
        else:
            self._pending_checkpoints[(service, row.subject)] = data
        if run is not None:
            totals, per = run.counters, run.by_service.get(service)
            if per is None:
                per = run.by_service[service] = {}
            total_of, per_of = totals.get, per.get
            totals["pages"] = total_of("pages", 0) + 1
            per["pages"] = per_of("pages", 0) + 1
            if count:  # "fetched" is the page's count (RUN_COUNTER_FIELDS' first)
                totals["fetched"] = total_of("fetched", 0) + count
                per["fetched"] = per_of("fetched", 0) + count
            for name in _PAGE_COUNTER_FIELDS:
                value = data.get(name)
                if value:
                    totals[name] = total_of(name, 0) + value
                    per[name] = per_of(name, 0) + value

    def _on_cursor_write(
        self, row: PairRow, seq: int, run_id: str | None, data: dict[str, Any], run: RunRow | None
    ) -> None:
        service, subject = row.service, row.subject
        unit = data.get("unit")
        ckey = (service, subject, unit_key(str(data["key"]), unit))
        self.cursors[ckey] = CursorRow(str(data["value"]), seq)
        keys = self._by_pair.get((service, subject))
        if keys is None:
            keys = self._by_pair[(service, subject)] = set()
        keys.add(ckey)
        if self.incremental:
            self.dirty_cursors.add(ckey)
        if unit is not None and unit not in row.units_done:
            row.units_done.append(unit)

    def _on_cursor_skip(
        self, row: PairRow, seq: int, run_id: str | None, data: dict[str, Any], run: RunRow | None
    ) -> None:
        row.skip_reason = str(data.get("reason", ""))

    def _on_end(
        self, row: PairRow, seq: int, run_id: str | None, data: dict[str, Any], run: RunRow | None
    ) -> None:
        service = row.service
        row.open_run_id = row.open_seq = None
        err = data.get("err")
        if err:
            row.state = ERR_PREFIX + str(err)
            row.last_err = str(err)
            if data.get("permanent"):
                row.permanent_failures += 1
        elif data.get("partial"):
            row.state = PARTIAL
        else:
            row.state = COMPLETE
            row.checkpoint = None
            if self._pending_checkpoints:
                self._pending_checkpoints.pop((service, row.subject), None)
        row.last_detail = data.get("detail") or None
        row.exhausted = bool(data.get("exhausted"))
        if run is not None:
            outcome = (
                "pairs_completed"
                if row.state == COMPLETE
                else "pairs_errored"
                if err
                else "pairs_partial"
            )
            _bump(run, service, outcome)
            for name in END_COUNTER_FIELDS:
                value = data.get(name)
                if value:
                    _bump(run, service, name, int(value))

    def _reset_cursor(self, event: Event, service: str, subject: str) -> None:
        unit = event.data.get("unit")
        for ckey in list(self.pair_cursors(service, subject)):
            if unit is None or ckey[2].endswith(f"@{unit}"):
                self.drop_cursor(ckey)
                self.dirty_cursors.add(ckey)
        row = self.pairs.get((service, subject))
        if row is not None:
            old = self._before(subject)
            row.checkpoint = None
            self._pending_checkpoints.pop((service, subject), None)
            if event.data.get("operator") and row.open_run_id is None:
                # an operator's reset makes the pair due again in the open sweep
                row.state = NOT_STARTED
                row.exhausted = False
            if unit is None:
                row.units_done = []
            elif unit in row.units_done:
                row.units_done.remove(unit)
            row.updated_seq = event.seq
            self.dirty_pairs.add((service, subject))
            self._retally(subject, old)

    _PAIR_HANDLERS: ClassVar[dict[EventKind, PairHandler]] = {}
    _roster_set: set[str] = set()  # noqa: RUF012 - replaced per instance by SWEEP_OPEN


def _bump(run: RunRow, service: str, name: str, value: int = 1) -> None:
    run.counters[name] = run.counters.get(name, 0) + value
    per = run.by_service.setdefault(service, {})
    per[name] = per.get(name, 0) + value


def _page_checkpoint(
    data: dict[str, Any], exhausted: bool, outstanding: list[str]
) -> dict[str, Any] | None:
    """Where the next attempt continues after this PAGE (None: nothing to continue)."""
    checkpoint = {
        "unit": data.get("unit"),
        "page": data.get("page"),
        "token": data.get("next_page_token"),
        "carry": data.get("carry") or {},
    }
    if "pass_from" in data:  # a full pass's bound, which the attempt resuming it keeps
        checkpoint["pass_from"] = data["pass_from"]
    if not exhausted:
        return checkpoint
    if outstanding:
        # the pass is over but some items are not stored: the next attempt retries them
        # from here, then writes the cursor this pass earned
        return {**checkpoint, "token": None, "exhausted": True}
    return None


State._PAIR_HANDLERS = {
    EventKind.START: State._on_start,
    EventKind.PAGE: State._on_page,
    EventKind.CURSOR_WRITE: State._on_cursor_write,
    EventKind.CURSOR_SKIP: State._on_cursor_skip,
    EventKind.END: State._on_end,
}


def fold(events: Iterable[Event]) -> State:
    """A fresh state folded over decoded `events` (tests, tools holding `Event` records).

    `projections.bulk.fold_ledger` folds a stored ledger the same, faster."""
    return State(incremental=False).apply_all(events)
