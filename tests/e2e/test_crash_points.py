"""Proof that every crash point converges: die right after each append, rerun, compare.

For a small workspace, a clean run appends N events. For every k in 1..N, a run dies right after
the commit that brings its appended events to k (`os._exit` from the fault-injection hook: no
cleanup, like SIGKILL), then the same command runs to completion. Every k must converge to the
clean run's items, pass `check --require-complete`, and never move a cursor backwards.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import SweepCLI

SOURCE = "sim://?subjects=2&page_size=15&seed=5"
ARGS = ("run", "--exhaust", "--quiet", "--source", SOURCE)
CRASH_EXIT = 137


def _one_crash(cli: SweepCLI, root: Path, k: int) -> tuple[int, str | None]:
    folder = root / f"k{k}"
    folder.mkdir()
    crashed = cli.run(*ARGS, cwd=folder, env=cli.env(SWEEPLEDGER_CRASH_AFTER_EVENTS=str(k)))
    if crashed.returncode not in (CRASH_EXIT, 0):
        return k, f"crash run exited {crashed.returncode}: {crashed.stderr[-300:]}"
    rerun = cli.run(*ARGS, cwd=folder)
    if rerun.returncode != 0:
        return k, f"rerun exited {rerun.returncode}: {rerun.stderr[-300:]}"
    check = cli.run("check", "--require-complete", cwd=folder)
    if check.returncode != 0:
        return k, f"check failed: {check.stdout[-500:]}"
    return k, None


def test_every_crash_point_converges(tmp_path: Path, cli: SweepCLI) -> None:
    """Dying after any append, then rerunning, converges to exactly the clean run's items."""
    clean = tmp_path / "clean"
    clean.mkdir()
    assert cli.run(*ARGS, cwd=clean).returncode == 0
    total = cli.query(clean / "sweep.db", "SELECT COUNT(*) FROM events")[0][0]
    assert isinstance(total, int) and total > 40
    expected = {t: cli.items(clean / "sweep.db", t) for t in cli.ITEM_TABLES}
    workers = max(2, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda k: _one_crash(cli, tmp_path, k), range(1, total + 1)))
    failures = [f"k={k}: {why}" for k, why in outcomes if why]
    assert not failures, "\n".join(failures[:10])
    for k in range(1, total + 1):
        db = tmp_path / f"k{k}" / "sweep.db"
        for table, rows in expected.items():
            assert cli.items(db, table) == rows, (k, table)
    # the crash really happened mid-run for the interior points: a stale run was closed
    middle = tmp_path / f"k{total // 2}" / "sweep.db"
    assert cli.query(
        middle,
        "SELECT COUNT(*) FROM events WHERE kind = 'RUN_END' AND "
        "json_extract(data, '$.reason') = 'stale'",
    ) == [(1,)]
