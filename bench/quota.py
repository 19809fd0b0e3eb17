"""Quota pacing against the emulator: a sweep's wall time over its physical limit, two policies.

The emulator runs as a real `sweep emulate` subprocess (its own interpreter) serving
`sim://?subjects=N&seed=1&latency_ms=20&quota_user=U&quota_project=P`: every call waits 20 ms
and is metered in Gmail's units against a per-user and a per-project window (issue 7). A full
`--exhaust` sweep runs in this process through the Python API at 4, 16 and 64 workers, with:

- `adaptive`: the source's default `AdaptiveLimiter`, told nothing: it starts from Google's
  published defaults and learns the quotas from refusals (the case the issue asks about);
- `hinted`: the same limiter seeded (and capped) by the URL's `quota_user` / `quota_project`;
- `backoff`: no pacing (`NoPacing`): every refusal goes back to the runner's exponential backoff
  with full jitter, honouring the service's "Retry after" hint (up to `--max-retries`), and a
  pair that still fails is retried by the next pass (`--passes`), as the CLI does.

The figure is wall time / physical limit, where the limit is max(total units / project rate,
largest user's units / per-user rate) with the units the run actually spent (read from its own
PAGE and END events, which equal the emulator's count). Target <= 1.10 at 16 and 64 workers. A
window holds one second of its rate when full (the emulator's model), so a run can beat the
formula by up to a second; the limits here are about 9 s (--quick) and 18 s, so that bonus
stays small. At 4 workers at most 4 mailboxes are swept at once, so the per-user rate can bound
the sweep above the formula: that row has no target. Refused = calls answered 429/403 for rate,
as a share of all calls.

Run alone: `python bench/quota.py [--quick]`; `bench/run_all.py` can call `main(quick)`.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# bench/google.py sits first on sys.path when a bench script runs, where it would stand in for
# Google's `google` namespace package (google-auth): import the real one with the folder hidden.
_BENCH = Path(__file__).resolve().parent
_saved = list(sys.path)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
import google.auth  # noqa: E402, F401

sys.path[:] = _saved

from harness import Table, count, data_dir, scratch  # noqa: E402

from sweepledger.collectors.emulator.control import EmulatorProcess  # noqa: E402
from sweepledger.collectors.google.pacing import NoPacing, QuotaLimiter  # noqa: E402
from sweepledger.collectors.google.source import GoogleSource  # noqa: E402
from sweepledger.collectors.retry import RetryPolicy  # noqa: E402
from sweepledger.collectors.runner import RunOptions, SweepRunner  # noqa: E402

SERVICES = ("gmail", "calendar", "chat", "drive")
WORKERS = (4, 16, 64)
POLICIES = ("adaptive", "hinted", "backoff")
TARGET = 1.10
PASSES = 10
COLUMNS = (
    "policy",
    "workers",
    "wall s",
    "limit s",
    "wall/limit",
    "target",
    "calls",
    "refused",
    "refused %",
    "complete",
)
REFILL = 1.5
"""Seconds between runs: the emulator's windows refill (each holds one second of its rate)."""


@dataclass(frozen=True, slots=True)
class Setup:
    subjects: int
    user_rate: float
    project_rate: float

    @property
    def workspace(self) -> str:
        return (
            f"sim://?subjects={self.subjects}&seed=1&latency_ms=20"
            f"&quota_user={self.user_rate:g}&quota_project={self.project_rate:g}"
        )


@dataclass(frozen=True, slots=True)
class Result:
    seconds: float
    limit: float
    requests: int
    refused: int
    complete: bool
    attempts: int
    """The most attempts any pair needed (more than 1: a pair failed and a later pass retried)."""


def spent(db: Path, setup: Setup) -> tuple[float, int, int, int]:
    """The physical limit (max(total units / project rate, largest user's units / user rate)),
    calls, refusals and the most attempts of a pair, from the run's own events."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT subject, SUM(COALESCE(json_extract(data, '$.quota_units'), 0)), "
            "SUM(COALESCE(json_extract(data, '$.requests'), 0)), "
            "SUM(COALESCE(json_extract(data, '$.rate_limited'), 0)) "
            "FROM events WHERE kind IN ('PAGE', 'END') GROUP BY subject"
        ).fetchall()
        attempts = conn.execute(
            "SELECT MAX(json_extract(data, '$.attempt')) FROM events WHERE kind = 'START'"
        ).fetchone()[0]
    finally:
        conn.close()
    total = sum(r[1] for r in rows)
    largest = max(r[1] for r in rows)
    limit = max(total / setup.project_rate, largest / setup.user_rate)
    return limit, sum(r[2] for r in rows), sum(r[3] for r in rows), int(attempts or 0)


def sweep(emulator: EmulatorProcess, setup: Setup, policy: str, workers: int) -> Result:
    """One full sweep; its wall time and what it spent."""
    url = emulator.source
    limiter: QuotaLimiter | None = NoPacing() if policy == "backoff" else None
    if policy == "hinted":
        url += f"&quota_user={setup.user_rate:g}&quota_project={setup.project_rate:g}"
    db = scratch(f"quota-{policy}-{workers}.db")
    source = GoogleSource(url, limiter=limiter)
    try:
        started = time.perf_counter()
        outcome = SweepRunner(
            db,
            source,
            RunOptions(
                source.url,
                SERVICES,
                max_pages=None,
                workers=workers,
                passes=PASSES,
                policy=RetryPolicy(),
            ),
        ).run()
        seconds = time.perf_counter() - started
    finally:
        source.close()
    limit, requests, refused, attempts = spent(db, setup)
    return Result(seconds, limit, requests, refused, outcome.complete, attempts)


def main(quick: bool = False) -> None:
    setup = Setup(20, 300, 700) if quick else Setup(40, 300, 600)
    table = Table(
        f"quota pacing: wall / physical limit ({setup.workspace.removeprefix('sim://?')})",
        COLUMNS,
    )
    folder = data_dir() / "quota-emulator"
    with EmulatorProcess(setup.workspace, folder) as emulator:
        for policy in POLICIES:
            for workers in WORKERS:
                time.sleep(REFILL)
                result = sweep(emulator, setup, policy, workers)
                ratio = result.seconds / result.limit
                target = f"<= {TARGET:.2f}" if workers >= 16 else "-"
                judged = "" if workers < 16 else (" ok" if ratio <= TARGET else " MISSES")
                complete = "yes" if result.complete else "NO"
                if result.attempts > 1:
                    complete += f" (<= {result.attempts} attempts)"
                table.add(
                    policy,
                    workers,
                    f"{result.seconds:.2f}",
                    f"{result.limit:.2f}",
                    f"{ratio:.3f}{judged}",
                    target,
                    count(result.requests),
                    count(result.refused),
                    f"{100 * result.refused / max(1, result.requests):.2f}",
                    complete,
                )
    table.note("limit = max(total units / project rate, largest user's units / per-user rate)")
    table.note("adaptive: told nothing, learns from refusals; hinted: seeded with the quotas;")
    table.note("backoff: no pacing, the runner's exponential backoff honouring Retry-After")
    table.print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller workspace")
    main(parser.parse_args().quick)
