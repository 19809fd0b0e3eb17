"""`replay` (fold every event from seq 1) in events per second, and where its time goes.

Replay is the audit path and `--as-of` time travel; `check` and the naive status pay the same
fold. The target is 10^6 events/s. The baseline is the floor a Python reader cannot beat by much:
a plain loop that reads every row and orjson-decodes its data.

A cost ladder splits the time on one ledger into layers, each row adding one thing to the row
before, so the difference between two rows is what that layer costs:

  rows, seq only  one integer column: the per-row floor of Python's sqlite3 module
  rows, no data/hash  SELECT of the 7 small columns only: the read floor of a fold that
                  would not need `data` for most events
  rows            SELECT every column, fetchmany, nothing else
  + decode        orjson.loads of every data (the baseline)
  + decode !PAGE  decoding only the non-PAGE events (what a fold that reads PAGE fields from
                  columns would pay)
  store.read()    decoded `Event` records (EventKind lookup, dataclass construction): what
                  replay paid before it read rows through `ledger.scan`
  scan + decode   `ledger.scan.fold_batches` (the columns a fold reads, no hash) and orjson of
                  every data: the floor of replay's reader
  fold, 1 process `projections.bulk.fold_ledger` in this process alone (no report)
  replay          `projections.api.replay`: the bulk fold over those rows (no `Event` records,
                  no dirty sets, checkpoints built once at the end, the cyclic garbage collector
                  paused), split by subject over CPUs processes from 2*10^5 events on
                  (`projections.parallel`: every part folds from seq 1, the parts are merged)

A cProfile of replay on the 10^5 ledger follows (own time per function).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
from harness import Table, count, human, profile_top, rate, ratio, seconds_of, verdict
from ledgers import QUICK_SIZES, ensure_ledger, label, sizes

from sweepledger.ledger.scan import fold_batches
from sweepledger.ledger.store import COLUMNS, SqliteStore
from sweepledger.projections.api import replay
from sweepledger.projections.bulk import fold_ledger

TARGET = 1_000_000


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def read_rows(path: Path) -> int:
    """Every row, every column, nothing done with it."""
    conn = _connect(path)
    n = 0
    try:
        cursor = conn.execute(f"SELECT {COLUMNS} FROM events ORDER BY seq")
        while batch := cursor.fetchmany(4096):
            n += len(batch)
    finally:
        conn.close()
    return n


def read_seq_only(path: Path) -> int:
    """Only the seq of every row: what the sqlite3 module costs per row, whatever the fold."""
    conn = _connect(path)
    n = 0
    try:
        for _ in conn.execute("SELECT seq FROM events ORDER BY seq"):
            n += 1
    finally:
        conn.close()
    return n


def read_fold_columns(path: Path) -> int:
    """Every row, but only the columns a fold needs besides data (no data, no hash)."""
    conn = _connect(path)
    n = 0
    try:
        cursor = conn.execute(
            "SELECT seq, ts, sweep_id, run_id, kind, service, subject FROM events ORDER BY seq"
        )
        while batch := cursor.fetchmany(4096):
            n += len(batch)
    finally:
        conn.close()
    return n


def read_and_decode(path: Path) -> int:
    """The baseline: every row read and its data decoded by orjson."""
    conn = _connect(path)
    loads = orjson.loads
    n = 0
    try:
        cursor = conn.execute(f"SELECT {COLUMNS} FROM events ORDER BY seq")
        while batch := cursor.fetchmany(4096):
            for row in batch:
                loads(row[7])
            n += len(batch)
    finally:
        conn.close()
    return n


def read_and_decode_except_pages(path: Path) -> int:
    """As the baseline, but PAGE data left undecoded (it is most of the bytes)."""
    conn = _connect(path)
    loads = orjson.loads
    n = 0
    try:
        cursor = conn.execute(f"SELECT {COLUMNS} FROM events ORDER BY seq")
        while batch := cursor.fetchmany(4096):
            for row in batch:
                if row[4] != "PAGE":
                    loads(row[7])
            n += len(batch)
    finally:
        conn.close()
    return n


def read_events(path: Path) -> int:
    """`SqliteStore.read()`: decoded Event records, no fold."""
    n = 0
    with SqliteStore.open(path, readonly=True) as store:
        for _ in store.read():
            n += 1
    return n


def scan_and_decode(path: Path) -> int:
    """What replay's reader hands the fold: fold columns in batches, every data decoded."""
    conn = _connect(path)
    loads = orjson.loads
    n = 0
    try:
        for batch in fold_batches(conn):
            for row in batch:
                loads(row[7])
            n += len(batch)
    finally:
        conn.close()
    return n


def fold_one_process(path: Path) -> int:
    """The bulk fold alone in this process (`fold_ledger`): what the split over CPUs saves."""
    conn = _connect(path)
    try:
        return fold_ledger(conn).head
    finally:
        conn.close()


def replay_events(path: Path) -> int:
    return replay(path).events


LADDER: list[tuple[str, Callable[[Path], int]]] = [
    ("rows, seq only", read_seq_only),
    ("rows, no data/hash", read_fold_columns),
    ("rows", read_rows),
    ("+ decode (baseline)", read_and_decode),
    ("+ decode !PAGE", read_and_decode_except_pages),
    ("store.read()", read_events),
    ("scan + decode", scan_and_decode),
    ("fold, 1 process", fold_one_process),
    ("replay", replay_events),
]


def timed(action: Callable[[Path], int], path: Path) -> tuple[int, float]:
    result: list[int] = []
    seconds = seconds_of(lambda: result.append(action(path)))
    return result[0], seconds


def replay_sizes(quick: bool) -> list[int]:
    """10^6 and 10^7 (the issue's sizes); 10^5 with `--quick`."""
    chosen = sizes(quick)
    big = [s for s in chosen if s >= 1_000_000]
    return big or [max(chosen)]


def main(quick: bool) -> None:
    """Events/s of replay against the read+decode baseline, the ladder, and a profile."""
    table = Table(
        "replay: projections.api.replay (fold from seq 1), events/s",
        ["size", "events", "step", "seconds", "events/s", "vs baseline", "target", ""],
    )
    for size in replay_sizes(quick):
        info = ensure_ledger(size)
        read_and_decode(info.path)  # warm the OS cache, as a second replay would find it
        baseline = 0.0
        steps = LADDER
        if size != min(replay_sizes(quick)):
            steps = [s for s in LADDER if s[1] in (read_and_decode, replay_events)]
        for name, action in steps:
            events, seconds = timed(action, info.path)
            speed = rate(events, seconds)
            if action is read_and_decode:
                baseline = speed
            is_replay = action is replay_events
            table.add(
                label(size) if name == steps[0][0] else "",
                count(events) if name == steps[0][0] else "",
                name,
                f"{seconds:.2f}",
                human(speed),
                ratio(speed, baseline) if baseline and action is not read_and_decode else "",
                f">= {human(TARGET)}" if is_replay else "",
                verdict(speed >= TARGET) if is_replay else "",
            )
    table.note("seconds are wall time of the whole call (open, fold, report); replay's own")
    table.note("ReplayResult.seconds (fold only) differs by the report, a few ms")
    table.note("the ladder (all steps) runs on the smallest size; others: baseline + replay")
    table.print()
    profiled = ensure_ledger(min(QUICK_SIZES[-1], max(sizes(quick))))
    print(f"\n-- cProfile of replay on {label(min(QUICK_SIZES[-1], max(sizes(quick))))} "
          f"({count(profiled.events)} events), top own time:")  # fmt: skip
    print(profile_top(lambda: replay(profiled.path)))


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
