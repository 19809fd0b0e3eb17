"""Realistic ledgers of 10^3 .. 10^7 events, generated fast and cached under bench/.data/.

Why generate instead of running `sweep run`: the runner appends one fsynced transaction per page,
so ten million events would take hours; the read side (status, replay, check) only cares about
what is stored. The generator writes the very rows an append would (same columns, the canonical
JSON of `ledger.codec.encode_data`, a correct hash chain from `ledger.codec.chain_hash`) in big
unsynced batches. The projection tables are then built by the product's own rebuild:
`projections.attach.open_for_writing` finds no tables of its version, folds every event once in
memory and writes them (`mark_all_dirty` + `tables.write_dirty`), as on any upgrade.

Every ledger tells the story of `story.py` (three sweeps, the last one open), scaled by its size:
about 25 events per pair and 100 subjects per 10^4 events, so 10^7 events = 100 000 subjects x 4
services = 400 000 pairs. The result checks clean (`sweep check` finds no violation), which
`main` prints as a sanity line for the sizes where that is quick.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from harness import Table, count, data_dir, file_mb, human, progress, rate
from story import RowWriter, Story

from sweepledger.collectors.sink import ensure_item_tables
from sweepledger.ledger import schema
from sweepledger.ledger.chain import ChainVerifier
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.tables import PROJECTION_VERSION

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


def label(size: int) -> str:
    """`1e6` for 1 000 000: how tables and file names name a size."""
    exponent = len(str(size)) - 1
    return f"1e{exponent}" if size == 10**exponent else str(size)


def sizes(quick: bool) -> list[int]:
    """The ledger sizes a benchmark runs on: all of them, or the small ones with `--quick`."""
    chosen = QUICK_SIZES if quick else SIZES
    return [s for s in chosen if MAX_EVENTS is None or s <= MAX_EVENTS]


def ledger_path(size: int) -> Path:
    """The cache file of a size; its name carries the versions its *events* depend on.

    The projection version is not in the name: projection tables are derived data, so a cached
    ledger whose tables are of another version has them rebuilt in place (`_current_projections`)
    instead of 10^7 events being generated again.
    """
    return data_dir() / f"ledger-{GENERATOR_VERSION}-s{schema.SCHEMA_VERSION}-{label(size)}.db"


def _adopt_legacy(path: Path, size: int) -> None:
    """Rename a cache file of the older naming (which carried `-p<version>`) to `path`.

    Its events are the same as a new build's (same generator and schema); only its projection
    tables may be stale, and `_current_projections` deals with those.
    """
    if path.exists():
        return
    stem = f"ledger-{GENERATOR_VERSION}-s{schema.SCHEMA_VERSION}-p"
    legacy = sorted(data_dir().glob(f"{stem}*-{label(size)}.db"), key=lambda p: p.stat().st_mtime)
    if not legacy:
        return
    old = legacy[-1]
    for suffix in ("-wal", "-shm"):
        Path(f"{old}{suffix}").unlink(missing_ok=True)
    if _facts_path(old).exists():
        os.replace(_facts_path(old), _facts_path(path))
    os.replace(old, path)
    progress(f"renamed cached {old.name} to {path.name}")


def _current_projections(path: Path) -> None:
    """Rebuild the projection tables of a cached ledger in place if their version is not ours.

    `open_for_writing` does exactly what an upgrade does in production: it finds tables of
    another `PROJECTION_VERSION`, folds every event once and writes them.
    """
    with SqliteStore.open(path, readonly=True) as store:
        found = store.get_meta("projection_version")
    if found == PROJECTION_VERSION:
        return
    started = time.perf_counter()
    progress(f"{path.name}: projection tables v{found} -> v{PROJECTION_VERSION}, rebuilding")
    store, _ = open_for_writing(path)
    store.close()
    progress(f"{path.name}: projections rebuilt in {time.perf_counter() - started:.1f} s")


@dataclass
class BuildInfo:
    """What `ensure_ledger` found or made."""

    path: Path
    events: int
    subjects: int
    seconds: float | None
    """How long the build took (None: a cached file of unknown history)."""
    cached: bool


def ensure_ledger(size: int) -> BuildInfo:
    """The ledger of `size` events: from the cache when it is still valid, else built now."""
    path = ledger_path(size)
    _adopt_legacy(path, size)
    if path.exists() and path not in _REBUILT and REBUILD:
        _REBUILT.add(path)
        return build_ledger(size, path)
    if path.exists() and _cache_valid(path):
        _current_projections(path)
        with SqliteStore.open(path, readonly=True) as store:
            events = store.head()
        seconds = _build_facts(path).get("seconds")
        known = None if seconds is None else float(seconds)
        return BuildInfo(path, events, size // EVENTS_PER_SUBJECT, known, cached=True)
    return build_ledger(size, path)


def _facts_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _build_facts(path: Path) -> dict[str, Any]:
    """What the build of a cached ledger took (kept beside it: 10^7 takes minutes)."""
    try:
        facts = orjson.loads(_facts_path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return facts if isinstance(facts, dict) else {}


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
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        out = RowWriter(conn, size)
        Story(out, subjects, seed=size).tell()
        out.flush()
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    written = time.perf_counter() - started
    progress(f"{human(out.seq)} events written in {written:.0f} s; folding them into the tables")
    store, _ = open_for_writing(tmp)
    store.close()
    os.replace(tmp, path)
    seconds = time.perf_counter() - started
    facts = {"events": out.seq, "seconds": round(seconds, 1), "built": time.strftime("%F %T")}
    _facts_path(path).write_bytes(orjson.dumps(facts))
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
         "cached", "status verdict", "check"],
    )  # fmt: skip
    for size in sizes(quick):
        info = ensure_ledger(size)
        report = read_status(info.path)
        checked = "-"
        if size <= 100_000:
            result = check_ledger(info.path)
            checked = "clean" if result.ok else f"{len(result.violations)} violations"
        table.add(
            label(size),
            human(info.events),
            count(info.subjects),
            count(info.subjects * 4),
            f"{file_mb(info.path):.1f}",
            "-" if info.seconds is None else f"{info.seconds:.1f}",
            "-" if info.seconds is None else human(rate(info.events, info.seconds)),
            "yes" if info.cached else "no",
            report.verdict,
            checked,
        )
    table.note("story: full sync in 2 runs + 1 incremental sweep closed + 1 open and paused")
    table.note("check is run here only up to 1e5 (bench/check.py times it on the big ones)")
    table.note("build s: when the cached file was built (on a machine as busy as it was then)")
    table.print()


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
