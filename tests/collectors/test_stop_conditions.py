"""Stop conditions of an attempt, run in-process against sources that misbehave on purpose."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from sweepledger.collectors.errors import RateLimited, Transient
from sweepledger.collectors.protocol import FetchRequest, Item, Page
from sweepledger.collectors.retry import RetryPolicy, wait_or_stop
from sweepledger.collectors.runner import (
    RunOptions,
    SourceUnavailable,
    StoppedBeforeStart,
    SweepRunner,
)
from sweepledger.projections.api import check_ledger, read_status


class LoopingSource:
    """Hands out the same page token forever: a runner that trusts it never stops."""

    url = "test://looping"

    def __init__(self, *, same_items: bool = False) -> None:
        self.same_items = same_items
        self.calls = 0

    def roster(self) -> list[str]:
        return ["a@example.com"]

    def units(self, service: str, subject: str) -> list[str] | None:
        return None

    def fetch(self, request: FetchRequest) -> Page:
        self.calls += 1
        n = 1 if self.same_items else self.calls
        token = "same" if not self.same_items else f"t{self.calls}"
        return Page([Item(f"m{n}", {"subject": "x"})], next_page_token=token, exhausted=False)

    def close(self) -> None:
        pass


class AlwaysLimited(LoopingSource):
    """Every request is refused for rate."""

    url = "test://limited"

    def fetch(self, request: FetchRequest) -> Page:
        self.calls += 1
        raise RateLimited("quota", retry_after=0.001)


def _run(
    db: Path, source: LoopingSource, services: Sequence[str] = ("gmail",), **options: object
) -> None:
    SweepRunner(
        db, source, RunOptions(source.url, tuple(services), max_pages=None, **options)
    ).run()  # type: ignore[arg-type]


def test_repeated_page_token_raises_no_progress(tmp_path: Path) -> None:
    """A source that returns the same page token twice ends the attempt ERR:NoProgress after a
    bounded number of calls, and the ledger stays valid."""
    db = tmp_path / "l.db"
    source = LoopingSource()
    _run(db, source)
    assert source.calls <= 3
    report = read_status(db)
    assert report.problems[0]["state"] == "ERR:NoProgress"
    assert check_ledger(db).ok


def test_same_items_twice_raises_no_progress(tmp_path: Path) -> None:
    """New tokens but the same items on consecutive pages is no progress either."""
    db = tmp_path / "l.db"
    source = LoopingSource(same_items=True)
    _run(db, source)
    assert source.calls == 2
    assert read_status(db).problems[0]["state"] == "ERR:NoProgress"


def test_too_many_rate_limits_end_err_rate_limited(tmp_path: Path) -> None:
    """Consecutive 429s past --max-retries end the pair ERR:RateLimited, with every refusal
    counted, and the run goes on."""
    db = tmp_path / "l.db"
    source = AlwaysLimited()
    _run(db, source, services=("gmail", "drive"), policy=RetryPolicy(max_retries=2))
    report = read_status(db)
    assert [p["state"] for p in report.problems] == ["ERR:RateLimited", "ERR:RateLimited"]
    assert source.calls == 6
    assert check_ledger(db).ok


class RosterDown(LoopingSource):
    """Its roster listing fails for a while: an outage of the directory."""

    url = "test://roster-down"

    def roster(self) -> list[str]:
        self.calls += 1
        raise Transient("directory answered 503")


class StopWhileListing(LoopingSource):
    """A signal arrives while the roster listing waits (a source's own retry)."""

    url = "test://stop-while-listing"
    runner: SweepRunner

    def roster(self) -> list[str]:
        self.runner.request_stop("SIGTERM")
        wait_or_stop(self.runner.stop, 60.0)
        return ["a@example.com"]


class HungWhileListing(LoopingSource):
    """The roster listing waits as a hung request does: until the run halts."""

    url = "test://hung-while-listing"
    runner: SweepRunner

    def roster(self) -> list[str]:
        wait_or_stop(self.runner.halt, 60.0)
        return ["a@example.com"]


def test_a_roster_outage_exits_3_and_records_nothing(tmp_path: Path) -> None:
    """A source that cannot list its subjects (after the policy's retries) is an outage: exit 3,
    rerun later, as for a sweep left incomplete; not an internal error. No ledger is created."""
    db = tmp_path / "sweep.db"
    source = RosterDown()
    policy = RetryPolicy(max_retries=2, base_delay=0.0, max_delay=0.0)
    with pytest.raises(SourceUnavailable) as raised:
        _run(db, source, policy=policy)
    assert raised.value.exit_code == 3
    assert "Transient: directory answered 503" in str(raised.value)
    assert source.calls == 3
    assert not db.exists()


def test_a_signal_while_listing_the_roster_exits_with_its_code(tmp_path: Path) -> None:
    """SIGTERM during the roster's wait ends the run at once with 143 and nothing recorded, not
    with a 60 s wait or "the source could not list its subjects"."""
    db = tmp_path / "sweep.db"
    source = StopWhileListing()
    runner = SweepRunner(db, source, RunOptions(source.url, ("gmail",), max_pages=None))  # type: ignore[arg-type]
    source.runner = runner
    with pytest.raises(StoppedBeforeStart) as raised:
        runner.run()
    assert raised.value.exit_code == 143
    assert "SIGTERM" in str(raised.value)
    assert not db.exists()


def test_the_time_budget_ending_the_roster_listing_exits_75(tmp_path: Path) -> None:
    """The budget counts from the run's start, so it also ends a listing of the subjects that
    does not answer: exit 75 (paused, as a run the budget ends later) with nothing recorded,
    not the 130 of a stop request."""
    db = tmp_path / "sweep.db"
    source = HungWhileListing()
    options = RunOptions(source.url, ("gmail",), max_pages=None, max_seconds=0.2)
    runner = SweepRunner(db, source, options)  # type: ignore[arg-type]
    source.runner = runner
    with pytest.raises(StoppedBeforeStart) as raised:
        runner.run()
    assert raised.value.exit_code == 75
    assert "time budget" in str(raised.value) and "nothing recorded" in str(raised.value)
    assert runner.stop_reason is None
    assert not db.exists()
