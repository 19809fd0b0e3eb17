"""Issue 7's acceptance, end to end: a real `sweep emulate` with quotas, the real `sweep run`.

1. Small quotas (300 units/s per user, 3 000 per project), 20 ms latency, 16 workers, 20
   subjects: the sweep converges, `check` passes, under 1 % of the calls are refused.
2. The project quota is lowered mid-run through the admin endpoint: the source adapts within
   seconds, under 5 % of the calls are refused from then to the end of the sweep, and no item
   is lost. The issue's window is 30 s; this sweep has about 16 s left after the drop, and the
   share is taken over all of it: the refusals of the adaptation weigh more in a shorter window,
   so the point made is the same, faster.

Both also prove the ledger's counters exact: the run's `requests`, `rate_limited` and
`quota_units` in `status --json` equal what the emulator counted (its roster call aside: it is
made before the sweep opens, where no pair can record it).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepledger.collectors.emulator.control import EmulatorProcess

if TYPE_CHECKING:
    from conftest import QuotaCLI

SMALL = "sim://?subjects=20&seed=1&latency_ms=20&quota_user=300&quota_project=3000"
LONGER = "sim://?subjects=60&seed=1&latency_ms=20&quota_user=300&quota_project=3000"
REFERENCE = "sim://?subjects=60&seed=1"
"""The same workspace without latency or quota: the same items, sooner."""
LOWERED = 800.0
DROP_AFTER_UNITS = 2500


def _assert_counters_exact(status: dict[str, Any], stats: dict[str, Any], cli: QuotaCLI) -> None:
    """The run's totals are integers equal to the emulator's counts, and each is the sum of its
    per-service breakdown."""
    run, quota = status["runs"][0], stats["quota"]
    counters = run["counters"]
    roster_units = stats["statuses"]["directory.users.list"].get("200", 0)
    assert counters["requests"] == cli.counted_calls(stats)
    assert counters["rate_limit_waits"] == quota["refused_total"]
    assert counters["quota_units"] == quota["units"] - roster_units
    for counter in ("requests", "rate_limit_waits", "quota_units"):
        assert isinstance(counters[counter], int)
        per_service = [run["by_service"][s][counter] for s in run["by_service"]]
        assert sum(per_service) == counters[counter], counter


def test_small_quotas_16_workers_converge_with_under_1_percent_refused(
    emulators: Callable[[str], EmulatorProcess], quota_cli: QuotaCLI, tmp_path: Path
) -> None:
    """Acceptance 1, with the counters of `status --json` checked against the emulator."""
    served = emulators(SMALL)
    done = quota_cli.run(
        "run", "--full-sweep", "--exhaust", "--workers", "16", "--source", served.source,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    check = quota_cli.run("check", "--require-complete", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    stats = served.stats()
    quota = stats["quota"]
    assert quota["refused_total"] / (quota["admitted"] + quota["refused_total"]) < 0.01
    _assert_counters_exact(quota_cli.status(tmp_path), stats, quota_cli)


def test_a_lowered_project_quota_is_adopted_within_seconds_and_no_item_is_lost(
    emulators: Callable[[str], EmulatorProcess], quota_cli: QuotaCLI, tmp_path: Path
) -> None:
    """Acceptance 2: 3 000 -> 800 units/s mid-run. The refusals of the adaptation stop within
    5 s, under 5 % of the calls from the drop to the end are refused, the sweep then runs at
    over 75 % of the new quota, it converges, and its items equal a sim:// sweep's."""
    served = emulators(LONGER)
    folder = tmp_path / "paced"
    folder.mkdir()
    process = quota_cli.start("run", "--exhaust", "--workers", "16", "--source", served.source,
                              cwd=folder)  # fmt: skip
    samples: list[tuple[float, int, int, int]] = []
    dropped_at: float | None = None
    try:
        deadline = time.monotonic() + 90
        while process.poll() is None and time.monotonic() < deadline:
            quota = served.quota()
            now = time.monotonic()
            samples.append((now, quota["admitted"], quota["refused_total"], quota["units"]))
            if dropped_at is None and quota["units"] >= DROP_AFTER_UNITS:
                served.set_quota(quota_project=LOWERED)
                dropped_at = now
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    assert process.returncode == 0, (folder / "sweep.err").read_text()[-3000:]
    assert dropped_at is not None, "the sweep ended before the quota was lowered"
    quota = served.quota()
    after = [s for s in samples if s[0] >= dropped_at]
    admitted, refused = quota["admitted"] - after[0][1], quota["refused_total"] - after[0][2]
    assert refused / (admitted + refused) < 0.05

    adapted = _adapted_at(after)
    assert adapted - dropped_at <= 5.0
    steady = [s for s in after if adapted <= s[0] <= adapted + 8.0]
    rate = (steady[-1][3] - steady[0][3]) / (steady[-1][0] - steady[0][0])
    assert rate >= 0.75 * LOWERED

    check = quota_cli.run("check", "--require-complete", cwd=folder)
    assert check.returncode == 0, check.stdout + check.stderr
    _assert_counters_exact(quota_cli.status(folder), served.stats(), quota_cli)
    reference = tmp_path / "sim"
    reference.mkdir()
    sim = quota_cli.run("run", "--exhaust", "--quiet", "--source", REFERENCE, cwd=reference)
    assert sim.returncode == 0, sim.stderr[-2000:]
    assert quota_cli.items(folder / "sweep.db") == quota_cli.items(reference / "sweep.db")


def _adapted_at(samples: list[tuple[float, int, int, int]], quiet: float = 2.0) -> float:
    """When the first refusal-free stretch of `quiet` seconds after the drop began."""
    last_refusal = samples[0][0]
    for (_, _, refused0, _), (t1, _, refused1, _) in itertools.pairwise(samples):
        if refused1 > refused0:
            last_refusal = t1
        elif t1 - last_refusal >= quiet:
            return last_refusal
    return last_refusal
