"""Integrity of the stored rows themselves: the hash chain and gapless seq.

Each row is checked against the hash its predecessor *stores* (not a recomputed one), so the
check of one row needs nothing but that row and its predecessor's stored hash. Ranges of seq are
therefore independent: `ParallelChain` verifies them in worker processes, each range starting
from the stored hash of the row just before it, and finds exactly what one sequential pass finds.
"""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from .codec import GENESIS_HASH, chain_hash
from .workers import collect, spawn, stop

CHAIN_COLUMNS = "seq, ts, sweep_id, run_id, kind, service, subject, data, hash"
Problem = tuple[int, str]
"""(seq, explanation) of a row that breaks the chain or the seq order."""

MIN_RANGE = 100_000
"""Rows per worker at least: below that, starting a process costs more than it saves."""
SEQUENTIAL_BELOW = 200_000
"""Ledgers smaller than this are verified in the calling process (no worker start-up)."""


class ChainVerifier:
    """Checks rows one at a time, in seq order.

    Each row is checked against the hash its predecessor *stores*, so one changed row is named
    alone, and a row whose hash was recomputed to hide a change breaks the next row instead.
    A verifier can start in the middle of a ledger from the row before (`previous`,
    `expected_seq`), which is what lets ranges be verified apart.
    """

    def __init__(self, previous: str = GENESIS_HASH, expected_seq: int = 1) -> None:
        self.previous = previous
        self.expected_seq = expected_seq

    def feed(self, row: tuple[Any, ...]) -> list[str]:
        """What is wrong with this row (usually nothing)."""
        seq, ts, sweep_id, run_id, kind, service, subject, data, stored = row
        problems = []
        if seq != self.expected_seq:
            problems.append(f"seq gap: expected seq {self.expected_seq}, found {seq}")
        self.expected_seq = seq + 1
        digest = chain_hash(self.previous, seq, ts, sweep_id, run_id, kind, service, subject, data)
        if digest != stored:
            problems.append("hash chain broken: the row differs from what was appended")
        self.previous = stored
        return problems

    def feed_all(self, rows: Iterable[tuple[Any, ...]]) -> list[Problem]:
        """Every problem of `rows`, in order (the loop of `feed`, without a list per row)."""
        found: list[Problem] = []
        for row in rows:
            if row[0] != self.expected_seq or chain_hash(self.previous, *row[:8]) != row[8]:
                found.extend((int(row[0]), problem) for problem in self.feed(row))
            else:
                self.expected_seq = row[0] + 1
                self.previous = row[8]
        return found


def verify_rows(rows: Iterable[tuple[Any, ...]]) -> Iterator[Problem]:
    """(seq, explanation) for every row that breaks the chain or the seq order."""
    verifier = ChainVerifier()
    for row in rows:
        for problem in verifier.feed(row):
            yield int(row[0]), problem


def verify_range(path: str, after: int | None, last: int) -> list[Problem]:
    """The problems of the rows with `after` < seq <= `last` of the ledger at `path`.

    `after=None` means from the first row. The range starts from the row just before it as
    stored (its hash and seq + 1), exactly where a sequential pass would be at that point.
    Runs in a worker process: it opens its own read-only connection.
    """
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        verifier = ChainVerifier()
        sql = f"SELECT {CHAIN_COLUMNS} FROM events WHERE seq <= ?"
        args: list[object] = [last]
        if after is not None:
            before = conn.execute(
                "SELECT seq, hash FROM events WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (after,)
            ).fetchone()
            if before is not None:
                verifier = ChainVerifier(str(before[1]), int(before[0]) + 1)
            sql += " AND seq > ?"
            args.append(after)
        cursor = conn.execute(sql + " ORDER BY seq", args)
        found: list[Problem] = []
        while batch := cursor.fetchmany(8192):
            found += verifier.feed_all(batch)
        return found
    finally:
        conn.close()


def split(head: int, parts: int, least: int = MIN_RANGE) -> list[tuple[int | None, int]]:
    """`(after, last)` ranges covering every seq up to `head`, the first open below.

    The first range has no lower bound, so a row stored at seq 0 or below is still seen.
    """
    size = max(least, math.ceil(head / max(parts, 1)))
    bounds: list[tuple[int | None, int]] = []
    after: int | None = None
    last = 0
    while True:
        last = min(head, last + size)
        bounds.append((after, last))
        if last >= head:
            return bounds
        after = last


class ParallelChain:
    """The chain of a ledger verified in worker processes while the caller does other work.

    `start` launches the workers (`ledger.workers`) and returns at once; `problems` waits and
    gives them in seq order. A small ledger (or `workers=0`) is verified in the calling process
    by `problems`, and so is the share of a worker that failed.
    """

    def __init__(
        self,
        path: str | Path,
        head: int,
        *,
        workers: int | None = None,
        range_size: int | None = None,
    ) -> None:
        self.path = str(Path(path).resolve())
        self.head = head
        if workers is None:
            # one CPU stays with the caller, which folds and checks the events meanwhile
            cpus = os.cpu_count() or 1
            workers = 0 if head < SEQUENTIAL_BELOW else max(1, cpus - 1)
        self.workers = workers
        self.ranges = split(head, max(workers, 1), range_size or MIN_RANGE)
        self._shares: list[list[tuple[int | None, int]]] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> ParallelChain:
        if self.workers > 0:
            # ranges dealt out in contiguous runs, so the workers' answers concatenate in order
            size = math.ceil(len(self.ranges) / self.workers)
            self._shares = [
                self.ranges[first : first + size] for first in range(0, len(self.ranges), size)
            ]
            self._procs = [
                spawn(__name__, self.path, orjson.dumps(share).decode()) for share in self._shares
            ]
        return self

    def problems(self) -> list[Problem]:
        """Every problem in seq order (waits for the workers)."""
        if not self._procs:
            return verify_range(self.path, None, self.head)
        found: list[Problem] = []
        for share, out in zip(self._shares, collect(self._procs), strict=True):
            if out is None:  # the worker failed: its share is verified here
                found += [p for after, last in share for p in verify_range(self.path, after, last)]
            else:
                found += [(int(seq), str(problem)) for seq, problem in orjson.loads(out)]
        self._procs = []
        return found

    def close(self) -> None:
        """Stop the workers still running (the caller failed before asking for the problems)."""
        stop(self._procs)
        self._procs = []

    def __enter__(self) -> ParallelChain:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker(path: str, shares: str) -> None:
    """`python -m sweepledger.ledger.chain PATH '[[after, last], ...]'`: problems as JSON."""
    found: list[Problem] = []
    for after, last in orjson.loads(shares):
        found += verify_range(path, after, last)
    sys.stdout.buffer.write(orjson.dumps(found))


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
