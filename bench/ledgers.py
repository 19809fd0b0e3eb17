"""Realistic ledgers of 10^3 .. 10^7 events, generated fast and cached under bench/.data/.

Why generate instead of running `sweep run`: the runner appends one fsynced transaction per page,
so ten million events would take hours; the read side (status, replay, check) only cares about
what is stored. The generator writes the very rows an append would (same columns, the canonical
JSON of `ledger.codec.encode_data`, a correct hash chain from `ledger.codec.chain_hash`) in big
unsynced batches, and builds the projection tables by folding the same events once in memory and
writing them with `projections.tables.write_dirty`, as `open_for_writing` does on a rebuild.

The story every ledger tells (scaled by its size, about 25 events per pair, 100 subjects per 10^4
events, so 10^7 events = 100 000 subjects x 4 services = 400 000 pairs):

- sweep A, a full sync: run 1 stops on its time budget halfway; run 2 continues, in passes, the
  partial pairs (page limit 10), the rate-limited ones and those never started, then closes A;
- sweep B, incremental: one run, a page or so per pair, closes B;
- sweep C, incremental, still open: its run paused on its time budget with about half the pairs
  done, a few of them partial. `status` then reads an open sweep with problems, as an operator
  would look at it during a long sweep.

Chat pairs have units (spaces) with their own cursors; Drive writes two cursors; ordered cursors
only move forward. The result checks clean (`sweep check` finds no violation), which `main`
prints as a sanity line for the sizes where that is quick.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import Table, data_dir, file_mb, human, progress, rate

from sweepledger.collectors.sink import ensure_item_tables
from sweepledger.ledger import schema
from sweepledger.ledger.chain import ChainVerifier
from sweepledger.ledger.codec import GENESIS_HASH, chain_hash, encode_data
from sweepledger.ledger.events import Event, EventKind
from sweepledger.ledger.store import COLUMNS, SqliteStore
from sweepledger.projections.attach import mark_all_dirty
from sweepledger.projections.fold import State
from sweepledger.projections.tables import PROJECTION_VERSION, ensure_tables, write_dirty

GENERATOR_VERSION = "g1"
"""Bumped whenever the story changes, so cached ledgers of an older story are rebuilt."""

SIZES: tuple[int, ...] = (1_000, 100_000, 1_000_000, 10_000_000)
QUICK_SIZES: tuple[int, ...] = (1_000, 100_000)
EVENTS_PER_SUBJECT = 100
"""About 25 events per pair times 4 services; sets the roster size of each ledger."""

MAX_EVENTS: int | None = None
"""`run_all.py --max-events` caps the sizes every module uses (e.g. to skip 10^7)."""
REBUILD = False
"""`run_all.py --rebuild`: ignore the cache once (after a change to the fold, say)."""

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


def label(size: int) -> str:
    """`1e6` for 1 000 000: how tables and file names name a size."""
    exponent = len(str(size)) - 1
    return f"1e{exponent}" if size == 10**exponent else str(size)


def sizes(quick: bool) -> list[int]:
    """The ledger sizes a benchmark runs on: all of them, or the small ones with `--quick`."""
    chosen = QUICK_SIZES if quick else SIZES
    return [s for s in chosen if MAX_EVENTS is None or s <= MAX_EVENTS]


def ledger_path(size: int) -> Path:
    """The cache file of a size; its name carries every version the file depends on."""
    name = (
        f"ledger-{GENERATOR_VERSION}-s{schema.SCHEMA_VERSION}-p{PROJECTION_VERSION}-"
        f"{label(size)}.db"
    )
    return data_dir() / name


@dataclass
class BuildInfo:
    """What `ensure_ledger` found or made."""

    path: Path
    events: int
    subjects: int
    seconds: float
    cached: bool


def ensure_ledger(size: int) -> BuildInfo:
    """The ledger of `size` events: from the cache when it is still valid, else built now."""
    path = ledger_path(size)
    if path.exists() and path not in _REBUILT and REBUILD:
        _REBUILT.add(path)
        return build_ledger(size, path)
    if path.exists() and _cache_valid(path):
        with SqliteStore.open(path, readonly=True) as store:
            events = store.head()
        return BuildInfo(path, events, size // EVENTS_PER_SUBJECT, 0.0, cached=True)
    return build_ledger(size, path)


_REBUILT: set[Path] = set()


def _cache_valid(path: Path) -> bool:
    """The first rows still verify with today's `chain_hash` (a changed hash means rebuild)."""
    try:
        with SqliteStore.open(path, readonly=True) as store:
            verifier = ChainVerifier()
            rows = store.read_rows(1, 3)
            return all(not verifier.feed(row) for row in rows) and store.head() > 0
    except Exception:
        return False  # any unreadable cache file is simply rebuilt


class _Clock:
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


class _Appender:
    """Turns events into stored rows (chain, JSON) and folds them; flushes rows in batches."""

    def __init__(self, conn: sqlite3.Connection, target: int) -> None:
        self.conn = conn
        self.state = State()
        self.clock = _Clock()
        self.seq = 0
        self.previous = GENESIS_HASH
        self.rows: list[tuple[Any, ...]] = []
        self.target = target
        self.started = time.perf_counter()
        self.next_report = max(target // 10, 1_000_000)
        self.kinds = {str(k): k for k in EventKind}

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
        event = Event(
            self.seq, ts, sweep_id, run_id, self.kinds[kind], service, subject, data, digest
        )
        if kind == "SWEEP_OPEN" and self.state.sweep is not None:
            # The tables keep every sweep's row and counters; the final rebuild only knows the
            # latest sweep, so earlier ones are written as the write-through would have.
            self.flush()
            write_dirty(self.conn, self.state)
        self.state.apply(event)
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


@dataclass
class _Pair:
    """One pair's work in the current sweep: pages still to fetch, and what its cursor will be."""

    service: str
    subject: str
    pages: list[tuple[str | None, int]] = field(default_factory=list)
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


class _Story:
    """Writes the three sweeps of the module docstring through an `_Appender`."""

    def __init__(self, out: _Appender, subjects: int, seed: int) -> None:
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
                    pair.pages = [(None, 25)] * (count - 1) + [(None, rng.randrange(1, 26))]
                elif service == "calendar":
                    pair.pages = [(None, 20)] * rng.randrange(1, 6)
                elif service == "chat":
                    self._chat_units(pair, rng.randrange(1, 4), lambda: rng.randrange(1, 6))
                else:
                    pair.pages = [(None, 50)] * rng.randrange(2, 24)
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
                    self._chat_units(pair, rng.randrange(1, 4), lambda big=big: 6 if big else 1)
                else:
                    count = 12 if big else 1
                    pair.pages = [(None, rng.randrange(0, 12))] * count
                pairs.append(pair)
        self._set_cursors(pairs)
        return pairs

    def _chat_units(self, pair: _Pair, units: int, pages_per_unit: Any) -> None:
        pair.units = [f"spaces/AAAA{pair.subject[4:10]}{u}" for u in range(units)]
        for unit in pair.units:
            pair.pages += [(unit, 30)] * pages_per_unit()
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

        def emit(kind: str, data: dict[str, Any], step_us: int = 2_500) -> None:
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
                })  # fmt: skip
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

    def _page(self, emit: Any, pair: _Pair, unit: str | None, items: int, exhausted: bool) -> None:
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


def build_ledger(size: int, path: Path) -> BuildInfo:
    """Generate the ledger of `size` events into a temporary file, then move it into place."""
    subjects = max(size // EVENTS_PER_SUBJECT, 1)
    tmp = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    progress(f"building {path.name}: {subjects} subjects x 4 services")
    SqliteStore.open(tmp, create=True).close()
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1000000")
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
        ).fetchall()
        conn.execute("BEGIN")
        ensure_item_tables(conn)
        ensure_tables(conn)
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        out = _Appender(conn, size)
        _Story(out, subjects, seed=size).tell()
        out.flush()
        progress(f"{human(out.seq)} events in; indexing and writing the projection tables")
        for _, sql in indexes:
            conn.execute(sql)
        mark_all_dirty(out.state)
        write_dirty(conn, out.state)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    os.replace(tmp, path)
    seconds = time.perf_counter() - started
    progress(f"built {path.name}: {human(out.seq)} events in {seconds:.1f} s")
    return BuildInfo(path, out.seq, subjects, seconds, cached=False)


def ledgers(quick: bool) -> Iterator[BuildInfo]:
    """Every ledger size of this run, built or found in the cache, smallest first."""
    for size in sizes(quick):
        yield ensure_ledger(size)


def main(quick: bool) -> None:
    """Build (or find) the ledgers and print what they hold."""
    from sweepledger.projections.api import check_ledger, read_status

    table = Table(
        "ledgers: generated ledgers (cached in bench/.data/)",
        ["size", "events", "subjects", "pairs", "file MB", "build s", "events/s built",
         "status verdict", "check"],
    )  # fmt: skip
    for size in sizes(quick):
        info = ensure_ledger(size)
        report = read_status(info.path)
        checked = "-"
        if info.events <= 100_000:
            result = check_ledger(info.path)
            checked = "clean" if result.ok else f"{len(result.violations)} violations"
        table.add(
            label(size),
            human(info.events),
            human(info.subjects),
            human(info.subjects * 4),
            f"{file_mb(info.path):.1f}",
            "cached" if info.cached else f"{info.seconds:.1f}",
            "-" if info.cached else human(rate(info.events, info.seconds)),
            report.verdict,
            checked,
        )
    table.note("story: full sync in 2 runs + 1 incremental sweep closed + 1 open and paused")
    table.note("check is run here only up to 1e5 (bench/check.py times it on the big ones)")
    table.print()


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
