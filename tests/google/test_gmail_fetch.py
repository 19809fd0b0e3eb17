"""Gmail pages through an in-process emulator: both get modes, per-item failures and retries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sweepledger.collectors.emulator.server import EmulatorServer
from sweepledger.collectors.google.messages import MODES, _longer
from sweepledger.collectors.google.source import GoogleSource
from sweepledger.collectors.protocol import FetchRequest
from sweepledger.collectors.sim.source import SimSource

USER = "user1@example.com"


def _source(server: EmulatorServer, mode: str) -> GoogleSource:
    key: Path = server.key_path  # type: ignore[attr-defined]
    return GoogleSource(
        f"google://?credentials={key}&admin=admin@example.com&endpoint={server.url}",
        gmail_fetch=mode,
    )


@pytest.fixture(scope="module")
def clean(inproc_emulator: Callable[[str], EmulatorServer]) -> EmulatorServer:
    return inproc_emulator("sim://?subjects=2&seed=8")


@pytest.fixture(scope="module")
def failing(inproc_emulator: Callable[[str], EmulatorServer]) -> EmulatorServer:
    return inproc_emulator("sim://?subjects=2&seed=8&item_errors=0.5&page_size=5")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sim() -> Iterator[SimSource]:
    source = SimSource("sim://?subjects=2&seed=8")
    try:
        yield source
    finally:
        source.close()


def test_a_listing_page_holds_the_sims_items(
    clean: EmulatorServer, mode: str, sim: SimSource
) -> None:
    """Batched or concurrent, the first full-sync page has the sim's items, page token aside,
    and carries the profile's historyId read before listing."""
    source = _source(clean, mode)
    try:
        page = source.fetch(FetchRequest("gmail", USER, None, {}, None))
    finally:
        source.close()
    expected = sim.fetch(FetchRequest("gmail", USER, None, {}, None))
    assert page.items == expected.items
    assert page.carry == expected.carry and not page.failed_ids
    assert page.quota_units == 1 + 5 + 5 * len(page.items)


def test_failing_gets_are_reported_and_retried_by_id(failing: EmulatorServer, mode: str) -> None:
    """With half the gets failing (500) and no retries left, the page still stores the rest and
    names the failed ids; a retry page fetches exactly those ids and keeps pagination where it
    was; after the last page it offers the carried cursor again."""
    source = _source(failing, mode)
    source.fetcher.max_retries = 0
    try:
        first = source.fetch(FetchRequest("gmail", USER, None, {}, None))
        assert first.failed_ids and first.items
        assert not {i.id for i in first.items} & set(first.failed_ids)
        source.fetcher.max_retries = 8
        retried = source.fetch(
            FetchRequest(
                "gmail",
                USER,
                None,
                {},
                first.next_page_token,
                first.carry,
                retry_ids=first.failed_ids,
            )
        )
        assert [i.id for i in retried.items] == list(first.failed_ids)
        assert retried.next_page_token == first.next_page_token and not retried.exhausted
        after_last = source.fetch(
            FetchRequest("gmail", USER, None, {}, None, first.carry, retry_ids=first.failed_ids[:1])
        )
        assert after_last.exhausted and after_last.cursor == {"historyId": first.carry["historyId"]}
    finally:
        source.close()


def test_a_batchs_refusals_keep_a_retry_in_0_s_as_a_hint() -> None:
    """The longest "Retry after" of a batch's refused parts is what the limiter is handed. A
    hint of 0 s (the window held the units again by the time the answer was read, as it does
    at any high quota) is a hint, not its absence: None would hold every caller queued on the
    project for the default pause instead."""
    assert _longer(None, None) is None
    assert _longer(None, 0.0) == 0.0
    assert _longer(0.0, None) == 0.0
    assert _longer(0.25, 0.5) == 0.5
    assert _longer(0.5, 0.0) == 0.5
