"""The bulk fold: replay, rebuild and check fold a stored ledger here, from seq 1.

It derives exactly what `State.apply` derives event by event (the tests compare them after
every event) but skips what only the write-through projector needs: no `Event` record or
`EventKind` lookup per row, no dirty sets, no counters kept current (recounted once when read),
a PAGE's checkpoint built only for a pair's last page (`State.settle`), and the cyclic garbage
collector paused (the fold only adds live objects, so its scans would find nothing to free).
Only the pair phases (nearly every event) take this path; every other kind goes through
`State.apply`.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from sweepledger.ledger.codec import decode_data
from sweepledger.ledger.events import Event, EventKind
from sweepledger.ledger.scan import fold_batches, hash_of

from .fold import PairHandler, State
from .model import PairRow

Row = tuple[int, str, "str | None", "str | None", str, "str | None", "str | None", str]
"""What the bulk fold reads of a stored event: seq, ts, sweep_id, run_id, kind, service,
subject and the data text (`ledger.scan.FOLD_COLUMNS`); no hash, which only the head needs."""

_ROW_HANDLERS: dict[str, PairHandler] = {str(k): h for k, h in State._PAIR_HANDLERS.items()}
"""The pair phases' handlers keyed by the kind's stored text (no `EventKind` lookup)."""


def fold_ledger(conn: sqlite3.Connection, to_seq: int | None = None) -> State:
    """Every projection folded from seq 1 of the ledger on `conn` (up to `to_seq`)."""
    state = fold_rows(State(incremental=False), fold_batches(conn, 1, to_seq))
    if state.head:
        state.head_hash = hash_of(conn, state.head)
    return state


def fold_rows(state: State, batches: Iterable[Sequence[Row]]) -> State:
    """Fold stored rows into a bulk `state` (`incremental=False`); settled when it returns.

    The head's hash is not read (the rows carry none): the caller sets `head_hash`.
    """
    handlers = _ROW_HANDLERS
    runs = state.runs
    loads = orjson.loads
    last: Row | None = None
    with gc_paused():
        for batch in batches:
            for row in batch:
                seq, ts, sweep_id, run_id, kind, service, subject, text = row
                handler = handlers.get(kind)
                if handler is None or service is None or subject is None:
                    state._counters_stale = True  # a SWEEP_OPEN recounts the past sweep
                    data = decode_data(text)
                    event = Event(
                        seq, ts, sweep_id, run_id, EventKind(kind), service, subject, data, ""
                    )
                    state.apply(event)
                    continue
                data = loads(text)
                if type(data) is not dict:
                    raise ValueError("event data is not a JSON object")
                key = (service, subject)
                pair = state.pairs.get(key)
                if pair is None:
                    pair = state.pairs[key] = PairRow(service, subject)
                run = runs.get(run_id) if run_id is not None else None
                if run is not None:
                    run.last_seq, run.last_ts = seq, ts
                    if not run_id:  # as `State.apply`: an empty run id passes no run
                        run = None
                handler(state, pair, seq, run_id, data, run)
                pair.updated_seq = seq
            last = batch[-1] if batch else last
    if last is not None:
        state.head, state.head_ts, state.head_hash = last[0], last[1], ""
    state._counters_stale = True
    state.settle()
    return state


def step(
    state: State,
    seq: int,
    ts: str,
    sweep_id: str | None,
    run_id: str | None,
    kind: EventKind,
    service: str | None,
    subject: str | None,
    data: dict[str, Any],
) -> None:
    """One decoded event into a bulk `state`: `fold_rows`' body, for check's own loop.

    The head's hash is left to the caller; `state.settle()` must run before checkpoints are
    read.
    """
    paired = service is not None and subject is not None
    handler = State._PAIR_HANDLERS.get(kind) if paired else None
    if handler is None:
        state._counters_stale = True
        state.apply(Event(seq, ts, sweep_id, run_id, kind, service, subject, data, ""))
        return
    state.head, state.head_ts = seq, ts
    key = (str(service), str(subject))
    pair = state.pairs.get(key)
    if pair is None:
        pair = state.pairs[key] = PairRow(key[0], key[1])
    run = state.runs.get(run_id) if run_id is not None else None
    if run is not None:
        run.last_seq, run.last_ts = seq, ts
        if not run_id:
            run = None
    handler(state, pair, seq, run_id, data, run)
    pair.updated_seq = seq
    state._counters_stale = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for a bulk fold (restored after, even on an error)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
