"""Append throughput: what a durable page costs us, against raw SQLite and `eventsourcing`.

A sweep's speed is bounded by how fast pages become durable: each page's items and its PAGE event
commit in one fsynced transaction (DESIGN 3), with the hash chain and the projection tables
written in the same transaction. This module appends the same events three ways, each on a fresh
file with the same durability (WAL, synchronous=FULL, one transaction per group):

- sweepledger: `projections.attach.open_for_writing` + `collectors.writer.Writer.commit`, the items
  of each PAGE through `collectors.sink.write_items`, exactly as `collectors.attempt` does;
- raw sqlite3: a loop inserting the same columns with the same canonical JSON (no chain, no
  items, no projections, no secondary index): what SQLite itself can do;
- eventsourcing: the library's `SQLiteApplicationRecorder.insert_events`, one call per group.

Events come in attempts of 5 (START, PAGE + items, PAGE + items, CURSOR_WRITE, END), grouped
three ways: one attempt per transaction (5 events), the runner's own grouping (START | PAGE+items
| PAGE+items | CURSOR_WRITE+END: one transaction per page), and 1 000 events per transaction.
A diagnostic row appends through `SqliteStore` alone (chain, no items, no projections) so the
cost of each layer can be read off; another repeats the sweepledger case with a 100 000-subject
roster (the cost of an append must not grow with the roster: it once rewrote the roster).

Two more tables say why: the pages each system writes to the WAL per transaction (what every
fsync carries) and, for sweepledger, which table or index wrote them (`harness.WalProbe`).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from harness import (
    Table,
    Timer,
    WalProbe,
    count,
    human,
    plain_timer,
    profile_top,
    rate,
    ratio,
    scratch,
    verdict,
)
from workload import (
    ITEMS_PER_PAGE,
    SWEEP_ID,
    Group,
    attempts,
    batched,
    like_the_runner,
    opening_events,
    per_attempt,
    roster_of,
)

from sweepledger.collectors.sink import ensure_item_tables, write_items
from sweepledger.collectors.writer import Writer
from sweepledger.ledger.codec import utc_now
from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.store import SqliteStore, Transaction
from sweepledger.projections.attach import open_for_writing

TARGET_VS_RAW = 0.7
TARGET_VS_EVENTSOURCING = 1.5
PLACEHOLDER_HASH = "0" * 64
"""The raw baseline stores a hash-sized constant so its rows are as long as ours."""


def append_sweepledger(
    path: Path, groups: list[Group], roster: list[str], timer: Timer = plain_timer
) -> float:
    """Our real append path: Writer.commit, sink.write_items, projections written through."""
    store, projector = open_for_writing(path, create=True)
    try:
        writer = Writer(store, projector)

        def begin(tx: Transaction) -> None:
            ensure_item_tables(tx.conn)
            for event in opening_events(roster):
                tx.append(event)

        writer.commit(begin)

        def commit_all() -> None:
            for group in groups:

                def build(tx: Transaction, group: Group = group) -> None:
                    for step in group:
                        event = step.event
                        if step.items:
                            write_items(tx.conn, str(event.service), str(event.subject),
                                        step.items, seq=tx.next_seq)  # fmt: skip
                        tx.append(event)

                writer.commit(build)

        return timer(path, commit_all)
    finally:
        store.close()


def append_ledger_only(
    path: Path, groups: list[Group], roster: list[str], timer: Timer = plain_timer
) -> float:
    """The store alone: seq, timestamp, canonical JSON and hash chain; no items, no projections."""
    store = SqliteStore.open(path, create=True)
    try:
        store.append(opening_events(roster))

        def commit_all() -> None:
            for group in groups:
                store.append([step.event for step in group])

        return timer(path, commit_all)
    finally:
        store.close()


def append_raw_sqlite(
    path: Path, groups: list[Group], roster: list[str], timer: Timer = plain_timer
) -> float:
    """Plain sqlite3: same columns, same JSON, same durability; nothing else."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, sweep_id TEXT, "
            "run_id TEXT, kind TEXT NOT NULL, service TEXT, subject TEXT, data TEXT NOT NULL, "
            "hash TEXT NOT NULL)"
        )
        option = orjson.OPT_SORT_KEYS
        sql = (
            "INSERT INTO events (ts, sweep_id, run_id, kind, service, subject, data, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        opening = [(e, ()) for e in opening_events(roster)]

        def commit(events: Sequence[NewEvent]) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, [
                (utc_now(), e.sweep_id, e.run_id, str(e.kind), e.service, e.subject,
                 orjson.dumps(e.data, option=option).decode(), PLACEHOLDER_HASH)
                for e in events
            ])  # fmt: skip
            conn.execute("COMMIT")

        commit([e for e, _ in opening])

        def commit_all() -> None:
            for group in groups:
                commit([step.event for step in group])

        return timer(path, commit_all)
    finally:
        conn.close()


def append_eventsourcing(
    path: Path, groups: list[Group], roster: list[str], timer: Timer = plain_timer
) -> float:
    """`eventsourcing`'s SQLite application recorder: one `insert_events` per group.

    Each pair is an aggregate (originator id), its events numbered by version; the state is the
    same canonical JSON. The recorder is the library's storage layer, its fastest path: the
    Application above it adds aggregates and a transcoder.
    """
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    datastore = SQLiteDatastore(str(path))
    try:
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA synchronous")
            synchronous = cursor.fetchone()[0]
        if synchronous != 2:
            raise RuntimeError(f"eventsourcing's connection has synchronous={synchronous}")
        option = orjson.OPT_SORT_KEYS
        ids: dict[tuple[str | None, str | None], uuid.UUID] = {}
        versions: dict[uuid.UUID, int] = {}
        sweep_id = uuid.uuid5(uuid.NAMESPACE_URL, SWEEP_ID)

        def stored(event: NewEvent) -> StoredEvent:
            key = (event.service, event.subject)
            oid = ids.get(key)
            if oid is None:
                oid = ids[key] = (
                    sweep_id if event.service is None
                    else uuid.uuid5(uuid.NAMESPACE_URL, f"{event.service}/{event.subject}")
                )  # fmt: skip
            version = versions[oid] = versions.get(oid, 0) + 1
            state = orjson.dumps(event.data, option=option)
            return StoredEvent(oid, version, str(event.kind), state)

        recorder.insert_events([stored(e) for e in opening_events(roster)])

        def commit_all() -> None:
            for group in groups:
                recorder.insert_events([stored(step.event) for step in group])

        return timer(path, commit_all)
    finally:
        datastore.close()


Appender = Callable[[Path, list[Group], list[str], Timer], float]

SYSTEMS: dict[str, Appender] = {
    "sweepledger": append_sweepledger,
    "ledger only (diag.)": append_ledger_only,
    "raw sqlite3": append_raw_sqlite,
    "eventsourcing": append_eventsourcing,
}


@dataclass(frozen=True, slots=True)
class Measured:
    events: int
    pages: int
    groups: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return rate(self.events, self.seconds)


def measure(system: str, groups: list[Group], roster: list[str], rounds: int) -> Measured:
    """The median of `rounds` appends of `groups`, each on a fresh file."""
    events = sum(len(g) for g in groups)
    pages = sum(1 for g in groups for s in g if s.event.kind is EventKind.PAGE)
    times = []
    for _ in range(rounds):
        path = scratch(f"append-{system.split(maxsplit=1)[0]}.db")
        times.append(SYSTEMS[system](path, groups, roster, plain_timer))
    times.sort()
    return Measured(events, pages, len(groups), times[len(times) // 2])


def append_pages(path: Path, pages: int) -> float:
    """Seconds to append `pages` pages the runner's way (one PAGE + items per transaction).

    `bench/statefile.py` compares a JSON state file with this.
    """
    work = attempts((pages + 1) // 2, roster_of(1_000))
    groups = [[page] for steps in work for page in steps[1:3]][:pages]
    return append_sweepledger(path, groups, roster_of(1_000))


PROBED_GROUPS = 40
"""Transactions whose WAL pages are counted: few enough that no checkpoint resets the WAL."""


def wal_tables(groups: list[Group], roster: list[str]) -> tuple[Table, Table]:
    """Pages (and KB) each system writes per transaction, and ours by b-tree."""
    probed = groups[:PROBED_GROUPS]
    totals = Table(
        f"append: WAL pages written per transaction (5 events/tx, {len(probed)} transactions)",
        ["system", "pages/tx", "KB/tx", "vs raw sqlite3"],
    )
    probes = {}
    for system, appender in SYSTEMS.items():
        probe = WalProbe()
        path = scratch(f"append-wal-{system.split(maxsplit=1)[0]}.db")
        appender(path, probed, roster, probe)
        probes[system] = sum(probe.pages.values()) / len(probed), probe
    raw = probes["raw sqlite3"][0]
    for system, (pages, _) in probes.items():
        totals.add(system, f"{pages:.1f}", f"{pages * 4.1:.0f}", f"{pages / raw:.1f}x")
    totals.note(
        "a commit syncs every page it changed (4 KiB + 24 B each); more pages, longer fsync"
    )
    ours = probes["sweepledger"][1]
    detail = Table(
        "append: sweepledger's WAL pages per transaction, by table or index",
        ["b-tree", "pages/tx"],
    )
    for name, frames in ours.pages.most_common():
        detail.add(name, f"{frames / len(probed):.2f}")
    detail.note("sqlite_autoindex_* = the separate b-tree of a rowid table's PRIMARY KEY")
    return totals, detail


def main(quick: bool) -> None:
    """Print events/s and pages/s per grouping and system, with the ratios the issue targets."""
    roster = roster_of(1_000)
    n_attempts = 200 if quick else 1_500
    rounds = 1 if quick else 3
    work = attempts(n_attempts, roster)
    cases: list[tuple[str, list[Group], list[str]]] = [
        ("5 events/tx (1 attempt)", per_attempt(work), list(SYSTEMS)),
        ("runner's grouping (1 tx/page)", like_the_runner(work), list(SYSTEMS)),
        ("1 000 events/tx", batched(attempts(n_attempts * 4, roster)), list(SYSTEMS)),
    ]
    table = Table(
        "append: durable appends (WAL, synchronous=FULL), fresh file per round",
        ["grouping", "system", "tx", "events", "events/s", "pages/s", "tx/s",
         "sweepledger vs this", "target", ""],
    )  # fmt: skip
    for name, groups, systems in cases:
        results = {system: measure(system, groups, roster, rounds) for system in systems}
        ours = results["sweepledger"]
        for system, m in results.items():
            against, target, met = "", "", ""
            if system == "raw sqlite3":
                against = ratio(ours.events_per_s, m.events_per_s)
                target = f">= {TARGET_VS_RAW}x"
                met = verdict(ours.events_per_s >= TARGET_VS_RAW * m.events_per_s)
            elif system == "eventsourcing":
                against = ratio(ours.events_per_s, m.events_per_s)
                target = f">= {TARGET_VS_EVENTSOURCING}x"
                met = verdict(ours.events_per_s >= TARGET_VS_EVENTSOURCING * m.events_per_s)
            table.add(
                name if system == "sweepledger" else "",
                system,
                count(m.groups),
                count(m.events),
                human(m.events_per_s),
                human(rate(m.pages, m.seconds)),
                human(rate(m.groups, m.seconds)),
                against,
                target,
                met,
            )
    big_roster = roster_of(100_000)
    groups = per_attempt(attempts(n_attempts // 5, big_roster))
    big = measure("sweepledger", groups, big_roster, 1)
    small = measure("sweepledger", groups, roster, 1)
    table.add(
        "5 events/tx, roster 100 000", "sweepledger", count(big.groups), count(big.events),
        human(big.events_per_s), human(rate(big.pages, big.seconds)),
        human(rate(big.groups, big.seconds)),
        f"{ratio(big.events_per_s, small.events_per_s)} of roster 1 000", "", "",
    )  # fmt: skip
    table.note(f"attempt = START, PAGE + {ITEMS_PER_PAGE} items, PAGE + {ITEMS_PER_PAGE} items, "
               "CURSOR_WRITE, END; roster 1 000 subjects x 4 services")  # fmt: skip
    table.note("sweepledger = items via sink.write_items + projections written through + chain "
               "(Writer.commit); raw and eventsourcing store the events only")  # fmt: skip
    table.note(f"median of {rounds} round(s); 'ledger only' = SqliteStore.append (chain, "
               "no items, no projections), a diagnostic without target")  # fmt: skip
    table.print()
    for extra in wal_tables(per_attempt(work), roster):
        extra.print()
    if not quick:
        path = scratch("append-profile.db")
        print("\n-- cProfile of sweepledger, 5 events/tx (top own time):")
        print(profile_top(lambda: append_sweepledger(path, per_attempt(work[:600]), roster)))


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
