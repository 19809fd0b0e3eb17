"""One attempt at one pair: START, a PAGE per persisted page, the cursor decision, END.

The cursor is written only when pagination ended by the service's own rule and every page is in
the ledger; every other way out (page limit, time budget, signal, error) skips it with a reason and
leaves a page checkpoint, so the next attempt continues where this one stopped.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.store import Transaction
from sweepledger.projections.cursors import ORDERED_KEYS, regresses, unit_key
from sweepledger.projections.fold import State

from .errors import (
    PERMANENT_CLASSES,
    CollectorError,
    CursorExpired,
    Internal,
    InvalidPageToken,
    ItemFailed,
    NoProgress,
    Stopped,
)
from .protocol import CURSOR_KEYS, FetchRequest, Page, Source
from .retry import RetryPolicy, RetryTally, call_with_retries
from .sink import forget_unlisted, write_items
from .writer import Pending, Writer


@dataclass(slots=True)
class _FullPass:
    """A pass's reconciliation: a full pass without a window lists everything the service holds,
    so its end tombstones the stored items it did not list (`sink.forget_unlisted`), those that
    no page after seq `listed_after` listed. That bound is the seq before the pass's first page,
    set when that page is built and carried by every PAGE of the pass (`pass_from`), so an
    attempt resuming the pass from its checkpoint keeps it; a pass resumed without one (written
    before the field existed) is not reconciled, since what its earlier pages listed is unknown.
    """

    reconcile: bool
    listed_after: int | None = None


@dataclass(frozen=True, slots=True)
class AttemptLimits:
    """What bounds one attempt."""

    max_pages: int | None = 10
    deadline: float | None = None
    """`time.monotonic()` after which the attempt stops at the next page boundary."""
    since: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    max_attempts: int = 3
    """Permanent failures (Forbidden, NotFound) in a sweep before the pair is blocked."""

    def spent(self) -> bool:
        """The time budget is spent: the attempt stops with reason `budget`."""
        return self.deadline is not None and time.monotonic() >= self.deadline


@dataclass(frozen=True, slots=True)
class AttemptResult:
    service: str
    subject: str
    state: str
    items: int
    err: str | None = None


class _Stop(Exception):
    """The attempt must end now, for `reason`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail


_Build = tuple[Callable[[Transaction], None], int]
"""An append of the attempt and the number of items its page counts (0 for other events)."""


@dataclass(slots=True)
class _Snapshot:
    attempts: int
    checkpoint: dict[str, Any] | None
    units_done: list[str]
    outstanding: list[str]
    permanent_failures: int
    cursors: dict[str | None, dict[str, str]]


def _snapshot(state: State, service: str, subject: str) -> _Snapshot:
    row = state.pairs.get((service, subject))
    cursors: dict[str | None, dict[str, str]] = {}
    for (svc, subj, key), cursor in state.pair_cursors(service, subject).items():
        if svc == service and subj == subject:
            base, _, unit = key.partition("@")
            cursors.setdefault(unit or None, {})[base] = cursor.value
    if row is None:
        return _Snapshot(0, None, [], [], 0, cursors)
    return _Snapshot(
        row.attempts,
        row.checkpoint,
        list(row.units_done),
        list(row.outstanding),
        row.permanent_failures,
        cursors,
    )


class PairAttempt:
    """Runs one attempt; all its events go through the run's writer."""

    def __init__(
        self,
        *,
        writer: Writer,
        source: Source,
        sweep_id: str,
        run_id: str,
        service: str,
        subject: str,
        limits: AttemptLimits,
        stop: threading.Event,
        rng: random.Random,
    ) -> None:
        self.writer, self.source, self.limits, self.stop, self.rng = (
            writer,
            source,
            limits,
            stop,
            rng,
        )
        self.sweep_id, self.run_id, self.service, self.subject = (
            sweep_id,
            run_id,
            service,
            subject,
        )
        self.count = 0
        self.pages = 0
        self.outstanding: list[str] = []
        self._pass = _FullPass(reconcile=False)
        self._deferred: list[tuple[Callable[[Transaction], None], int]] = []
        """Builds (with the items their pages count) waiting for the next commit."""
        self._inflight: (
            tuple[Pending[None], list[tuple[Callable[[Transaction], None], int]]] | None
        ) = None
        self._start_build: Callable[[Transaction], None] | None = None
        self._snap = _Snapshot(0, None, [], [], 0, {})
        self._seen = 0
        """The head of the state the attempt read its pair from."""
        self._tally: RetryTally | None = None
        """The tally of the call in flight; no PAGE records it if the call ends the attempt."""
        self._pending = RetryTally()
        """Failed calls no PAGE has counted yet (before `units()` succeeded, or before a pass
        restarted): the next PAGE, or the END, carries them."""

    def _event(self, kind: EventKind, **data: Any) -> NewEvent:
        return NewEvent(
            kind,
            self.sweep_id,
            self.run_id,
            self.service,
            self.subject,
            {k: v for k, v in data.items() if v is not None},
        )

    def _commit(
        self, build: Callable[[Transaction], None], *, defer: bool = False, items: int = 0
    ) -> None:
        """Submit `build` together with whatever was deferred before it.

        START and a pass's exhausted page are deferred to the next commit (the first page, or
        the cursor decision and END): fewer fsyncs, and no state is ever visible that a crash
        could not also leave behind. A page's commit overlaps the fetch of the next page: the
        attempt waits for it only before it submits again, so at most one commit of an attempt
        is in flight and they land in order. The last commit (END) is waited for.
        """
        self._deferred.append((build, items))
        if defer:
            return
        self._await_commit()
        builds, self._deferred = self._deferred, []

        def together(tx: Transaction) -> None:
            for one, _ in builds:
                one(tx)

        self._inflight = (self.writer.submit(together), builds)

    def _await_commit(self) -> None:
        """Wait for the commit in flight; if it failed, forget what it carried and raise.

        The pages it carried are not in the ledger, so they leave the attempt's count; a START
        it carried is submitted again with whatever ends the attempt, so no END is without one.
        """
        if self._inflight is None:
            return
        pending, builds = self._inflight
        self._inflight = None
        try:
            pending.wait()
        except BaseException:
            self.count -= sum(items for _, items in builds + self._deferred)
            lost_start = [b for b in builds + self._deferred if b[0] is self._start_build]
            self._deferred = lost_start
            raise

    def _append(self, *events: NewEvent, defer: bool = False) -> Callable[[Transaction], None]:
        def build(tx: Transaction) -> None:
            for event in events:
                tx.append(event)

        self._commit(build, defer=defer)
        return build

    def _end(self, *events: NewEvent) -> int | None:
        """Append what ends the attempt; return once it, and all before it, is durable.

        An operator's `reset-cursor` of this pair that landed after the attempt read its cursors
        (from another process, while the attempt ran from the cursor it forgot) must not be
        undone: the cursor this attempt earned is not written (CURSOR_SKIP reason=reset, END
        partial) and the reset is recorded again after the END, which leaves the pair due for
        the full resync the operator asked for. Returns the seq of that reset, if any.
        """
        self._await_commit()
        found: list[int] = []

        def build(tx: Transaction) -> None:
            reset = _operator_reset_after(tx.conn, self.service, self.subject, self._seen)
            if reset is not None:
                found.append(reset)
            for event in events if reset is None else self._undo_for_reset(events, reset):
                tx.append(event)

        self._commit(build)
        self._await_commit()
        return found[-1] if found else None

    def _undo_for_reset(self, events: Sequence[NewEvent], reset: int) -> list[NewEvent]:
        kept = [e for e in events if e.kind is not EventKind.CURSOR_WRITE]
        if len(kept) < len(events):  # the attempt earned a cursor the reset forgot
            kept = [
                self._event(EventKind.CURSOR_SKIP, reason="reset"),
                self._event(
                    EventKind.END,
                    ok=True,
                    count=self.count,
                    partial=True,
                    detail=f"reset: the cursor was reset at seq {reset} during the attempt",
                ),
            ]
        again = self._event(
            EventKind.CURSOR_RESET,
            reason=f"the reset at seq {reset} came during attempt {self.attempt_no}",
            operator=True,
        )
        return [*kept, again]

    def run(self) -> AttemptResult:
        snap, self._seen = self.writer.read(
            lambda s: (_snapshot(s, self.service, self.subject), s.head)
        )
        self._snap = snap
        self.outstanding = list(snap.outstanding)
        self.attempt_no = snap.attempts + 1
        tally = self._tally = RetryTally()
        units: list[str] | None = None
        try:
            units = call_with_retries(
                lambda: self.source.units(self.service, self.subject),
                self.limits.policy,
                tally,
                stop=self.stop,
                rng=self.rng,
            )
        except (CollectorError, Stopped) as error:
            self._start(snap, None)
            return self._fail(snap, error)
        except Exception as error:
            self._start(snap, None)
            return self._fail(snap, Internal(f"{type(error).__name__}: {error}"))
        self._pending.absorb(tally)
        self._tally = None
        self._start(snap, units)
        try:
            final = self._walk_all(snap, units)
            self._await_commit()
        except _Stop as stop:
            return self._skip(stop.reason, stop.detail, cost=self._unrecorded())
        except (CollectorError, Stopped) as error:
            return self._fail(snap, error)
        except Exception as error:
            return self._fail(snap, Internal(f"{type(error).__name__}: {error}"))
        return self._finish(snap, final)

    def _start(self, snap: _Snapshot, units: list[str] | None) -> None:
        primary = CURSOR_KEYS.get(self.service, "")
        checkpoint = snap.checkpoint or {}
        self._start_build = self._append(
            self._event(
                EventKind.START,
                attempt=snap.attempts + 1,
                cursor_before=snap.cursors.get(None, {}).get(primary),
                resume_token=checkpoint.get("token"),
                units=units,
            ),
            defer=True,
        )

    def _walk_all(self, snap: _Snapshot, units: list[str] | None) -> dict[str, str]:
        """Walk the pair (or each unfinished unit); returns the pair's final cursor values."""
        if units is None:
            return self._walk(snap, None)
        key = CURSOR_KEYS[self.service]
        values = [snap.cursors.get(None, {}).get(key)]
        for unit in units:
            if unit in snap.units_done:
                values.append(snap.cursors.get(unit, {}).get(key))
            else:
                values.append(self._walk(snap, unit).get(key))
        if not units:
            self._empty_page()
        present = [v for v in values if v]
        order = ORDERED_KEYS.get(key)
        best = max(present, key=order) if present and order else (present[0] if present else "")
        return {key: best}

    def _empty_page(self) -> None:
        self.pages += 1
        self._append(
            self._event(EventKind.PAGE, page=1, count=0, exhausted=True, **self._take_pending())
        )

    def _take_pending(self, tally: RetryTally | None = None) -> dict[str, int]:
        """The cost counters of a PAGE: its own call's failures plus the pending ones."""
        pending, self._pending = self._pending, RetryTally()
        if tally is not None:
            pending.absorb(tally)
        counts = {
            "requests": pending.requests,
            "rate_limited": pending.rate_limited,
            "quota_units": pending.quota_units,
            "retries": pending.retries,
        }
        return {k: v for k, v in counts.items() if v}

    def _walk(self, snap: _Snapshot, unit: str | None) -> dict[str, str]:
        """Page one stream (the pair, or one unit) to exhaustion; returns its cursor values."""
        cursor = dict(snap.cursors.get(unit, {}))
        checkpoint = snap.checkpoint if (snap.checkpoint or {}).get("unit") == unit else None
        token = checkpoint.get("token") if checkpoint else None
        carry: Mapping[str, str] = (checkpoint or {}).get("carry") or {}
        page_no = int((checkpoint or {}).get("page") or 0)
        self._full_pass(cursor, checkpoint)
        seen_tokens: set[str] = set()
        previous_ids: frozenset[str] = frozenset()
        retry: list[str] = list(self.outstanding) if checkpoint is not None else []
        while True:
            self._check_limits()
            request = FetchRequest(
                self.service,
                self.subject,
                unit,
                cursor,
                token,
                carry,
                retry_ids=retry,
                since=self.limits.since,
                attempt=self.attempt_no,
            )
            try:
                page, tally = self._fetch(request)
            except InvalidPageToken:
                if token is None:
                    raise
                token, carry, page_no, retry = None, {}, 0, []
                seen_tokens, previous_ids = set(), frozenset()
                self._full_pass(cursor, None)
                continue
            except CursorExpired as expired:
                if not cursor:
                    raise
                self._append(
                    self._event(
                        EventKind.CURSOR_RESET,
                        unit=unit,
                        reason="expired",
                        detail=str(expired),
                        previous=cursor,
                    )
                )
                cursor, token, carry, page_no, retry = {}, None, {}, 0, []
                seen_tokens, previous_ids = set(), frozenset()
                snap.cursors.pop(unit, None)
                self._full_pass(cursor, None)
                continue
            if retry:
                # a page of the retried items only: pagination stays where it was
                self._persist(page, page_no, unit, tally, cursor, retried=retry)
                retry = []
                if self.outstanding:
                    self._give_up_on_items()
                if page.exhausted:
                    return dict(page.cursor)
                carry = page.carry if token is not None else {}
                continue
            ids = frozenset(item.id for item in page.items)
            _check_progress(page, page_no, token, seen_tokens, ids, previous_ids, bool(cursor))
            seen_tokens.add(page.next_page_token or "")
            previous_ids = ids
            page_no += 1
            self._persist(page, page_no, unit, tally, cursor)
            if page.exhausted:
                if self.outstanding:
                    self._give_up_on_items()
                return dict(page.cursor)
            token, carry = page.next_page_token, page.carry

    def _full_pass(self, cursor: Mapping[str, str], checkpoint: Mapping[str, Any] | None) -> None:
        """The pass starting here (or resumed from `checkpoint`): whether its end reconciles."""
        if cursor or self.limits.since is not None:
            self._pass = _FullPass(reconcile=False)
        elif checkpoint is None:
            self._pass = _FullPass(reconcile=True)
        else:
            found = checkpoint.get("pass_from")
            known = isinstance(found, int)
            self._pass = _FullPass(reconcile=known, listed_after=found if known else None)

    def _fetch(self, request: FetchRequest) -> tuple[Page, RetryTally]:
        """One page, retried; a restart (expired token or cursor) keeps what it cost for the
        next PAGE to count."""
        tally = self._tally = RetryTally()
        try:
            page = call_with_retries(
                lambda: self.source.fetch(request),
                self.limits.policy,
                tally,
                stop=self.stop,
                rng=self.rng,
            )
        except (InvalidPageToken, CursorExpired):
            self._pending.absorb(tally)
            self._tally = None
            raise
        return page, tally

    def _give_up_on_items(self) -> None:
        """Items are outstanding at the end of a pass: the cursor must wait for them."""
        ids = ", ".join(self.outstanding[:10])
        more = f" and {len(self.outstanding) - 10} more" if len(self.outstanding) > 10 else ""
        if self.attempt_no >= self.limits.max_attempts:
            raise ItemFailed(
                f"{len(self.outstanding)} items failed in {self.attempt_no} attempts: {ids}{more}"
            )
        raise _Stop("partial", f"{len(self.outstanding)} items outstanding: {ids}{more}")

    def _check_limits(self) -> None:
        if self.limits.spent():
            raise _Stop("budget")
        if self.stop.is_set():
            raise _Stop("interrupted")
        if self.limits.max_pages is not None and self.pages >= self.limits.max_pages:
            raise _Stop("partial")

    def _persist(
        self,
        page: Page,
        page_no: int,
        unit: str | None,
        tally: RetryTally,
        cursor: Mapping[str, str],
        *,
        retried: list[str] | None = None,
    ) -> None:
        """The page's items and its PAGE event in one transaction; with a unit's cursor too if
        this page exhausted the unit and no item of it is outstanding."""
        self._tally = None  # this call's cost goes into its PAGE
        cost = self._take_pending(tally)
        self.pages += 1
        self.count += len(page.items)
        if retried:
            self.outstanding = [i for i in self.outstanding if i not in retried]
        self.outstanding += [i for i in page.failed_ids if i not in self.outstanding]
        write_unit_cursor = unit is not None and page.exhausted and not self.outstanding
        full = self._pass  # this pass's: the next one may begin before this page is built
        completes = page.exhausted and not self.outstanding

        def build(tx: Transaction) -> None:
            seq = tx.next_seq
            stats = write_items(tx.conn, self.service, self.subject, page.items, seq=seq)
            pass_from = vanished = None
            if full.reconcile:
                if full.listed_after is None:  # the pass's first page (builds run in order)
                    full.listed_after = seq - 1
                pass_from = full.listed_after
                if completes:
                    vanished = forget_unlisted(
                        tx.conn, self.service, self.subject, unit, pass_from, seq
                    )
            tx.append(
                self._event(
                    EventKind.PAGE,
                    unit=unit,
                    page=page_no,
                    count=len(page.items),
                    next_page_token=page.next_page_token,
                    exhausted=page.exhausted,
                    carry=dict(page.carry) or None,
                    failed_ids=list(page.failed_ids) or None,
                    retried_ids=retried or None,
                    inserted=stats.inserted,
                    updated=stats.updated,
                    unchanged=stats.unchanged,
                    deleted=stats.deleted + (vanished or 0),
                    created=stats.created,
                    vanished=vanished or None,
                    pass_from=pass_from,
                    requests=page.requests + cost.get("requests", 0),
                    rate_limited=page.rate_limited + cost.get("rate_limited", 0),
                    quota_units=page.quota_units + cost.get("quota_units", 0),
                    retries=cost.get("retries"),
                )
            )
            if write_unit_cursor:
                for key, value in page.cursor.items():
                    tx.append(
                        self._event(
                            EventKind.CURSOR_WRITE,
                            unit=unit,
                            key=key,
                            value=value,
                            previous=cursor.get(key),
                        )
                    )

        self._commit(build, defer=page.exhausted, items=len(page.items))

    def _finish(self, snap: _Snapshot, final: Mapping[str, str]) -> AttemptResult:
        previous = snap.cursors.get(None, {})
        for key, value in final.items():
            if regresses(key, previous.get(key), value):
                return self._fail(
                    snap,
                    Internal(f"cursor regression refused: {key} {previous.get(key)} -> {value}"),
                    reason="regression",
                )
        events = [
            self._event(EventKind.CURSOR_WRITE, key=key, value=value, previous=previous.get(key))
            for key, value in final.items()
        ]
        events.append(
            self._event(EventKind.END, ok=True, count=self.count, partial=False, exhausted=True)
        )
        try:
            reset = self._end(*events)
        except Exception as error:
            return self._fail(snap, _refused(error))
        if reset is not None:
            return AttemptResult(self.service, self.subject, "PARTIAL", self.count)
        return AttemptResult(self.service, self.subject, "COMPLETE", self.count)

    def _skip(
        self, reason: str, detail: str = "", cost: dict[str, int] | None = None
    ) -> AttemptResult:
        refused = self._settle()
        if refused is not None:
            return self._fail(self._snap, refused)
        self._end(
            self._event(EventKind.CURSOR_SKIP, reason=reason),
            self._event(
                EventKind.END,
                ok=True,
                count=self.count,
                partial=True,
                detail=detail or f"{reason}: cursor not written",
                **(cost or {}),
            ),
        )
        return AttemptResult(self.service, self.subject, "PARTIAL", self.count)

    def _unrecorded(self) -> dict[str, int]:
        """Requests, retries, rate-limit refusals and quota units of the call that ended the
        attempt (and of failures no PAGE counted): END carries them so the run's counters
        include what failing cost."""
        tally, self._tally = self._tally, None
        return self._take_pending(tally)

    def _settle(self) -> Exception | None:
        """Wait for the commit in flight; the reason it failed, as the attempt's error."""
        try:
            self._await_commit()
        except Exception as error:
            return _refused(error)
        return None

    def _fail(self, snap: _Snapshot, error: Exception, *, reason: str = "error") -> AttemptResult:
        error = self._settle() or error
        if isinstance(error, Stopped):  # a wait cut short: by the budget, or by a stop
            reason = "budget" if self.limits.spent() else "interrupted"
            return self._skip(reason, cost=self._unrecorded())
        err = error.error_class if isinstance(error, CollectorError) else "Internal"
        detail = str(error)
        events = [
            self._event(EventKind.CURSOR_SKIP, reason=reason, err=err),
            self._event(
                EventKind.END,
                ok=False,
                count=self.count,
                partial=False,
                err=err,
                detail=detail,
                permanent=err in PERMANENT_CLASSES or None,
                **self._unrecorded(),
            ),
        ]
        if err in PERMANENT_CLASSES and snap.permanent_failures + 1 >= self.limits.max_attempts:
            events.append(
                NewEvent(
                    EventKind.BLOCK,
                    self.sweep_id,
                    self.run_id,
                    self.service,
                    self.subject,
                    {
                        "subject": self.subject,
                        "service": self.service,
                        "reason": f"{err} in {snap.permanent_failures + 1} attempts: {detail}",
                    },
                )
            )
        self._end(*events)
        return AttemptResult(self.service, self.subject, f"ERR:{err}", self.count, err)


def _refused(error: Exception) -> Internal:
    """A commit that failed (a page the sink refuses, a disk error) as the attempt's error."""
    return Internal(f"the ledger refused an append: {type(error).__name__}: {error}")


def _check_progress(
    page: Page,
    page_no: int,
    token: str | None,
    seen_tokens: set[str],
    ids: frozenset[str],
    previous_ids: frozenset[str],
    incremental: bool,
) -> None:
    """Raise NoProgress where a source would make the runner loop forever: no next token on a
    page that is not the last, a page token seen before, or (full syncs) the same items twice
    (an incremental feed may legitimately touch the same items on consecutive pages)."""
    if page.exhausted:
        return
    token_repeats = (
        page.next_page_token is None
        or page.next_page_token in seen_tokens
        or (page.next_page_token == token)
    )
    if token_repeats or (ids and ids == previous_ids and not incremental):
        raise NoProgress(f"page {page_no + 1} repeats an earlier page token or the same items")


__all__ = ["AttemptLimits", "AttemptResult", "PairAttempt", "unit_key"]


def _operator_reset_after(
    conn: sqlite3.Connection, service: str, subject: str, seen: int
) -> int | None:
    """The seq of the latest operator's CURSOR_RESET of the pair after seq `seen` (None if
    none): the attempt's own resets (an expired cursor) are not the operator's."""
    row = conn.execute(
        "SELECT max(seq) FROM events WHERE service = ? AND subject = ? AND seq > ? "
        "AND kind = 'CURSOR_RESET' AND json_extract(data, '$.operator')",
        (service, subject, seen),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
