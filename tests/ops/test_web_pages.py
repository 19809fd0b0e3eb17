"""The web view's pages say what `sweep status` and `sweep log` say: operator flags, and
subjects compared in any letter case. Asked over HTTP of a `sweep serve` on loopback."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from sweepledger.collectors import operations
from sweepledger.collectors.runner import RunOptions, SweepRunner
from sweepledger.collectors.sim.source import SimSource
from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.model import since_text

if TYPE_CHECKING:
    from conftest import Ops

SOURCE = "sim://?subjects=3&page_size=5"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A COMPLETE sweep with one subject blocked before its pairs were swept, then one pair
    blocked and one subject paused after it closed (their pairs COMPLETE)."""
    db = tmp_path_factory.mktemp("web-pages") / "sweep.db"
    source = SimSource(SOURCE)
    options = RunOptions(source.url, ("gmail", "drive"), max_pages=None)
    stopped = threading.Event()
    stopped.set()  # the sweep opens (its roster is known) and no pair is attempted
    SweepRunner(db, source, options, stop=stopped).run()
    operations.block(db, "user3@example.com", None, "left the company")
    SweepRunner(db, source, options).run()
    operations.block(db, "user1@example.com", "gmail", "mailbox migrating")
    operations.pause(db, "USER2@example.com", "on leave")
    return db


@pytest.fixture(scope="module")
def server(ledger: Path, module_ops: Ops) -> Iterator[str]:
    """`sweep serve --port 0` of the ledger; its base URL."""
    proc, base = module_ops.serve(ledger, ledger.parent)
    try:
        yield base
    finally:
        proc.terminate()
        module_ops.finish(proc)


def _get(ops: Ops, url: str) -> tuple[int, str]:
    status, _, body = ops.get(url)
    return status, body.decode()


def _rows(html: str, section_id: str) -> list[list[str]]:
    """The body rows of the table in the section `section_id`, as the text of each cell."""
    found = re.search(f'<section id="{section_id}">(.*?)</section>', html, re.S)
    assert found, f"no section {section_id}"
    return [
        [unescape(re.sub("<[^>]+>", "", cell)) for cell in re.findall("<td>(.*?)</td>", row)]
        for row in re.findall("<tr>(.*?)</tr>", found.group(1))
        if "<td>" in row
    ]


def _status(ops: Ops, db: Path) -> Any:
    done = ops.run("status", "--db", str(db), "--json", cwd=db.parent)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)


def test_the_overview_lists_blocked_and_paused_subjects_as_status_does(
    server: str, ledger: Path, ops: Ops
) -> None:
    """The page and its live fragment list every BLOCKED and PAUSED line `sweep status` lists,
    with the scope, since when and the operator's reason, though the flagged pairs are
    COMPLETE."""
    status = _status(ops, ledger)
    every = "all services (gmail, drive)"
    expected = [
        ["BLOCKED", b["subject"], b["service"] or every, _since(b), b["reason"]]
        for b in status["blocked"]
    ] + [["PAUSED", p["subject"], every, _since(p), p["reason"]] for p in status["paused"]]
    assert [row[:3] + row[4:] for row in expected] == [
        ["BLOCKED", "user1@example.com", "gmail", "mailbox migrating"],
        ["BLOCKED", "user3@example.com", every, "left the company"],
        ["PAUSED", "user2@example.com", every, "on leave"],
    ]
    for path in ("/", "/partials/live"):
        code, html = _get(ops, server + path)
        assert code == 200
        assert _rows(html, "flags") == expected, path
        assert 'href="/pairs/gmail/user1@example.com"' in html


def _since(flag: dict[str, Any]) -> str:
    return since_text(flag["since"], flag["since_seq"])


@pytest.mark.parametrize(
    ("path", "line", "swept"),
    [
        ("/pairs/gmail/user1@example.com", "BLOCKED gmail: mailbox migrating", "COMPLETE"),
        ("/pairs/drive/user2@example.com", "PAUSED: on leave", "COMPLETE"),
        ("/pairs/gmail/user3@example.com", "BLOCKED (all services): left the company", None),
    ],
)
def test_a_flagged_pairs_page_shows_the_flag_and_its_reason(
    server: str, ledger: Path, ops: Ops, path: str, line: str, swept: str | None
) -> None:
    """A blocked or paused pair's page says BLOCKED or PAUSED with the reason, as `sweep
    status` does, and keeps the state its attempts left beside it; a pair blocked before it was
    ever swept has a page too (NOT_STARTED underneath)."""
    code, html = _get(ops, server + path)
    assert code == 200, html
    shown = re.search('<p class="flag"[^>]*>(.*?)</p>', html)
    assert shown
    flag, since, reason = re.fullmatch(
        r"(.*?) since (\S+ \S+ \(seq \d+\)): (.*)", unescape(re.sub("<[^>]+>", "", shown.group(1)))
    ).groups()
    assert f"{flag}: {reason}" == line
    status = _status(ops, ledger)
    assert since in [_since(f) for f in status["blocked"] + status["paused"]]
    fields = dict(_rows(html, "state"))
    assert fields["state"] == line.partition(" ")[0].rstrip(":")
    assert fields["swept_state"] == (swept or "NOT_STARTED")


def test_a_pair_is_found_whatever_the_letter_case_of_its_subject(
    server: str, ledger: Path, ops: Ops
) -> None:
    """`/pairs/<service>/<subject>` compares subjects case-folded, as `sweep log --subject`
    does: another spelling gives the same page (the ledger's spelling) and the same SWEEP lines
    the CLI prints; a subject the ledger does not know is still 404, and so is a service that
    is not one (though the subject's block names every service)."""
    code, exact = _get(ops, server + "/pairs/drive/user1@example.com")
    assert code == 200
    code, other = _get(ops, server + "/pairs/drive/User1@EXAMPLE.com")
    assert code == 200
    assert other == exact
    log = ops.run(
        "log", "--db", str(ledger), "--service", "drive", "--subject", "USER1@example.COM",
        cwd=ledger.parent,
    )  # fmt: skip
    assert log.returncode == 0 and log.stdout.count("\n") > 4, log.stderr
    shown = re.search("<pre>(.*?)</pre>", other, re.S)
    assert shown and unescape(shown.group(1)) + "\n" == log.stdout
    assert _get(ops, server + "/pairs/drive/USER9@example.com")[0] == 404
    assert _get(ops, server + "/pairs/docs/User3@example.com")[0] == 404


@pytest.mark.parametrize("stale", ["behind the head", "older version"])
def test_a_pairs_page_folds_the_events_when_the_tables_are_stale(
    server: str, ledger: Path, ops: Ops, tmp_path: Path, stale: str
) -> None:
    """A read-only view never rebuilds the projection tables: when they are behind the head (an
    event appended without them) or of an older projection version, a pair's page folds the
    events instead, as `sweep status` does: it shows the new flag, and the state and cursors
    the current tables give."""
    db = tmp_path / "sweep.db"
    db.write_bytes(ledger.read_bytes())
    store = SqliteStore.open(db)  # no projector: the tables are not kept up to date
    try:
        with store.transaction() as tx:
            data = {"subject": "user1@example.com", "service": "drive", "reason": "moved"}
            tx.append(NewEvent(EventKind.BLOCK, subject="user1@example.com", data=data))
        if stale == "older version":
            store.conn.execute("UPDATE meta SET value = '1' WHERE key = 'projection_version'")
            store.conn.execute("ALTER TABLE operator_flags DROP COLUMN ts")
            store.conn.commit()
    finally:
        store.close()
    [(block_seq,)] = ops.query(db, "SELECT max(seq) FROM events")
    proc, base = ops.serve(db, tmp_path)
    try:
        code, html = _get(ops, base + "/pairs/drive/USER1@example.com")
    finally:
        proc.terminate()
        ops.finish(proc)
    assert code == 200, html
    shown = re.search('<p class="flag"[^>]*>(.*?)</p>', html)
    assert shown, html
    assert re.fullmatch(
        rf"BLOCKED drive since \S+ \S+ \(seq {block_seq}\): moved",
        unescape(re.sub("<[^>]+>", "", shown.group(1))),
    )
    current = _get(ops, server + "/pairs/drive/user1@example.com")[1]
    fields, before = dict(_rows(html, "state")), dict(_rows(current, "state"))
    assert before["state"] == "COMPLETE"
    assert (fields["state"], fields["swept_state"]) == ("BLOCKED", "COMPLETE")
    assert _rows(html, "cursors") == _rows(current, "cursors") != []
