"""The daemon loop in-process: failing pairs and failing cycles never stop it; `generation=auto`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sweepledger.collectors.daemon import DaemonOptions, SweepDaemon, source_for_cycle
from sweepledger.collectors.errors import SourceConfigError, Transient
from sweepledger.collectors.protocol import Source
from sweepledger.collectors.retry import wait_or_stop
from sweepledger.collectors.runner import RunOptions
from sweepledger.collectors.sim.config import SimConfig
from sweepledger.collectors.sim.source import SimSource
from sweepledger.projections.api import check_ledger
from sweepledger.projections.runs import read_runs

SUSPENDED = "sim://?subjects=2&suspended=user2@example.com&generation=auto"


def _daemon(db: Path, url: str, cycles: int, **kwargs: object) -> SweepDaemon:
    options = RunOptions(url, ("gmail", "drive"), max_pages=None, max_attempts=5)
    return SweepDaemon(db, options, DaemonOptions(interval=0, max_cycles=cycles), **kwargs)  # type: ignore[arg-type]


def test_a_failing_pair_is_recorded_and_retried_next_cycle(tmp_path: Path) -> None:
    """A pair that fails (a suspended subject: Forbidden) ends its cycle's run incomplete; the
    loop goes on and the next cycle attempts it again; the last cycle's code is the exit code."""
    db = tmp_path / "sweep.db"
    outcome = _daemon(db, SUSPENDED, 2).run()
    assert [c.exit_code for c in outcome.cycles] == [3, 3] and outcome.exit_code == 3
    assert all(c.failing for c in outcome.cycles)
    runs = read_runs(db)
    assert [r["trigger"] for r in runs] == ["daemon cycle 2", "daemon cycle 1"]
    assert [r["counters"]["pairs_errored"] for r in runs] == [2, 2]
    assert runs[0]["counters"]["pairs_attempted"] == 2, "only the failed pairs are retried"
    assert check_ledger(db).ok


class _Unreachable:
    """A source whose roster cannot be listed: the cycle fails before its run starts."""

    url = "sim://?generation=auto&subjects=2"

    def roster(self) -> list[str]:
        raise Transient("directory API unreachable")

    def units(self, service: str, subject: str) -> list[str] | None:
        return None

    def fetch(self, request: object) -> object:
        raise AssertionError("never fetched")

    def close(self) -> None:
        pass


def test_a_failing_cycle_is_logged_and_the_loop_goes_on(tmp_path: Path) -> None:
    """A cycle that raises (the source is unreachable) is reported and the next one runs."""
    db = tmp_path / "sweep.db"
    said: list[str] = []

    def sources(url: str, cycle: int) -> Source:
        return _Unreachable() if cycle == 1 else source_for_cycle(url, cycle)  # type: ignore[return-value]

    outcome = _daemon(db, _Unreachable.url, 2, say=said.append, sources=sources).run()
    assert [c.status for c in outcome.cycles] == ["failed", "completed"]
    assert outcome.cycles[0].exit_code == 3, "an outage, as `sweep run` exits on it"
    assert "directory API unreachable" in str(outcome.cycles[0].error)
    assert any("cycle 1 failed:" in line and "unreachable" in line for line in said)
    assert outcome.exit_code == 0
    assert [r["trigger"] for r in read_runs(db)] == ["daemon cycle 2"]


class _StoppedWhileListing(_Unreachable):
    """A signal arrives while its roster listing waits to retry (`Interruptible`)."""

    def stop_on(self, stop: threading.Event) -> None:
        self.stop = stop

    def roster(self) -> list[str]:
        self.stop.set()
        wait_or_stop(self.stop, 60.0)
        raise AssertionError("the wait ended without Stopped")


def test_a_signal_while_the_roster_is_listed_ends_the_daemon_quietly(tmp_path: Path) -> None:
    """A stop during the roster's wait skips the cycle (not a failed one) and ends the daemon
    with its stop code, at once and with nothing recorded."""
    db = tmp_path / "sweep.db"
    said: list[str] = []

    def sources(url: str, cycle: int) -> Source:
        return _StoppedWhileListing()  # type: ignore[return-value]

    outcome = _daemon(db, _Unreachable.url, 3, say=said.append, sources=sources).run()
    assert all(c.status == "skipped" for c in outcome.cycles)
    assert outcome.exit_code == 0
    assert not any("failed" in line for line in said)
    assert not db.exists() or read_runs(db) == []


class _HungWhileListing(_StoppedWhileListing):
    """A roster listing that never answers: only the run's halt (its time budget) ends it."""

    def roster(self) -> list[str]:
        wait_or_stop(self.stop, 60.0)
        raise AssertionError("the wait ended without Stopped")


def test_a_cycle_whose_budget_ends_the_roster_listing_is_paused_and_the_loop_goes_on(
    tmp_path: Path,
) -> None:
    """Each cycle's --max-seconds counts while its roster is listed: a source that does not
    answer pauses the cycle (exit 75, said, nothing recorded) and the next cycle runs."""
    db = tmp_path / "sweep.db"
    said: list[str] = []

    def sources(url: str, cycle: int) -> Source:
        return _HungWhileListing()  # type: ignore[return-value]

    options = RunOptions(_Unreachable.url, ("gmail",), max_pages=None, max_seconds=0.2)
    daemon = SweepDaemon(  # type: ignore[arg-type]
        db, options, DaemonOptions(interval=0, max_cycles=2), say=said.append, sources=sources
    )
    outcome = daemon.run()
    assert [(c.status, c.exit_code) for c in outcome.cycles] == [("paused", 75), ("paused", 75)]
    assert outcome.exit_code == 75
    assert sum("paused: the time budget" in line for line in said) == 2
    assert not db.exists() or read_runs(db) == []


def test_backoff_doubles_per_failing_cycle_up_to_eight_intervals() -> None:
    """The sleep after k failing cycles in a row is interval * 2^min(k, 3) (+ jitter)."""
    daemon = SweepDaemon("x.db", RunOptions("sim://", ("gmail",)), DaemonOptions(interval=10))
    assert [daemon._delay(k) for k in (0, 1, 2, 3, 9)] == [10, 20, 40, 80, 80]
    jittery = SweepDaemon(
        "x.db", RunOptions("sim://", ("gmail",)), DaemonOptions(interval=10, jitter=5)
    )
    assert all(10 <= jittery._delay(0) <= 15 for _ in range(50))


def test_cycles_number_on_from_the_ledger(tmp_path: Path) -> None:
    """A restarted daemon continues the cycle numbers (so `generation=auto` never goes back)."""
    db = tmp_path / "sweep.db"
    url = "sim://?subjects=2&generation=auto"
    _daemon(db, url, 1).run()
    second = _daemon(db, url, 1).run()
    assert [c.cycle for c in second.cycles] == [2]
    assert read_runs(db)[0]["counters"]["items_inserted"] > 0, "generation 2 brought new items"


def test_generation_auto_keeps_its_url_and_takes_the_cycle() -> None:
    """`generation=auto` is canonical, round-trips, and opens at the generation asked for."""
    url = "sim://?subjects=3&generation=auto"
    assert SimConfig.from_url(url).url == "sim://?generation=auto&subjects=3"
    source = SimSource(url, generation=4)
    assert source.url == "sim://?generation=auto&subjects=3"
    assert source.workspace.generation == 4
    assert SimSource(url).workspace.generation == 1
    fixed = source_for_cycle("sim://?subjects=3&generation=2", 9)
    assert isinstance(fixed, SimSource) and fixed.workspace.generation == 2
    assert SimSource("sim://?generation=2", generation=5).workspace.generation == 2
    with pytest.raises(SourceConfigError, match="more than once"):
        SimConfig.from_url("sim://?generation=auto&generation=2")
