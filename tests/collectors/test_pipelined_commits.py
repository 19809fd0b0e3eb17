"""A page commits while the next one is fetched; a commit the ledger refuses ends the attempt
cleanly: the pages before it stay, nothing after it lands, and the grammar holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweepledger.collectors.protocol import FetchRequest, Item, Page
from sweepledger.collectors.runner import RunOptions, SweepRunner
from sweepledger.projections.api import check_ledger, read_status


class BadPageSource:
    """Three pages of two messages per subject; page `bad` carries a field no column holds,
    so the sink refuses it inside the commit (the fetch itself succeeds)."""

    url = "test://bad-page"

    def __init__(self, bad: int, subjects: int = 3) -> None:
        self.bad = bad
        self.subjects = [f"s{i}@example.com" for i in range(subjects)]

    def roster(self) -> list[str]:
        return self.subjects

    def units(self, service: str, subject: str) -> list[str] | None:
        return None

    def fetch(self, request: FetchRequest) -> Page:
        page = int(request.page_token or "1")
        fields = {"subject": f"page {page}"}
        if page == self.bad and request.subject == self.subjects[0]:
            fields["colour"] = "red"
        items = [Item(f"{request.subject}-{page}-{i}", fields) for i in range(2)]
        last = page == 3
        return Page(
            items,
            next_page_token=None if last else str(page + 1),
            exhausted=last,
            cursor={"historyId": "100"} if last else {},
        )

    def close(self) -> None:
        pass


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("bad", [1, 2, 3])
def test_a_refused_commit_ends_the_attempt_with_a_valid_ledger(
    tmp_path: Path, workers: int, bad: int
) -> None:
    """Page 1 refused: its START commits with the END. Page 2: page 1 stays. Page 3 (the
    exhausted page, committed with the cursor and END): no cursor. Every case checks clean,
    END counts equal the stored PAGE counts, and the other subjects complete."""
    db = tmp_path / "l.db"
    source = BadPageSource(bad)
    SweepRunner(
        db, source, RunOptions(source.url, ("gmail",), max_pages=None, workers=workers)
    ).run()  # type: ignore[arg-type]
    result = check_ledger(db)
    assert result.ok, [str(v) for v in result.violations]
    problems = read_status(db).problems
    assert [(p["subject"], p["state"]) for p in problems] == [("s0@example.com", "ERR:Internal")]
    with sqlite3.connect(db) as conn:
        kinds = [
            r[0]
            for r in conn.execute(
                "SELECT kind FROM events WHERE subject = 's0@example.com' ORDER BY seq"
            )
        ]
        stored = conn.execute(
            "SELECT COUNT(*) FROM gmail_messages WHERE subject_email = 's0@example.com'"
        ).fetchone()[0]
        others = conn.execute(
            "SELECT COUNT(*) FROM gmail_messages WHERE subject_email != 's0@example.com'"
        ).fetchone()[0]
    assert kinds == ["START"] + ["PAGE"] * (bad - 1) + ["CURSOR_SKIP", "END"]
    assert stored == 2 * (bad - 1)
    assert others == 2 * 3 * 2


def test_pages_land_in_order_with_concurrent_workers(tmp_path: Path) -> None:
    """With the writer thread, a pair's pages are stored in page order and the sweep converges."""
    db = tmp_path / "l.db"
    source = BadPageSource(bad=0, subjects=8)
    SweepRunner(db, source, RunOptions(source.url, ("gmail",), max_pages=None, workers=4)).run()  # type: ignore[arg-type]
    assert check_ledger(db, require_complete=True).ok
    with sqlite3.connect(db) as conn:
        for subject in source.subjects:
            pages = [
                r[0]
                for r in conn.execute(
                    "SELECT json_extract(data, '$.page') FROM events "
                    "WHERE kind = 'PAGE' AND subject = ? ORDER BY seq",
                    (subject,),
                )
            ]
            assert pages == [1, 2, 3]
