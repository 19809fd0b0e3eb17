"""The story a generated ledger tells, written as stored rows at the speed of a bulk insert.

`RowWriter` turns each event into the row an append would store (seq, timestamp, the canonical
JSON of `ledger.codec.encode_data`, the hash chain of `ledger.codec.chain_hash`) and inserts rows
in big batches; `Story` decides which events happen, deterministically from a seed:

- sweep A, a full sync: run 1 stops on its time budget halfway; run 2 continues, in passes, the
  partial pairs (page limit 10), the rate-limited ones and those never started, then closes A;
- sweep B, incremental: one run, a page or so per pair, closes B;
- sweep C, incremental, still open: its run paused on its time budget with about half the pairs
  done, a few of them partial, as an operator would find it during a long sweep.

Attempts follow the grammar `START PAGE* (CURSOR_WRITE | CURSOR_SKIP) END` as the runner writes
them: chat pairs have units (spaces) with their own cursors, Drive writes two cursors, ordered
cursors only move forward, END counts equal their pages' counts, so the ledgers check clean.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import human, progress, rate

from sweepledger.ledger.codec import GENESIS_HASH, chain_hash, encode_data
from sweepledger.ledger.store import COLUMNS

SERVICES = ("gmail", "calendar", "chat", "drive")
CURSOR_KEYS = {
    "gmail": "historyId",
    "calendar": "syncToken",
    "chat": "last_create_time",
    "drive": "last_modified_time",
}
MAX_PAGES = 10
BATCH_ROWS = 50_000
EPOCH = 1_767_571_200  # 2026-01-05T00:00:00Z: ledgers start there, whatever day they are built.


class Clock:
    """The append timestamps: a few milliseconds apart, formatted without datetime per event."""

    def __init__(self) -> None:
        self.micros = EPOCH * 1_000_000
        self._second = -1
        self._prefix = ""

    def tick(self, step_us: int) -> str:
        self.micros += step_us
        second, micro = divmod(self.micros, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{micro:06d}Z"

    def skip(self, seconds: float) -> None:
        self.micros += int(seconds * 1_000_000)

    def iso(self, offset_s: float = 0.0) -> str:
        """An RFC 3339 instant near now (cursor values of the time-ordered services)."""
        micros = self.micros + int(offset_s * 1_000_000)
        second, micro = divmod(micros, 1_000_000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + f".{micro // 1000:03d}Z"


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _id(prefix: str, number: int) -> str:
    """Ids shaped like `ledger.ids.new_id` (time-ordered base 36), but deterministic."""
    digits = []
    for _ in range(13):
        number, rem = divmod(number, 36)
        digits.append(_B36[rem])
    return f"{prefix}-{''.join(reversed(digits))}"


_Where = tuple[str | None, str | None, str | None, str | None]
_Emit = Callable[[str, dict[str, Any], int], None]
"""Appends one event of the current attempt: kind, data, microseconds since the last event."""


class RowWriter:
    """Turns events into stored rows (chain, JSON); inserts them in batches."""

    def __init__(self, conn: sqlite3.Connection, target: int) -> None:
        self.conn = conn
        self.clock = Clock()
        self.seq = 0
        self.previous = GENESIS_HASH
        self.rows: list[tuple[Any, ...]] = []
        self.target = target
        self.started = time.perf_counter()
        self.next_report = max(target // 10, 1_000_000)

    def emit(self, kind: str, where: _Where, data: dict[str, Any], step_us: int = 2_500) -> None:
        """Append one event; `where` is its (sweep_id, run_id, service, subject)."""
        sweep_id, run_id, service, subject = where
        self.seq += 1
        ts = self.clock.tick(step_us)
        text = encode_data(data)
        digest = chain_hash(
            self.previous, self.seq, ts, sweep_id, run_id, kind, service, subject, text
        )
        self.previous = digest
        self.rows.append((self.seq, ts, sweep_id, run_id, kind, service, subject, text, digest))
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.conn.executemany(
                f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self.rows
            )
            self.rows = []
        if self.seq >= self.next_report:
            elapsed = time.perf_counter() - self.started
            progress(
                f"{human(self.seq)} of ~{human(self.target)} events, "
                f"{elapsed:.0f} s ({human(rate(self.seq, elapsed))} events/s)"
            )
            self.next_report += max(self.target // 10, 1_000_000)


Page = tuple[str | None, int]
"""(unit, item count) of one page to fetch."""


def _run_of(pages: int, items: int, unit: str | None = None) -> list[Page]:
    """`pages` pages of `items` items each (of `unit`)."""
    return [(unit, items)] * pages


@dataclass
class _Pair:
    """One pair's work in the current sweep: pages still to fetch, and what its cursor will be."""

    service: str
    subject: str
    pages: list[Page] = field(default_factory=list)
    """(unit, item count) per page still to fetch, in order."""
    units: list[str] | None = None
    unit_cursor: dict[str, str] = field(default_factory=dict)
    cursor: dict[str, str] = field(default_factory=dict)
    """The cursor values this sweep ends with (primary key first)."""
    previous: dict[str, str] = field(default_factory=dict)
    """The cursor values written by an earlier sweep."""
    attempts: int = 0
    page_no: int = 0
    done: bool = False
    state: str = "NOT_STARTED"


class Story:
    """Writes the three sweeps of the module docstring through a `RowWriter`."""

    def __init__(self, out: RowWriter, subjects: int, seed: int) -> None:
        self.out = out
        self.rng = random.Random(seed)
        self.roster = [f"user{n:06d}@corp.example" for n in range(1, subjects + 1)]
        self.history: dict[str, int] = {s: self.rng.randrange(10_000, 90_000) for s in self.roster}
        self.written: dict[tuple[str, str], dict[str, str]] = {}
        self.run_number = 0

    # -- the three sweeps ------------------------------------------------------------------

    def tell(self) -> None:
        pairs = self._full_sync_work()
        sweep, run = self._open("A", full=True)
        self._run_pass(sweep, run, pairs, stop_after=len(pairs) // 2, status="paused")
        run = self._start_run(sweep)
        while not all(p.done for p in pairs):
            self._run_pass(sweep, run, [p for p in pairs if not p.done])
        self._close(sweep, run)
        for name, status in (("B", "completed"), ("C", "paused")):
            self.out.clock.skip(86_400 * 7)
            pairs = self._incremental_work()
            sweep, run = self._open(name, full=False)
            if status == "paused":
                self._run_pass(sweep, run, pairs, stop_after=len(pairs) // 2, status="paused")
                continue
            while not all(p.done for p in pairs):
                self._run_pass(sweep, run, [p for p in pairs if not p.done])
            self._close(sweep, run)

    def _full_sync_work(self) -> list[_Pair]:
        rng = self.rng
        pairs = []
        for subject in self.roster:
            for service in SERVICES:
                pair = _Pair(service, subject)
                if service == "gmail":
                    count = 1 + min(int(rng.expovariate(1 / 25)), 100)
                    pair.pages = _run_of(count - 1, 25) + _run_of(1, rng.randrange(1, 26))
                elif service == "calendar":
                    pair.pages = _run_of(rng.randrange(1, 6), 20)
                elif service == "chat":
                    self._chat_units(pair, rng.randrange(1, 4), lambda: rng.randrange(1, 6))
                else:
                    pair.pages = _run_of(rng.randrange(2, 24), 50)
                pairs.append(pair)
        self._set_cursors(pairs)
        return pairs

    def _incremental_work(self) -> list[_Pair]:
        rng = self.rng
        pairs = []
        for subject in self.roster:
            for service in SERVICES:
                pair = _Pair(service, subject)
                big = rng.random() < 0.01
                if service == "chat":
                    per_unit = 6 if big else 1
                    self._chat_units(pair, rng.randrange(1, 4), per_unit)
                else:
                    count = 12 if big else 1
                    pair.pages = _run_of(count, rng.randrange(0, 12))
                pairs.append(pair)
        self._set_cursors(pairs)
        return pairs

    def _chat_units(self, pair: _Pair, units: int, pages_per_unit: int | Callable[[], int]) -> None:
        """Give a chat pair `units` spaces, each with a fixed or drawn number of pages."""
        pair.units = [f"spaces/AAAA{pair.subject[4:10]}{u}" for u in range(units)]
        for unit in pair.units:
            pages = pages_per_unit if isinstance(pages_per_unit, int) else pages_per_unit()
            pair.pages += _run_of(pages, 30, unit)
            pair.unit_cursor[unit] = self.out.clock.iso(-self.rng.randrange(60, 86_400))

    def _set_cursors(self, pairs: list[_Pair]) -> None:
        clock = self.out.clock
        for pair in pairs:
            pair.previous = self.written.get((pair.service, pair.subject), {})
            if pair.service == "gmail":
                self.history[pair.subject] += self.rng.randrange(1, 500)
                pair.cursor = {"historyId": str(self.history[pair.subject])}
            elif pair.service == "calendar":
                pair.cursor = {"syncToken": f"{self.rng.getrandbits(64):016x}"}
            elif pair.service == "chat":
                pair.cursor = {"last_create_time": max(pair.unit_cursor.values())}
            else:
                modified = clock.iso(-self.rng.randrange(60, 3_600))
                token = f"{self.rng.randrange(1, 9)}~{self.rng.getrandbits(48):012x}"
                pair.cursor = {"last_modified_time": modified, "start_page_token": token}

    # -- runs and sweeps -------------------------------------------------------------------

    def _start_run(self, sweep: str) -> str:
        self.run_number += 1
        run = _id("run", self.out.clock.micros // 1000 * 1000 + self.run_number)
        self.out.emit("RUN_START", (sweep, run, None, None), {
            "argv": ["run", "--db", "sweep.db", "--full-sweep"],
            "host": "bench-host",
            "options": {
                "max_attempts": 3, "max_pages": MAX_PAGES, "max_retries": 5,
                "max_seconds": 3600, "months_back": None, "only_remaining": False,
                "passes": 3, "resume": True, "services": list(SERVICES), "since": None,
                "source": "sim://", "subjects": None, "workers": 4,
            },
            "pid": 4000 + self.run_number,
            "trigger": "cli",
        })  # fmt: skip
        return run

    def _open(self, name: str, *, full: bool) -> tuple[str, str]:
        sweep = _id("sweep", self.out.clock.micros // 1000 * 1000 + ord(name))
        run = self._start_run(sweep)
        self.out.emit("SWEEP_OPEN", (sweep, run, None, None), {
            "options": {"months_back": None, "since": None, "full": full},
            "roster": self.roster,
            "services": list(SERVICES),
            "source": "sim://",
        })  # fmt: skip
        return sweep, run

    def _close(self, sweep: str, run: str) -> None:
        self.out.emit("SWEEP_CLOSE", (sweep, run, None, None), {"status": "complete"})
        self.out.emit("RUN_END", (sweep, run, None, None), {"reason": None, "status": "completed"})

    def _run_pass(
        self,
        sweep: str,
        run: str,
        pairs: list[_Pair],
        *,
        stop_after: int | None = None,
        status: str = "",
    ) -> None:
        """Attempt each pair once; with `stop_after`, end the run there with `status`."""
        for number, pair in enumerate(pairs):
            if stop_after is not None and number >= stop_after:
                break
            self._attempt(sweep, run, pair)
        if stop_after is not None:
            self.out.emit(
                "RUN_END", (sweep, run, None, None), {"reason": "budget", "status": status}
            )

    # -- one attempt -----------------------------------------------------------------------

    def _attempt(self, sweep: str, run: str, pair: _Pair) -> None:
        out, rng = self.out, self.rng
        service, subject = pair.service, pair.subject
        where = (sweep, run, service, subject)

        def emit(kind: str, data: dict[str, Any], step_us: int) -> None:
            out.emit(kind, where, data, step_us)

        primary = CURSOR_KEYS[service]
        pair.attempts += 1
        start: dict[str, Any] = {"attempt": pair.attempts}
        if pair.previous.get(primary):
            start["cursor_before"] = pair.previous[primary]
        if pair.page_no:
            start["resume_token"] = f"{pair.page_no}~{rng.getrandbits(40):010x}"
        if pair.units is not None:
            start["units"] = pair.units
        emit("START", start, 800)
        fail_at = rng.randrange(0, MAX_PAGES) if rng.random() < 0.02 else -1
        count = fetched = 0
        while pair.pages and fetched < MAX_PAGES:
            if fetched == fail_at:
                emit("CURSOR_SKIP", {"err": "RateLimited", "reason": "error"}, 900_000)
                emit("END", {
                    "count": count, "detail": "429 Too Many Requests (rateLimitExceeded)",
                    "err": "RateLimited", "ok": False, "partial": False,
                }, 2_500)  # fmt: skip
                pair.state = "ERR"
                return
            unit, items = pair.pages.pop(0)
            fetched += 1
            pair.page_no += 1
            count += items
            exhausted = not pair.pages or pair.pages[0][0] != unit
            self._page(emit, pair, unit, items, exhausted)
            if exhausted and unit is not None:
                value = pair.unit_cursor[unit]
                emit("CURSOR_WRITE", {"key": primary, "unit": unit, "value": value}, 50)
                pair.page_no = 0
        if pair.pages:
            emit("CURSOR_SKIP", {"reason": "partial"}, 100)
            emit("END", {
                "count": count, "detail": "partial: cursor not written", "ok": True,
                "partial": True,
            }, 50)  # fmt: skip
            pair.state = "PARTIAL"
            return
        for key, value in pair.cursor.items():
            data = {"key": key, "value": value}
            if pair.previous.get(key):
                data["previous"] = pair.previous[key]
            emit("CURSOR_WRITE", data, 50)
        emit("END", {"count": count, "exhausted": True, "ok": True, "partial": False}, 50)
        self.written[(service, subject)] = pair.cursor
        pair.done, pair.state = True, "COMPLETE"

    def _page(
        self, emit: _Emit, pair: _Pair, unit: str | None, items: int, exhausted: bool
    ) -> None:
        rng = self.rng
        requests = 1 + (items if pair.service == "gmail" else 0) + (rng.random() < 0.05)
        data: dict[str, Any] = {
            "count": items, "deleted": 0, "exhausted": exhausted, "inserted": items,
            "page": pair.page_no, "quota_units": requests * 5, "rate_limited": 0,
            "requests": requests, "unchanged": 0, "updated": 0,
        }  # fmt: skip
        if unit is not None:
            data["unit"] = unit
        if pair.service in ("gmail", "drive"):
            data["carry"] = {CURSOR_KEYS[pair.service]: pair.cursor[CURSOR_KEYS[pair.service]]}
        if not exhausted:
            data["next_page_token"] = f"{pair.page_no * items}~{rng.getrandbits(80):020x}"
        emit("PAGE", data, 3_000 + items * 40)
