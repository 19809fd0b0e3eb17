"""Write-through of the fold into tables, in the appending transaction; and loading it back.

The tables are derived data: if their version differs from `PROJECTION_VERSION`, they are dropped
and rebuilt from the events. `sweep check` compares them, row for row, with a fresh rebuild.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import orjson

from sweepledger.ledger.events import Event, EventKind

from .fold import State
from .model import SERVICES, CursorRow, Flag, PairRow, RunRow, SweepInfo, subject_key

PROJECTION_VERSION = "9"

DDL = """
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id TEXT PRIMARY KEY, opened_seq INTEGER NOT NULL, opened_ts TEXT NOT NULL,
    source TEXT NOT NULL, services TEXT NOT NULL, roster_size INTEGER NOT NULL,
    options TEXT NOT NULL,
    closed TEXT, closed_seq INTEGER, closed_ts TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sweep_counters (
    sweep_id TEXT NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (sweep_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pair_state (
    service TEXT NOT NULL, subject TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER,
    items INTEGER, last_run_id TEXT, open_run_id TEXT, open_seq INTEGER, attempt_count INTEGER,
    last_page_exhausted INTEGER, exhausted INTEGER, interrupted INTEGER, last_err TEXT,
    last_detail TEXT, skip_reason TEXT, checkpoint TEXT, units_done TEXT, outstanding TEXT,
    permanent_failures INTEGER, updated_seq INTEGER, subject_key TEXT NOT NULL,
    PRIMARY KEY (service, subject)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pair_state_problems ON pair_state (subject_key, subject, service)
    WHERE state != 'COMPLETE';
CREATE TABLE IF NOT EXISTS sync_cursor (
    service TEXT NOT NULL, subject TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (service, subject, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, sweep_id TEXT, status TEXT NOT NULL, reason TEXT, trigger TEXT,
    started_seq INTEGER, started_ts TEXT, ended_seq INTEGER, ended_ts TEXT, last_seq INTEGER,
    last_ts TEXT, pid INTEGER, host TEXT, argv TEXT, options TEXT, counters TEXT,
    by_service TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_seq);
CREATE INDEX IF NOT EXISTS sweeps_by_open ON sweeps (opened_seq);
CREATE TABLE IF NOT EXISTS operator_flags (
    subject TEXT NOT NULL, service TEXT NOT NULL, flag TEXT NOT NULL, reason TEXT,
    seq INTEGER, ts TEXT,
    PRIMARY KEY (subject, service, flag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projection_state (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
"""
"""WITHOUT ROWID: each table is one b-tree keyed by its primary key, so a changed row dirties one
page where a rowid table also rewrites its primary-key index (every page is fsynced per commit).

`pair_state.subject_key` is `model.subject_key` of the subject: problem pairs are
listed in the order the fold sorts them, which SQLite's `lower()` (ASCII only) would not give."""

PAIR_ORDER_SQL = (
    "subject_key, subject, CASE service "
    + " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(SERVICES))
    + f" ELSE {len(SERVICES)} END, service"
)
"""`model.pair_order` as an ORDER BY of `pair_state`: a list read from the tables is in the order
a fold sorts it (the index serves the subjects; the few services of one subject are sorted)."""

TABLES = (
    "sweeps",
    "sweep_counters",
    "pair_state",
    "sync_cursor",
    "runs",
    "operator_flags",
    "projection_state",
)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _unjson(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def pair_row(row: PairRow) -> tuple[Any, ...]:
    return (
        row.service,
        row.subject,
        row.state,
        row.attempts,
        row.items,
        row.last_run_id,
        row.open_run_id,
        row.open_seq,
        row.attempt_count,
        int(row.last_page_exhausted),
        int(row.exhausted),
        int(row.interrupted),
        row.last_err,
        row.last_detail,
        row.skip_reason,
        None if row.checkpoint is None else _json(row.checkpoint),
        _json(row.units_done),
        _json(row.outstanding),
        row.permanent_failures,
        row.updated_seq,
        subject_key(row.subject),
    )


def run_row(run: RunRow) -> tuple[Any, ...]:
    return (
        run.run_id,
        run.sweep_id,
        run.status,
        run.reason,
        run.trigger,
        run.started_seq,
        run.started_ts,
        run.ended_seq,
        run.ended_ts,
        run.last_seq,
        run.last_ts,
        run.pid,
        run.host,
        _json(run.argv),
        _json(run.options),
        _json(run.counters),
        _json(run.by_service),
    )


def sweep_row(sweep: SweepInfo) -> tuple[Any, ...]:
    """The sweep's row; its roster stays in its SWEEP_OPEN event (read back by `load_sweep`)."""
    return (
        sweep.sweep_id,
        sweep.opened_seq,
        sweep.opened_ts,
        sweep.source,
        _json(sweep.services),
        sweep.roster_size,
        _json(sweep.options),
        sweep.closed,
        sweep.closed_seq,
        sweep.closed_ts,
    )


def flag_rows(state: State) -> list[tuple[Any, ...]]:
    rows = [(s, svc or "", "blocked", *f) for (s, svc), f in state.blocked.items()]
    rows += [(s, "", "paused", *f) for s, f in state.paused.items()]
    return rows


def state_rows(state: State) -> dict[str, set[tuple[Any, ...]]]:
    """Every table's rows as the fold derives them (what `check` compares with the tables)."""
    sweeps = {sweep_row(sweep) for sweep, _ in state.past_sweeps.values()}
    counters = {(sid, k, v) for sid, (_, c) in state.past_sweeps.items() for k, v in c.items()}
    if state.sweep is not None:
        sweeps.add(sweep_row(state.sweep))
        counters |= {(state.sweep.sweep_id, k, v) for k, v in state.counters.items()}
    return {
        "sweeps": sweeps,
        "sweep_counters": counters,
        "pair_state": {pair_row(r) for r in state.pairs.values()},
        "sync_cursor": {(s, e, k, c.value) for (s, e, k), c in state.cursors.items()},
        "runs": {run_row(r) for r in state.runs.values()},
        "operator_flags": set(flag_rows(state)),
    }


def stored_rows(conn: sqlite3.Connection) -> dict[str, set[tuple[Any, ...]]]:
    """The same, read from the tables."""

    def rows(sql: str, params: Sequence[Any] = ()) -> set[tuple[Any, ...]]:
        return {tuple(r) for r in conn.execute(sql, params)}

    return {
        "sweeps": rows("SELECT * FROM sweeps"),
        "sweep_counters": rows("SELECT * FROM sweep_counters"),
        "pair_state": rows("SELECT * FROM pair_state"),
        "sync_cursor": rows("SELECT * FROM sync_cursor"),
        "runs": rows("SELECT * FROM runs"),
        "operator_flags": rows("SELECT * FROM operator_flags"),
    }


def ensure_tables(conn: sqlite3.Connection) -> bool:
    """Create the tables; returns True when they had to be (re)built from nothing."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'projection_version'").fetchone()
    fresh = row is None or row[0] != PROJECTION_VERSION
    if fresh:
        for table in TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in DDL.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    if fresh:
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('projection_version', ?)",
            (PROJECTION_VERSION,),
        )
    return fresh


def _upsert(table: str, columns: Sequence[str], keys: int, fixed: Sequence[str] = ()) -> str:
    """INSERT of a whole row that updates the non-key columns of an existing one in place.

    Unlike INSERT OR REPLACE it does not delete and reinsert the row, so indexes on columns
    that did not change (and the `fixed` columns, never updated) are not rewritten.
    """
    changing = [c for c in columns[keys:] if c not in fixed]
    return (
        f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(columns[:keys])}) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in changing)
    )


PAIR_COLUMNS = (
    "service", "subject", "state", "attempts", "items", "last_run_id", "open_run_id", "open_seq",
    "attempt_count", "last_page_exhausted", "exhausted", "interrupted", "last_err",
    "last_detail", "skip_reason", "checkpoint", "units_done", "outstanding",
    "permanent_failures", "updated_seq", "subject_key",
)  # fmt: skip
RUN_COLUMNS = (
    "run_id", "sweep_id", "status", "reason", "trigger", "started_seq", "started_ts",
    "ended_seq", "ended_ts", "last_seq", "last_ts", "pid", "host", "argv", "options", "counters",
    "by_service",
)  # fmt: skip
SWEEP_COLUMNS = (
    "sweep_id", "opened_seq", "opened_ts", "source", "services", "roster_size", "options",
    "closed", "closed_seq", "closed_ts",
)  # fmt: skip
UPSERT_PAIR = _upsert("pair_state", PAIR_COLUMNS, 2, fixed=("subject_key",))
UPSERT_RUN = _upsert("runs", RUN_COLUMNS, 1, fixed=("started_seq",))
UPSERT_SWEEP = _upsert("sweeps", SWEEP_COLUMNS, 1, fixed=("opened_seq",))
UPSERT_COUNTER = _upsert("sweep_counters", ("sweep_id", "key", "value"), 2)
UPSERT_CURSOR = _upsert("sync_cursor", ("service", "subject", "key", "value"), 3)
UPSERT_META = _upsert("projection_state", ("key", "value"), 1)


def write_dirty(conn: sqlite3.Connection, state: State) -> None:
    """Write the rows the last events changed, then forget them."""
    state.settle_counters()
    if state.pairs_reset:
        conn.execute("DELETE FROM pair_state")
    if state.dirty_pairs:
        conn.executemany(UPSERT_PAIR, [pair_row(state.pairs[k]) for k in state.dirty_pairs])
    sweep = state.sweep
    if state.dirty_sweep and sweep is not None:
        conn.execute(UPSERT_SWEEP, sweep_row(sweep))
    if state.dirty_counters and sweep is not None:
        present = [k for k in state.dirty_counters if k in state.counters]
        gone = [k for k in state.dirty_counters if k not in state.counters]
        conn.executemany(UPSERT_COUNTER, [(sweep.sweep_id, k, state.counters[k]) for k in present])
        conn.executemany(
            "DELETE FROM sweep_counters WHERE sweep_id = ? AND key = ?",
            [(sweep.sweep_id, k) for k in gone],
        )
    for key in state.dirty_cursors:
        cursor = state.cursors.get(key)
        if cursor is None:
            conn.execute("DELETE FROM sync_cursor WHERE service=? AND subject=? AND key=?", key)
        else:
            conn.execute(UPSERT_CURSOR, (*key, cursor.value))
    if state.dirty_runs:
        conn.executemany(UPSERT_RUN, [run_row(state.runs[r]) for r in state.dirty_runs])
    if state.dirty_flags:
        conn.execute("DELETE FROM operator_flags")
        conn.executemany("INSERT INTO operator_flags VALUES (?, ?, ?, ?, ?, ?)", flag_rows(state))
    rows = [("head", str(state.head)), ("head_ts", state.head_ts), ("head_hash", state.head_hash)]
    if state.dirty_heartbeat:
        rows.append(("heartbeat", _json(state.heartbeat)))
    conn.executemany(UPSERT_META, rows)
    state.clear_dirty()


def write_past_sweeps(conn: sqlite3.Connection, state: State) -> None:
    """The rows of every sweep before the latest (a rebuild writes them once)."""
    for sweep, counters in state.past_sweeps.values():
        conn.execute(UPSERT_SWEEP, sweep_row(sweep))
        conn.executemany(UPSERT_COUNTER, [(sweep.sweep_id, k, v) for k, v in counters.items()])


def load_state(conn: sqlite3.Connection) -> State:
    """The writer's in-memory state, read back from the tables (not from the events).

    Ended runs stay in the tables only: events never touch a run after its RUN_END.
    """
    state = State()
    meta = dict(conn.execute("SELECT key, value FROM projection_state").fetchall())
    state.head = int(meta.get("head", 0))
    state.head_ts = meta.get("head_ts", "")
    state.head_hash = meta.get("head_hash", "")
    state.heartbeat = _unjson(meta.get("heartbeat"))
    state.sweep, state.counters = load_sweep(conn)
    if state.sweep is not None:
        state._roster_set = set(state.sweep.roster)
        if state.sweep.closed is not None:  # the stored figures are those it closed with
            state.frozen = dict(state.counters)
    for r in conn.execute("SELECT * FROM pair_state"):
        state.pairs[(r[0], r[1])] = pair_from_row(r)
    for s, e, k, v in conn.execute("SELECT * FROM sync_cursor"):
        state.set_cursor((s, e, k), CursorRow(v, 0))
    for r in conn.execute("SELECT * FROM runs WHERE status = 'running'"):
        state.runs[r[0]] = run_from_row(r)
    state.blocked, state.paused = load_flags(conn)
    return state


Flags = tuple[dict[tuple[str, str | None], Flag], dict[str, Flag]]
"""Blocks (by subject and service, None for every service) and pauses (by subject), each with
its reason and event: `State.blocked` and `State.paused`."""


def load_flags(conn: sqlite3.Connection) -> Flags:
    """The operator flags as the fold keeps them, read back from `operator_flags`."""
    blocked: dict[tuple[str, str | None], Flag] = {}
    paused: dict[str, Flag] = {}
    rows = conn.execute("SELECT subject, service, flag, reason, seq, ts FROM operator_flags")
    for subject, service, kind, reason, seq, ts in rows:
        flag = Flag(reason, seq, ts)
        if kind == "blocked":
            blocked[(subject, service or None)] = flag
        else:
            paused[subject] = flag
    return blocked, paused


def _roster(conn: sqlite3.Connection, opened_seq: int) -> list[str]:
    row = conn.execute("SELECT data FROM events WHERE seq = ?", (opened_seq,)).fetchone()
    return list(orjson.loads(row[0])["roster"]) if row is not None else []


def load_sweep(
    conn: sqlite3.Connection, *, with_roster: bool = True
) -> tuple[SweepInfo | None, dict[str, int]]:
    """The latest sweep and its counters; readers that only show its size skip decoding the
    roster (megabytes for a large tenant)."""
    row = conn.execute("SELECT * FROM sweeps ORDER BY opened_seq DESC LIMIT 1").fetchone()
    if row is None:
        return None, {}
    sweep = SweepInfo(
        sweep_id=row[0],
        opened_seq=row[1],
        opened_ts=row[2],
        source=row[3],
        services=_unjson(row[4]),
        roster=_roster(conn, row[1]) if with_roster else [],
        roster_size=row[5],
        options=_unjson(row[6]),
        closed=row[7],
        closed_seq=row[8],
        closed_ts=row[9],
    )
    counters = dict(
        conn.execute(
            "SELECT key, value FROM sweep_counters WHERE sweep_id = ?", (sweep.sweep_id,)
        ).fetchall()
    )
    return sweep, counters


def pair_from_row(r: Sequence[Any]) -> PairRow:
    return PairRow(
        service=r[0],
        subject=r[1],
        state=r[2],
        attempts=r[3],
        items=r[4],
        last_run_id=r[5],
        open_run_id=r[6],
        open_seq=r[7],
        attempt_count=r[8],
        last_page_exhausted=bool(r[9]),
        exhausted=bool(r[10]),
        interrupted=bool(r[11]),
        last_err=r[12],
        last_detail=r[13],
        skip_reason=r[14],
        checkpoint=_unjson(r[15]),
        units_done=_unjson(r[16]),
        outstanding=_unjson(r[17]),
        permanent_failures=r[18],
        updated_seq=r[19],
    )


def run_from_row(r: Sequence[Any]) -> RunRow:
    return RunRow(
        run_id=r[0],
        sweep_id=r[1],
        status=r[2],
        reason=r[3],
        trigger=r[4],
        started_seq=r[5],
        started_ts=r[6],
        ended_seq=r[7],
        ended_ts=r[8],
        last_seq=r[9],
        last_ts=r[10],
        pid=r[11],
        host=r[12],
        argv=_unjson(r[13]),
        options=_unjson(r[14]),
        counters=_unjson(r[15]),
        by_service=_unjson(r[16]),
    )


class Projector:
    """Keeps the projection tables in step with the events, inside each append.

    Attach it to a store once; every append through the store then folds its events and writes the
    changed rows before COMMIT. If another process appended in between (the head moved), the state
    is read back from the tables first.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.state = load_state(conn)
        self.lock = threading.Lock()
        """Held while the state changes; readers in other threads (`Writer.read`) take it too."""

    def on_append(self, conn: sqlite3.Connection, events: Sequence[Event]) -> None:
        with self.lock:
            self._apply(conn, events)

    def _apply(self, conn: sqlite3.Connection, events: Sequence[Event]) -> None:
        if events[0].seq != self.state.head + 1:
            self.state = load_state(conn)
        for event in events:
            if event.kind is EventKind.SWEEP_OPEN:
                self.state.settle_counters()
                if self.state.dirty_sweep or self.state.dirty_counters:
                    # The closing sweep's rows must be written before the new sweep replaces it.
                    write_dirty(conn, self.state)
            self.state.apply(event)
        write_dirty(conn, self.state)
