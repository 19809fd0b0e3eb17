"""The demo workspace's data model: deterministic, generational, with Google-like cursors."""

from __future__ import annotations

import hashlib
import inspect
import os
import subprocess
import sys

import orjson
import pytest

from sweepledger.collectors.errors import CursorExpired, NotFound
from sweepledger.collectors.sim import calendar_data, chat_data, drive_data, gmail_data
from sweepledger.collectors.sim.common import parse_rfc3339, rfc3339
from sweepledger.collectors.sim.workspace import Workspace


def fingerprint(ws: Workspace) -> str:
    """A hash of every live item and every cursor of the workspace."""
    digest = hashlib.sha256()
    for subject in ws.roster():
        rows: list[object] = [("gmail", m.id, m.fields()) for m in ws.gmail_messages(subject)]
        rows += [("calendar", e.id, e.fields()) for e in ws.calendar_events(subject)]
        for space in ws.chat_spaces(subject):
            rows += [("chat", m.id, m.fields()) for m in ws.chat_messages(subject, space)]
        rows += [("drive", f.id, f.fields()) for f in ws.drive_files(subject)]
        rows += [ws.gmail_profile_history_id(subject), ws.calendar_sync_token(subject)]
        rows += [ws.drive_start_page_token(subject)]
        digest.update(orjson.dumps(rows, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def _clear_caches() -> None:
    for build in (
        gmail_data.build_mailbox,
        calendar_data.build_calendar,
        chat_data.build_chat,
        drive_data.build_drive,
    ):
        build.cache_clear()


def _live(ws: Workspace, subject: str) -> dict[str, dict[str, object]]:
    """Every live item of a subject, keyed by (service, id)."""
    found: dict[str, dict[str, object]] = {}
    found.update({f"gmail/{m.id}": m.fields() for m in ws.gmail_messages(subject)})
    found.update({f"calendar/{e.id}": e.fields() for e in ws.calendar_events(subject)})
    for space in ws.chat_spaces(subject):
        found.update({f"chat/{m.id}": m.fields() for m in ws.chat_messages(subject, space)})
    found.update({f"drive/{f.id}": f.fields() for f in ws.drive_files(subject)})
    return found


def test_two_instances_hold_the_same_data() -> None:
    """Two workspaces built from the same parameters are identical, item for item."""
    first = fingerprint(Workspace(subjects=4, seed=3, generation=2))
    _clear_caches()
    assert fingerprint(Workspace(subjects=4, seed=3, generation=2)) == first
    assert fingerprint(Workspace(subjects=4, seed=4, generation=2)) != first


def test_another_process_computes_the_same_workspace() -> None:
    """A subprocess with a different hash seed hashes every item of the workspace identically."""
    code = "\n".join(
        [
            "import hashlib, orjson",
            "from sweepledger.collectors.sim.workspace import Workspace",
            inspect.getsource(fingerprint),
            "print(fingerprint(Workspace(subjects=3, seed=7, generation=2)))",
        ]
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    expected = fingerprint(Workspace(subjects=3, seed=7, generation=2))
    assert done.stdout.strip() == expected


def test_a_generation_does_not_depend_on_the_path_to_it() -> None:
    """Generation 3 is the same whether computed directly or after generations 1 and 2."""
    _clear_caches()
    direct = fingerprint(Workspace(subjects=3, generation=3))
    _clear_caches()
    for generation in (1, 2):
        fingerprint(Workspace(subjects=3, generation=generation))
    assert fingerprint(Workspace(subjects=3, generation=3)) == direct


@pytest.mark.parametrize(
    ("count", "first", "last"),
    [
        (5, "user1@example.com", "user5@example.com"),
        (20, "user01@example.com", "user20@example.com"),
        (100, "user001@example.com", "user100@example.com"),
    ],
)
def test_roster_is_zero_padded_to_the_count_and_sorted(count: int, first: str, last: str) -> None:
    """Subjects are userNN@example.com padded to the count's width, in case-folded order."""
    roster = Workspace(subjects=count).roster()
    assert (len(roster), roster[0], roster[-1]) == (count, first, last)
    assert roster == sorted(roster, key=str.casefold)
    assert Workspace(subjects=count).is_subject(last.upper())
    assert not Workspace(subjects=count).is_subject(f"user{count + 1}@example.com")


def test_default_workspace_is_a_few_thousand_items_in_every_pair() -> None:
    """Every pair has items, most fit in 1-5 pages of 25, a few are bigger; 2 000-6 000 in all."""
    ws = Workspace()
    sizes = []
    for subject in ws.roster():
        spaces = ws.chat_spaces(subject)
        assert 1 <= len(spaces) <= 4
        assert spaces == sorted(spaces)
        assert all(s.startswith("spaces/") and ws.chat_messages(subject, s) for s in spaces)
        sizes += [len(ws.gmail_messages(subject)), len(ws.calendar_events(subject))]
        sizes += [len(ws.drive_files(subject))]
        sizes += [sum(len(ws.chat_messages(subject, s)) for s in spaces)]
    assert min(sizes) >= 1
    assert 2_000 <= sum(sizes) <= 6_000
    big = [n for n in sizes if n > 5 * 25]
    assert 1 <= len(big) <= len(sizes) // 4


def test_later_generation_adds_changes_and_deletes_in_every_service() -> None:
    """Generation 2 adds to every pair and changes and deletes in gmail, calendar and drive."""
    before, after = Workspace(subjects=6, generation=1), Workspace(subjects=6, generation=2)
    changed = {"gmail": 0, "calendar": 0, "drive": 0}
    deleted = dict(changed)
    for subject in before.roster():
        old, new = _live(before, subject), _live(after, subject)
        for service in ("gmail", "calendar", "chat", "drive"):
            assert any(k.startswith(service) for k in new.keys() - old.keys()), (service, subject)
        for key in old.keys() & new.keys():
            if old[key] != new[key]:
                changed[key.split("/")[0]] += 1
        for key in old.keys() - new.keys():
            deleted[key.split("/")[0]] += 1
    assert all(changed.values()), changed
    assert all(deleted.values()), deleted


def test_activity_falls_inside_its_generation_window() -> None:
    """New items of generation 2 happen in its week and nothing happens after the week's end."""
    ws = Workspace(subjects=4, generation=2)
    start, end = ws.window()
    assert rfc3339(start) == "2026-01-12T00:00:00.000Z"
    for subject in ws.roster():
        old = _live(Workspace(subjects=4, generation=1), subject).keys()
        times = {f"gmail/{m.id}": m.internal_date for m in ws.gmail_messages(subject)}
        times |= {f"calendar/{e.id}": e.updated for e in ws.calendar_events(subject)}
        for space in ws.chat_spaces(subject):
            times |= {f"chat/{m.id}": m.create_time for m in ws.chat_messages(subject, space)}
        times |= {f"drive/{f.id}": f.changed_at for f in ws.drive_files(subject)}
        assert max(times.values()) < end
        assert all(start <= at < end for key, at in times.items() if key not in old)


def test_gmail_history_ids_only_grow() -> None:
    """Every change gets a higher history id; the profile's historyId is the largest."""
    ws1, ws2 = Workspace(subjects=3, generation=1), Workspace(subjects=3, generation=2)
    for subject in ws2.roster():
        ids = [record.id for record in ws2.gmail_history(subject, 0)]
        assert ids == sorted(set(ids))
        assert ids[-1] == ws2.gmail_profile_history_id(subject)
        assert ws2.gmail_profile_history_id(subject) > ws1.gmail_profile_history_id(subject)
        assert all(m.history_id <= ids[-1] for m in ws2.gmail_messages(subject))
        later = ws2.gmail_history(subject, ws1.gmail_profile_history_id(subject))
        assert {r.type for r in later} <= set(gmail_data.HISTORY_TYPES)
        assert "messageAdded" in {r.type for r in later}


def test_gmail_lists_newest_first_and_calendar_by_updated() -> None:
    """Listings follow Google's order: Gmail newest first, Calendar by updated, Chat by time."""
    ws = Workspace(subjects=2)
    subject = ws.roster()[0]
    dates = [m.internal_date for m in ws.gmail_messages(subject)]
    assert dates == sorted(dates, reverse=True)
    updated = [e.updated for e in ws.calendar_events(subject)]
    assert updated == sorted(updated)
    for space in ws.chat_spaces(subject):
        created = [m.create_time for m in ws.chat_messages(subject, space)]
        assert created == sorted(created)


def test_drive_old_upload_is_in_the_changes_feed_but_not_after_the_modified_time() -> None:
    """Each subject's old-time upload of generation 2 is a change a modifiedTime filter misses."""
    ws1, ws2 = Workspace(subjects=4, generation=1), Workspace(subjects=4, generation=2)
    for subject in ws2.roster():
        high_water = max(f.modified_time for f in ws1.drive_files(subject))
        feed = ws2.drive_changes(subject, ws1.drive_start_page_token(subject))
        old_uploads = [f for f in feed if f.id not in ws1.drive(subject).by_id]
        old_uploads = [f for f in old_uploads if f.modified_time < high_water]
        assert len(old_uploads) == 1
        by_time = {f.id for f in ws2.drive_files(subject) if f.modified_time > high_water}
        assert old_uploads[0].id not in by_time


def test_sync_tokens_are_bound_to_subject_and_generation() -> None:
    """A calendar or drive token of another subject, a later generation or garbage is refused."""
    ws2, ws3 = Workspace(subjects=3, generation=2), Workspace(subjects=3, generation=3)
    one, two = ws2.roster()[:2]
    assert ws2.calendar_changes(one, ws2.calendar_sync_token(one)) == []
    with pytest.raises(CursorExpired, match="not issued"):
        ws2.calendar_changes(two, ws2.calendar_sync_token(one))
    with pytest.raises(CursorExpired, match="generation 3"):
        ws2.drive_changes(one, ws3.drive_start_page_token(one))
    with pytest.raises(CursorExpired):
        ws2.drive_changes(one, "garbage")
    with pytest.raises(CursorExpired):
        ws2.gmail_history(one, ws3.gmail_profile_history_id(one))
    with pytest.raises(NotFound):
        ws2.gmail_messages("nobody@example.com")


def test_chat_since_is_inclusive() -> None:
    """Messages at exactly `since` are returned, so a boundary message is re-delivered."""
    ws = Workspace(subjects=2)
    subject = ws.roster()[0]
    space = ws.chat_spaces(subject)[0]
    messages = ws.chat_messages(subject, space)
    boundary = messages[len(messages) // 2]
    since = ws.chat_messages(subject, space, boundary.create_time)
    assert since[0] == boundary
    assert len(since) == len(messages) - len(messages) // 2


def test_timestamps_render_as_rfc3339_utc() -> None:
    """Chat times carry microseconds, the others milliseconds, all UTC with Z, and parse back."""
    ws = Workspace(subjects=2)
    subject = ws.roster()[0]
    chat = ws.chat_messages(subject, ws.chat_spaces(subject)[0])[0]
    assert len(chat.fields()["create_time"]) == len("2026-01-05T00:00:00.000000Z")
    assert parse_rfc3339(chat.fields()["create_time"]) == chat.create_time
    drive = ws.drive_files(subject)[0].fields()["modified_time"]
    assert len(drive) == len("2026-01-05T00:00:00.000Z")
    assert drive.endswith("Z")
    assert parse_rfc3339("2026-01-05T01:00:00+01:00") == parse_rfc3339("2026-01-05T00:00:00Z")
