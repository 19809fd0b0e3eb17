"""`check` over a whole ledger, hash chain included, in events per second.

`sweep check` is the CI gate and the operator's proof that nothing was changed behind the
triggers' back; the issue wants 10^7 events checked in under a minute (>= 300 000 events/s). It
verifies every row's sha256 chain, decodes and folds every event while checking the attempt
grammar, cursor gating and runs, then compares the projection tables with the fold.

A ladder splits the cost on one ledger:

  rows              SELECT every column (the read floor)
  + chain           `ledger.chain.ChainVerifier` over the rows in one process: sha256 and the
                    header encoding
  chain, workers    `ledger.chain.ParallelChain` with its default workers (CPUs - 1): the chain
                    over seq ranges in worker processes, each range from the stored hash before it
  check_ledger      `projections.api.check_ledger`: decode + rules + bulk fold, split by subject
                    over CPUs processes (`projections.parallel`; this process takes one part)
                    while the chain workers verify the chain; then the merge and table compare

followed by a cProfile of check on the 10^5 ledger.
"""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

from harness import Table, count, human, profile_top, rate, ratio, seconds_of, verdict
from ledgers import QUICK_SIZES, ensure_ledger, label, sizes
from replay import read_rows, replay_sizes

from sweepledger.ledger.chain import ChainVerifier, ParallelChain
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.api import check_ledger

TARGET = 300_000


def chain_only(path: Path) -> int:
    """Every row through the chain verifier, nothing else."""
    n = 0
    with SqliteStore.open(path, readonly=True) as store:
        verifier = ChainVerifier()
        for row in store.read_rows():
            verifier.feed(row)
            n += 1
    return n


def chain_workers(path: Path) -> int:
    """The chain as check verifies it: ranges in worker processes (`ParallelChain`)."""
    with SqliteStore.open(path, readonly=True) as store:
        head = store.head()
    workers = max(1, (os.cpu_count() or 1) - 1)
    with ParallelChain(path, head, workers=workers) as chain:
        chain.problems()
    return head


def main(quick: bool) -> None:
    """Events/s of check_ledger against its chain-only floor, and a profile."""
    table = Table(
        "check: projections.api.check_ledger (chain + rules + fold + tables), events/s",
        ["size", "events", "step", "seconds", "events/s", "of chain-only", "target", "",
         "violations"],
    )  # fmt: skip
    for size in replay_sizes(quick):
        info = ensure_ledger(size)
        read_rows(info.path)  # warm the OS cache
        rows_s = seconds_of(partial(read_rows, info.path))
        chain_s = seconds_of(partial(chain_only, info.path))
        workers_s = seconds_of(partial(chain_workers, info.path))
        started = time.perf_counter()
        violations = len(check_ledger(info.path).violations)
        check_s = time.perf_counter() - started
        n = info.events
        speed = rate(n, check_s)
        table.add(label(size), count(n), "rows", f"{rows_s:.2f}", human(rate(n, rows_s)))
        table.add("", "", "+ chain", f"{chain_s:.2f}", human(rate(n, chain_s)))
        table.add("", "", "chain, workers", f"{workers_s:.2f}", human(rate(n, workers_s)))
        table.add(
            "",
            "",
            "check_ledger",
            f"{check_s:.2f}",
            human(speed),
            ratio(speed, rate(n, chain_s)),
            f">= {human(TARGET)}",
            verdict(speed >= TARGET),
            str(violations),
        )
    table.note("10^7 at the target takes < 34 s; violations should be 0 (the ledgers check clean)")
    table.print()
    profiled = ensure_ledger(min(QUICK_SIZES[-1], max(sizes(quick))))
    print(f"\n-- cProfile of check_ledger on {label(min(QUICK_SIZES[-1], max(sizes(quick))))} "
          f"({count(profiled.events)} events), top own time:")  # fmt: skip
    print(profile_top(lambda: check_ledger(profiled.path)))


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
