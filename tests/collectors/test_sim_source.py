"""`SimSource`: paging, cursors, incremental syncs, page tokens, faults and retries."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sweepledger.collectors.errors import (
    CollectorError,
    CursorExpired,
    Forbidden,
    Internal,
    InvalidPageToken,
    NotFound,
    RateLimited,
    SourceConfigError,
    Transient,
)
from sweepledger.collectors.protocol import SERVICES, FetchRequest, Item, Page
from sweepledger.collectors.sim.common import parse_rfc3339
from sweepledger.collectors.sim.source import SimSource
from sweepledger.collectors.sink import COLUMNS

Snapshot = dict[str, Mapping[str, Any]]


def drain(
    source: SimSource,
    service: str,
    subject: str,
    unit: str | None = None,
    *,
    cursor: Mapping[str, str] | None = None,
    since: str | None = None,
) -> tuple[list[Item], dict[str, str], list[Page]]:
    """Page one pass to exhaustion as a runner would: items, final cursor, pages."""
    token: str | None = None
    carry: Mapping[str, str] = {}
    items: list[Item] = []
    pages: list[Page] = []
    while True:
        request = FetchRequest(
            service, subject, unit, dict(cursor or {}), token, carry, since=since
        )
        page = source.fetch(request)
        pages.append(page)
        items += page.items
        if page.exhausted:
            return items, dict(page.cursor), pages
        token, carry = page.next_page_token, page.carry


def streams(source: SimSource, service: str, subject: str) -> list[str | None]:
    """The units of a pair, or [None] for a pair without units."""
    return list(source.units(service, subject) or [None])


def full_snapshot(
    source: SimSource, service: str, subject: str
) -> tuple[Snapshot, dict[str | None, dict[str, str]]]:
    """Every live item of a pair after a full sync, and the cursor of each stream."""
    snapshot: Snapshot = {}
    cursors = {}
    for unit in streams(source, service, subject):
        items, cursors[unit], _ = drain(source, service, subject, unit)
        assert not any(item.deleted for item in items)
        snapshot.update({item.id: item.fields for item in items})
    return snapshot, cursors


def first_request(
    source: SimSource, service: str = "gmail", subject: str = "", **changes: Any
) -> FetchRequest:
    """The first page request of a full sync of `subject` (by default the first)."""
    subject = subject or source.roster()[0]
    unit = streams(source, service, subject)[0]
    fields: dict[str, Any] = {"cursor": {}, "page_token": None, **changes}
    return FetchRequest(service, subject, unit, **fields)


@pytest.mark.parametrize("service", SERVICES)
def test_full_sync_pages_every_item_exactly_once(service: str) -> None:
    """Paging a full sync to exhaustion yields the workspace's listing, once each, in full pages."""
    source = SimSource("sim://?subjects=3&page_size=7")
    ws = source.workspace
    for subject in source.roster():
        for unit in streams(source, service, subject):
            items, cursor, pages = drain(source, service, subject, unit)
            if service == "gmail":
                expected = [m.id for m in ws.gmail_messages(subject)]
            elif service == "calendar":
                expected = [e.id for e in ws.calendar_events(subject)]
            elif service == "chat":
                expected = [m.id for m in ws.chat_messages(subject, str(unit))]
            else:
                expected = [f.id for f in ws.drive_files(subject)]
            assert [item.id for item in items] == expected
            assert len(pages) == max(1, math.ceil(len(expected) / 7))
            assert [page.exhausted for page in pages] == [False] * (len(pages) - 1) + [True]
            assert all(len(page.items) == 7 for page in pages[:-1])
            assert pages[-1].next_page_token is None
            assert cursor
            assert all(not page.cursor for page in pages[:-1])


@pytest.mark.parametrize("service", SERVICES)
def test_incremental_yields_exactly_what_changed_between_generations(service: str) -> None:
    """From a generation-1 cursor, generation 2 yields the full listings' difference, no more."""
    gen1, gen2 = (
        SimSource("sim://?subjects=4&page_size=5"),
        SimSource("sim://?subjects=4&generation=2"),
    )
    for subject in gen1.roster():
        before, cursors = full_snapshot(gen1, service, subject)
        after, _ = full_snapshot(gen2, service, subject)
        expected = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        applied, touched = dict(before), []
        for unit in streams(gen2, service, subject):
            items, _, _ = drain(gen2, service, subject, unit, cursor=cursors[unit])
            touched += [item.id for item in items]
            for item in items:
                if item.deleted:
                    applied.pop(item.id)
                else:
                    applied[item.id] = item.fields
        assert applied == after
        assert expected - before.keys()
        if service == "chat":
            for space in streams(gen1, service, subject):
                in_space = {k: v for k, v in before.items() if v["space"] == space}
                expected.add(max(in_space, key=lambda k: str(in_space[k]["create_time"])))
        assert sorted(touched) == sorted(expected)


def test_gmail_cursor_is_the_history_id_read_before_listing() -> None:
    """The first page carries the profile historyId; the last page writes it as the cursor."""
    source = SimSource("sim://?subjects=2&page_size=10")
    subject = source.roster()[0]
    _, cursor, pages = drain(source, "gmail", subject)
    history_id = str(source.workspace.gmail_profile_history_id(subject))
    assert pages[0].carry == {"historyId": history_id}
    assert cursor == {"historyId": history_id}
    assert pages[0].requests == 2 + len(pages[0].items)
    assert pages[0].quota_units == 1 + 5 + 5 * len(pages[0].items)


def test_drive_cursor_never_moves_back_and_sees_the_old_upload() -> None:
    """Drive's cursor is last_modified_time then start_page_token; the old upload still arrives."""
    gen1, gen2 = SimSource("sim://?subjects=3"), SimSource("sim://?subjects=3&generation=2")
    subject = gen1.roster()[1]
    _, cursor1, pages = drain(gen1, "drive", subject)
    assert list(cursor1) == ["last_modified_time", "start_page_token"]
    assert pages[0].carry["start_page_token"] == cursor1["start_page_token"]
    listed = [f.modified_time for f in gen1.workspace.drive_files(subject)]
    assert parse_rfc3339(cursor1["last_modified_time"]) == max(listed)
    items, cursor2, _ = drain(gen2, "drive", subject, cursor=cursor1)
    older = [
        i
        for i in items
        if not i.deleted and i.fields["modified_time"] < cursor1["last_modified_time"]
    ]
    assert any(i.id not in gen1.workspace.drive(subject).by_id for i in older)
    assert cursor2["last_modified_time"] > cursor1["last_modified_time"]
    assert cursor2["start_page_token"] != cursor1["start_page_token"]
    _, cursor3, _ = drain(gen2, "drive", subject, cursor=cursor2)
    assert cursor3 == cursor2


def test_chat_incremental_redelivers_the_boundary_message() -> None:
    """Chat asks create_time >= cursor: the boundary message comes again, the cursor stays put."""
    source = SimSource("sim://?subjects=2")
    subject = source.roster()[0]
    space = streams(source, "chat", subject)[0]
    full, cursor, _ = drain(source, "chat", subject, space)
    again, same, _ = drain(source, "chat", subject, space, cursor=cursor)
    assert [item.id for item in again] == [full[-1].id]
    assert again[0].fields["create_time"] == cursor["last_create_time"]
    assert same == cursor


def test_calendar_sync_token_only_on_the_last_page() -> None:
    """Calendar's syncToken appears on the last page only; an empty change list is one page."""
    source = SimSource("sim://?subjects=2&page_size=5")
    subject = source.roster()[0]
    _, cursor, pages = drain(source, "calendar", subject)
    assert all("syncToken" not in page.carry for page in pages[:-1])
    assert cursor == {"syncToken": source.workspace.calendar_sync_token(subject)}
    items, again, pages = drain(source, "calendar", subject, cursor=cursor)
    assert (items, again, len(pages)) == ([], cursor, 1)


def test_since_bounds_a_full_sync() -> None:
    """With `since`, a full sync returns exactly the items at or after it and is exhausted."""
    source = SimSource("sim://?subjects=2&page_size=4")
    subject = source.roster()[0]
    since = "2025-12-01T00:00:00Z"
    items, cursor, pages = drain(source, "gmail", subject, since=since)
    bound = parse_rfc3339(since)
    expected = [m.id for m in source.workspace.gmail_messages(subject) if m.internal_date >= bound]
    assert [item.id for item in items] == expected
    assert pages[-1].exhausted
    assert cursor == {"historyId": str(source.workspace.gmail_profile_history_id(subject))}


def test_page_tokens_of_another_pair_or_workspace_are_refused() -> None:
    """A page token only continues the pass it came from; anything else is InvalidPageToken."""
    source = SimSource("sim://?subjects=3&page_size=5")
    one, two = source.roster()[:2]
    token = source.fetch(FetchRequest("gmail", one, None, {}, None)).next_page_token
    carry = {"historyId": "1"}
    assert source.fetch(FetchRequest("gmail", one, None, {}, token, carry)).items
    for request in (
        FetchRequest("gmail", two, None, {}, token, carry),
        FetchRequest("drive", one, None, {}, token, {"start_page_token": "x"}),
        FetchRequest("gmail", one, None, {"historyId": "5"}, token, carry),
        FetchRequest("gmail", one, None, {}, "garbage", carry),
        FetchRequest("gmail", one, None, {}, "5~0000000000", carry),
    ):
        with pytest.raises(InvalidPageToken):
            source.fetch(request)
    with pytest.raises(InvalidPageToken):
        SimSource("sim://?subjects=3&page_size=5&generation=2").fetch(
            FetchRequest("gmail", one, None, {}, token, carry)
        )


@pytest.mark.parametrize(
    ("knob", "error", "changes"),
    [
        ("rate_limit", RateLimited, {}),
        ("errors", Transient, {}),
        ("expire_tokens", InvalidPageToken, {"page_token": "TOKEN", "carry": {"historyId": "1"}}),
        ("expire_cursors", CursorExpired, {"cursor": "CURSOR"}),
    ],
)
def test_each_fault_fires_at_its_rate_and_a_retry_can_succeed(
    knob: str, error: type[CollectorError], changes: dict[str, Any]
) -> None:
    """Repeating one request, the knob's fault fires about p of the time; the others succeed."""
    clean = SimSource("sim://?subjects=2&page_size=5")
    if changes.get("page_token") == "TOKEN":
        changes["page_token"] = clean.fetch(first_request(clean)).next_page_token
    if changes.get("cursor") == "CURSOR":
        changes["cursor"] = drain(clean, "gmail", clean.roster()[0])[1]
    faulty = SimSource(f"sim://?subjects=2&page_size=5&{knob}=0.3")
    request = first_request(faulty, **changes)
    outcomes: list[CollectorError | None] = []
    for _ in range(400):
        try:
            faulty.fetch(request)
            outcomes.append(None)
        except CollectorError as raised:
            outcomes.append(raised)
    failures = [o for o in outcomes if o is not None]
    assert {type(f) for f in failures} == {error}
    assert 0.22 <= len(failures) / 400 <= 0.38
    if error is RateLimited:
        assert all(0.01 <= float(str(f.retry_after)) <= 0.05 for f in failures)
    assert outcomes.index(None) < 10


def test_faults_repeat_across_instances_and_differ_by_seed() -> None:
    """Two sources making the same requests see the same faults; another seed sees others."""

    def pattern(url: str) -> list[str]:
        source = SimSource(url)
        seen = []
        for subject in source.roster():
            for _ in range(5):
                try:
                    source.fetch(first_request(source, subject=subject))
                    seen.append("ok")
                except CollectorError as raised:
                    seen.append(raised.error_class)
        return seen

    url = "sim://?subjects=8&rate_limit=0.3&errors=0.2"
    assert pattern(url) == pattern(url)
    assert pattern(url) != pattern(url + "&seed=2")


def test_fault_counters_are_thread_safe() -> None:
    """Eight threads repeating one request see exactly the faults one thread would."""
    url = "sim://?subjects=2&rate_limit=0.5"

    def failures(source: SimSource, times: int) -> int:
        count = 0
        for _ in range(times):
            try:
                source.fetch(first_request(source))
            except RateLimited:
                count += 1
        return count

    sequential = failures(SimSource(url), 400)
    shared = SimSource(url)
    with ThreadPoolExecutor(8) as pool:
        parallel = sum(pool.map(lambda _: failures(shared, 50), range(8)))
    assert parallel == sequential


def test_suspended_subjects_are_forbidden_in_every_service() -> None:
    """Every fetch for a suspended subject raises Forbidden; other subjects are unaffected."""
    source = SimSource("sim://?subjects=3&suspended=USER2@example.com")
    for service in SERVICES:
        unit = streams(source, service, "user2@example.com")[0]
        with pytest.raises(Forbidden, match="suspended"):
            source.fetch(FetchRequest(service, "user2@example.com", unit, {}, None))
        drain(
            source, service, "user1@example.com", streams(source, service, "user1@example.com")[0]
        )


def test_item_errors_are_reported_and_retry_ids_fetch_them_again() -> None:
    """Failed items go to failed_ids; a retry page returns them without moving pagination."""
    source = SimSource("sim://?subjects=2&page_size=20&item_errors=0.3")
    subject = source.roster()[0]
    listing = [m.id for m in source.workspace.gmail_messages(subject)]
    token, carry, seen, failed_total = None, {}, [], 0
    while True:
        page = source.fetch(FetchRequest("gmail", subject, None, {}, token, carry))
        seen += [item.id for item in page.items]
        failed = list(page.failed_ids)
        failed_total += len(failed)
        assert set(failed).isdisjoint(item.id for item in page.items)
        for _ in range(20):
            if not failed:
                break
            retry = source.fetch(
                FetchRequest("gmail", subject, None, {}, page.next_page_token, page.carry, failed)
            )
            assert retry.next_page_token == page.next_page_token
            assert retry.exhausted == page.exhausted
            assert retry.cursor == page.cursor
            assert {i.id for i in retry.items} | set(retry.failed_ids) == set(failed)
            seen += [item.id for item in retry.items]
            failed = list(retry.failed_ids)
        assert not failed
        if page.exhausted:
            break
        token, carry = page.next_page_token, page.carry
    assert failed_total > 0
    assert sorted(seen) == sorted(listing)


def test_retry_of_a_deleted_item_is_a_tombstone() -> None:
    """Retrying an id the service no longer has returns a tombstone for it."""
    gen1, gen2 = SimSource("sim://?subjects=3"), SimSource("sim://?subjects=3&generation=2")
    subject = gen1.roster()[0]
    gone = {m.id for m in gen1.workspace.gmail_messages(subject)}
    gone -= {m.id for m in gen2.workspace.gmail_messages(subject)}
    live = gen2.workspace.gmail_messages(subject)[0].id
    page = gen2.fetch(FetchRequest("gmail", subject, None, {}, None, retry_ids=[*gone, live]))
    assert {i.id for i in page.items if i.deleted} == gone
    assert [i.id for i in page.items if not i.deleted] == [live]
    assert (page.exhausted, page.next_page_token, page.requests) == (False, None, len(gone) + 1)


def test_latency_sleeps_per_request() -> None:
    """latency_ms delays every fetch by at least that long."""
    source = SimSource("sim://?subjects=1&latency_ms=30")
    started = time.monotonic()
    source.fetch(first_request(source))
    assert time.monotonic() - started >= 0.03


def test_malformed_requests_are_refused_with_the_right_error() -> None:
    """Unknown subjects and spaces are NotFound; a chat fetch without a space is Internal."""
    source = SimSource("sim://?subjects=2")
    with pytest.raises(NotFound):
        source.fetch(FetchRequest("gmail", "user9@example.com", None, {}, None))
    with pytest.raises(NotFound):
        source.fetch(FetchRequest("chat", "user1@example.com", "spaces/nope", {}, None))
    with pytest.raises(Internal, match="unit"):
        source.fetch(FetchRequest("chat", "user1@example.com", None, {}, None))
    with pytest.raises(Internal, match="docs"):
        source.fetch(FetchRequest("docs", "user1@example.com", None, {}, None))
    token = source.fetch(first_request(source)).next_page_token
    with pytest.raises(Internal, match="carry"):
        source.fetch(FetchRequest("gmail", "user1@example.com", None, {}, token, {}))


def test_unusable_cursors_expire() -> None:
    """Cursors from a later generation or of the wrong shape raise CursorExpired."""
    gen1, gen2 = SimSource("sim://?subjects=2"), SimSource("sim://?subjects=2&generation=2")
    subject = gen1.roster()[0]
    for service in ("gmail", "calendar", "drive"):
        later = drain(gen2, service, subject)[1]
        with pytest.raises(CursorExpired):
            gen1.fetch(FetchRequest(service, subject, None, later, None))
    for cursor in ({"historyId": "abc"}, {"syncToken": "x"}):
        with pytest.raises(CursorExpired):
            gen1.fetch(FetchRequest("gmail", subject, None, cursor, None))
    with pytest.raises(CursorExpired):
        gen1.fetch(FetchRequest("drive", subject, None, {"last_modified_time": "x"}, None))


def test_units_are_the_sorted_chat_spaces() -> None:
    """Only chat has units: the subject's spaces, sorted."""
    source = SimSource("sim://?subjects=3")
    for subject in source.roster():
        spaces = source.units("chat", subject)
        assert spaces == sorted(source.workspace.chat_spaces(subject))
        assert spaces
        assert all(
            source.units(service, subject) is None for service in SERVICES if service != "chat"
        )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sim://?bogus=1", "unknown sim:// parameter 'bogus'"),
        ("sim://?subjects=abc", "subjects must be an integer from 1 to 100000"),
        ("sim://?subjects=0", "subjects must be an integer from 1 to 100000"),
        ("sim://?subjects=100001", "subjects must be an integer from 1 to 100000"),
        ("sim://?seed=-1", "seed must be an integer from 0"),
        ("sim://?page_size=1.5", "page_size must be an integer"),
        ("sim://?latency_ms=-5", "latency_ms must be an integer from 0"),
        ("sim://?generation=0", "generation must be an integer from 1"),
        ("sim://?rate_limit=1.5", "rate_limit must be a probability from 0 to 1"),
        ("sim://?errors=-0.1", "errors must be a probability"),
        ("sim://?item_errors=nan", "item_errors must be a probability"),
        ("sim://?expire_tokens=lots", "expire_tokens must be a probability"),
        ("sim://?suspended=not-an-email", "'not-an-email' is not an email"),
        ("sim://?subjects=5&suspended=user9@example.com", "not a subject of this workspace"),
        ("sim://?seed=1&seed=2", "seed is given more than once"),
        ("sim://host", "takes only query parameters"),
        ("http://?seed=1", "not a sim:// URL"),
    ],
)
def test_invalid_urls_name_the_parameter(url: str, message: str) -> None:
    """Each invalid sim:// URL raises SourceConfigError naming what is wrong and what is allowed."""
    with pytest.raises(SourceConfigError, match=message.replace("?", r"\?")) as raised:
        SimSource(url)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("spellings", "canonical"),
    [
        (["sim://", "sim://?", "sim:///", "sim://?subjects=20&seed=1&page_size=25"], "sim://"),
        (["sim://?subjects=5&seed=2", "sim://?seed=2&subjects=5"], "sim://?seed=2&subjects=5"),
        (["sim://?rate_limit=0.50", "sim://?rate_limit=.5"], "sim://?rate_limit=0.5"),
        (["sim://?errors=1", "sim://?errors=1.0"], "sim://?errors=1"),
        (
            ["sim://?suspended=user02@example.com,USER01@example.com,user02@example.com"],
            "sim://?suspended=user01@example.com,user02@example.com",
        ),
    ],
)
def test_url_is_canonical(spellings: list[str], canonical: str) -> None:
    """Spellings of the same workspace share one canonical URL, which parses to itself."""
    assert {SimSource(url).url for url in spellings} == {canonical}
    assert SimSource(canonical).url == canonical


@pytest.mark.parametrize("service", SERVICES)
def test_items_carry_exactly_the_item_table_columns(service: str) -> None:
    """Every live item's fields are columns of its table, and together they fill every column."""
    source = SimSource("sim://?subjects=3")
    seen: set[str] = set()
    for subject in source.roster():
        for unit in streams(source, service, subject):
            for item in drain(source, service, subject, unit)[0]:
                assert set(item.fields) <= set(COLUMNS[service])
                assert None not in item.fields.values()
                seen |= set(item.fields)
    assert seen == set(COLUMNS[service])
