"""Chaos soak: random SIGKILLs at random times while the source throws every fault it has.

Seeded (the kill times and the workspace), so a failure replays. Two generations, so the
incremental path (and expired cursors) is soaked too. After the kills, the same command is rerun
until it exits 0 (bounded); the ledger must check clean and hold exactly the items a fault-free
sweep of the same workspace holds.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SweepCLI

FAULTS = "rate_limit=0.05&errors=0.05&expire_tokens=0.05&expire_cursors=0.3&latency_ms=4"
KILLS_PER_GENERATION = 6
MAX_RERUNS = 25


@pytest.mark.parametrize("seed", [11, 23])
def test_chaos_soak_converges(tmp_path: Path, cli: SweepCLI, seed: int) -> None:
    """Random kills plus rate limits, 5xx, expired page tokens and expired cursors still converge
    to the fault-free items, with a clean check and no cursor regression."""
    rng = random.Random(seed)
    soak, reference = tmp_path / "soak", tmp_path / "ref"
    soak.mkdir()
    reference.mkdir()
    kills = 0
    for generation in (1, 2):
        workspace = f"sim://?subjects=3&page_size=8&seed={seed}&generation={generation}"
        args = (
            "run",
            "--exhaust",
            "--quiet",
            "--max-retries",
            "3",
            "--seed",
            str(seed),
            "--source",
            f"{workspace}&{FAULTS}",
        )
        for _ in range(KILLS_PER_GENERATION):
            proc = cli.start(
                *args, "--no-resume" if generation == 2 and kills == 6 else "--resume", cwd=soak
            )
            time.sleep(rng.uniform(0.25, 0.9))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate(timeout=30)
        for _ in range(MAX_RERUNS):
            result = cli.run(*args, cwd=soak)
            assert result.returncode in (0, 3), result.stderr[-800:]
            if result.returncode == 0:
                break
        else:
            pytest.fail(f"generation {generation} did not converge in {MAX_RERUNS} reruns")
        check = cli.run("check", "--require-complete", cwd=soak)
        assert check.returncode == 0, check.stdout[-1500:]
        ref = cli.run(
            "run", "--exhaust", "--quiet", "--no-resume", "--source", workspace, cwd=reference
        )
        assert ref.returncode == 0
        # every row, tombstones included: a resync after an expired cursor records the
        # deletions the changes feed would have reported
        assert cli.snapshot(soak / "sweep.db") == cli.snapshot(reference / "sweep.db")
    assert kills >= 4
    db = soak / "sweep.db"
    faults = cli.query(
        db,
        "SELECT SUM(json_extract(data, '$.retries')), "
        "SUM(json_extract(data, '$.rate_limited')) FROM events "
        "WHERE kind = 'PAGE'",
    )[0]
    resets = cli.query(db, "SELECT COUNT(*) FROM events WHERE kind = 'CURSOR_RESET'")[0][0]
    assert faults[0] and faults[1] and resets
