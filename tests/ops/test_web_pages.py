"""The web view's pages say what `sweep status` says: the operator flags. Asked over HTTP of a
`sweep serve` on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from sweepledger.collectors import operations
from sweepledger.collectors.runner import RunOptions, SweepRunner
from sweepledger.collectors.sim.source import SimSource

if TYPE_CHECKING:
    from conftest import Ops

SOURCE = "sim://?subjects=3&page_size=5"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A COMPLETE sweep with one subject blocked before its pairs were swept, then one pair
    blocked and one subject paused after it closed (their pairs COMPLETE)."""
    db = tmp_path_factory.mktemp("web-pages") / "sweep.db"
    source = SimSource(SOURCE)
    for subjects in (("user1@example.com", "user2@example.com"), None):
        options = RunOptions(source.url, ("gmail", "drive"), subjects=subjects, max_pages=None)
        SweepRunner(db, source, options).run()
        operations.block(db, "user3@example.com", None, "left the company")
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
    with the scope and the operator's reason, though the flagged pairs are COMPLETE."""
    status = _status(ops, ledger)
    expected = [
        ["BLOCKED", b["subject"], b["service"] or "all services (gmail, drive)", b["reason"]]
        for b in status["blocked"]
    ] + [
        ["PAUSED", p["subject"], "all services (gmail, drive)", p["reason"]]
        for p in status["paused"]
    ]
    assert expected == [
        ["BLOCKED", "user1@example.com", "gmail", "mailbox migrating"],
        ["BLOCKED", "user3@example.com", "all services (gmail, drive)", "left the company"],
        ["PAUSED", "user2@example.com", "all services (gmail, drive)", "on leave"],
    ]
    for path in ("/", "/partials/live"):
        code, html = _get(ops, server + path)
        assert code == 200
        assert _rows(html, "flags") == expected, path
        assert 'href="/pairs/gmail/user1@example.com"' in html
