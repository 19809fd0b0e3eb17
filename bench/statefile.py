"""The reference for why a ledger: a JSON state file rewritten on every update.

The simple way to make a sync resumable is one JSON file of everything done so far, rewritten
after each update; done carefully (write a temporary file, fsync it, rename it over the old one,
fsync the folder) it survives a crash. Its cost grows with the state: update n rewrites n
records, so n updates write O(n^2) bytes. The ledger appends only what changed.

Both sides make N updates durable one at a time: the state file gains one record per update;
sweepledger appends N pages the runner's way (one transaction per page: PAGE + items through the
sink, projections written through, hash chain; `append.append_pages`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from append import append_pages
from harness import Table, count, data_dir, fsync_dir, human, rate, scratch, seconds_of
from workload import ITEMS_PER_PAGE

SIZES_QUICK = (1_000,)
SIZES_FULL = (1_000, 10_000)


def record(n: int) -> dict[str, Any]:
    """What a simple sync remembers per update: a pair's progress after a page."""
    return {
        "service": ("gmail", "calendar", "chat", "drive")[n % 4],
        "subject": f"user{n // 4:06d}@corp.example",
        "state": "COMPLETE",
        "cursor": {"historyId": str(50_000 + n)},
        "page_token": f"{n * 25}~{n * 104729:020x}",
        "items": 25,
        "updated": f"2026-01-05T00:{n // 60 % 60:02d}:{n % 60:02d}.000000Z",
    }


def rewrite_state_file(path: Path, updates: int) -> float:
    """Seconds for `updates` careful rewrites of the whole state (tmp, fsync, rename, fsync dir)."""
    tmp = path.with_name(path.name + ".tmp")
    folder = path.parent

    def run() -> None:
        state: dict[str, Any] = {"version": 1, "records": {}}
        for n in range(updates):
            state["records"][str(n)] = record(n)
            with open(tmp, "wb") as f:
                f.write(orjson.dumps(state))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(folder)

    return seconds_of(run)


def main(quick: bool) -> None:
    """Total time and updates/s for N updates, state file against ledger."""
    table = Table(
        "statefile: N durable updates, JSON state file rewritten vs ledger append",
        ["N updates", "system", "total s", "updates/s", "final file MB", "ledger vs file"],
    )
    for n in SIZES_QUICK if quick else SIZES_FULL:
        state_path = data_dir() / "statefile.json"
        file_s = rewrite_state_file(state_path, n)
        size_mb = state_path.stat().st_size / 1_000_000
        ledger_s = append_pages(scratch("statefile-ledger.db"), n)
        table.add(count(n), "JSON state file", f"{file_s:.2f}", human(rate(n, file_s)),
                  f"{size_mb:.2f}", "")  # fmt: skip
        table.add("", "sweepledger", f"{ledger_s:.2f}", human(rate(n, ledger_s)), "",
                  f"{file_s / ledger_s:.1f}x faster")  # fmt: skip
        state_path.unlink(missing_ok=True)
    table.note("state file: one record (~200 B) added per update, whole file rewritten + fsynced")
    table.note(f"sweepledger: one page per update (PAGE + {ITEMS_PER_PAGE} items, one "
               "transaction, synchronous=FULL), ledger and projections durable")  # fmt: skip
    table.print()


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
