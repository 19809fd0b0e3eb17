"""`check_events` / `check_store`: valid ledgers pass; each broken rule is named at its seq."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import pytest

from sweepledger.ledger.events import EventKind
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.check import check_events, check_store

from .builder import Recorder, as_events, valid_ledger

A, B = "ana@corp.example", "Bob@corp.example"


def opened(
    services: tuple[str, ...] = ("gmail", "drive"), roster: tuple[str, ...] = (A, B)
) -> Recorder:
    """A ledger with run-1 started and sweep-1 opened over `roster` x `services`."""
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open(roster, services)
    return rec


def named(rec: Recorder, live: Collection[str] = ()) -> list[tuple[int, str]]:
    """(seq, rule) of every violation `check_events` finds."""
    return [(v.seq, v.rule) for v in check_events(rec.events, live).violations]


# -- valid ledgers ---------------------------------------------------------------------------------


def test_generated_valid_ledgers_have_no_violation() -> None:
    """200 seeded random ledgers (sweeps, runs, kills, resets, units, operator events) all pass."""
    failures = {}
    for seed in range(200):
        news, live = valid_ledger(seed)
        result = check_events(as_events(news), live)
        if result.violations:
            failures[seed] = [str(v) for v in result.violations[:3]]
    assert failures == {}


def test_generator_exercises_every_event_kind() -> None:
    """The generated ledgers contain every event kind, so the valid-ledger test means something."""
    kinds = {str(n.kind) for seed in range(200) for n in valid_ledger(seed)[0]}
    assert kinds == {str(k) for k in EventKind}


def test_killed_run_closed_by_next_run_then_retried_is_valid() -> None:
    """A run killed mid-attempt, closed `aborted` by the next run that retries the pair, passes."""
    rec = opened()
    rec.start("gmail", A)
    rec.page("gmail", A, 5, exhausted=False)
    rec.run_end("aborted", "stale", run="run-1")
    rec.run_start("run-2")
    rec.complete("gmail", A, "1001")
    rec.run_end()
    assert named(rec) == []
    state = check_events(rec.events).state
    assert state.pairs[("gmail", A)].state == "COMPLETE"


# -- one violation at a time -----------------------------------------------------------------------


def test_page_without_start_is_a_grammar_violation() -> None:
    """A PAGE of a pair with no open attempt is named at its seq as `grammar`."""
    rec = opened()
    rec.complete("gmail", A, "1001")
    bad = rec.page("gmail", A, 0, exhausted=True)
    rec.run_end()
    assert named(rec) == [(bad, "grammar")]


def test_end_without_cursor_decision_is_a_grammar_violation() -> None:
    """An END with neither CURSOR_WRITE nor CURSOR_SKIP before it is named as `grammar`."""
    rec = opened()
    rec.start("gmail", A)
    rec.page("gmail", A, 4, exhausted=False)
    bad = rec.end("gmail", A, 4, partial=True)
    rec.run_end()
    assert named(rec) == [(bad, "grammar")]


def test_cursor_write_after_non_exhausted_page_is_a_gating_violation() -> None:
    """A CURSOR_WRITE whose attempt's last PAGE is not exhausted is named as `gating`."""
    rec = opened()
    rec.start("gmail", A)
    rec.page("gmail", A, 4, exhausted=True, page=1)
    rec.page("gmail", A, 4, exhausted=False, page=2)
    bad = rec.cursor_write("gmail", A, "1001")
    rec.end("gmail", A, 8, exhausted=True)
    rec.run_end()
    assert named(rec) == [(bad, "gating")]


def test_cursor_write_after_cursor_skip_is_a_grammar_violation() -> None:
    """A CURSOR_WRITE after the attempt already skipped its cursor is named as `grammar`."""
    rec = opened()
    rec.start("gmail", A)
    rec.page("gmail", A, 4, exhausted=True)
    rec.cursor_skip("gmail", A, "partial")
    bad = rec.cursor_write("gmail", A, "1001")
    rec.end("gmail", A, 4, partial=True)
    rec.run_end()
    assert named(rec) == [(bad, "grammar")]


@pytest.mark.parametrize(
    ("service", "first", "second"),
    [
        ("gmail", "1500", "1499"),
        ("gmail", "1000", "999"),
        ("drive", "2025-03-01T10:00:00.000Z", "2025-03-01T09:59:59.999Z"),
        ("drive", "2025-03-01T10:00:00+02:00", "2025-03-01T07:30:00Z"),
        ("chat", "2025-03-01T10:00:00.000001Z", "2025-03-01T10:00:00Z"),
    ],
)
def test_cursor_regression_without_reset_is_named(service: str, first: str, second: str) -> None:
    """A cursor written below its current value (by the key's own order) is a `regression`."""
    rec = opened(services=(service,))
    rec.start(service, A, [] if service == "chat" else None)
    rec.page(service, A, 1, exhausted=True)
    rec.cursor_write(service, A, first)
    rec.end(service, A, 1, exhausted=True)
    rec.start(service, A, [] if service == "chat" else None)
    rec.page(service, A, 1, exhausted=True)
    bad = rec.cursor_write(service, A, second)
    rec.end(service, A, 1, exhausted=True)
    rec.run_end()
    assert named(rec) == [(bad, "regression")]


@pytest.mark.parametrize(
    ("service", "first", "second"),
    [
        ("gmail", "999", "1000"),
        ("drive", "2025-03-01T10:00:00+02:00", "2025-03-01T09:00:00Z"),
        ("calendar", "sync-9", "sync-10"),
    ],
)
def test_cursor_order_is_the_keys_order_not_the_texts(
    service: str, first: str, second: str
) -> None:
    """Integers compare as integers, instants as instants and opaque tokens not at all."""
    rec = opened(services=(service,))
    rec.complete(service, A, first)
    rec.complete(service, A, second)
    rec.run_end()
    assert named(rec) == []


@pytest.mark.parametrize("where", ["between attempts", "inside the attempt"])
@pytest.mark.parametrize(
    ("service", "first", "second"),
    [("gmail", "1500", "1499"), ("drive", "2025-03-01T10:00:00Z", "2025-01-01T00:00:00Z")],
)
def test_cursor_reset_allows_a_lower_cursor(
    where: str, service: str, first: str, second: str
) -> None:
    """After a CURSOR_RESET of the pair the next cursor may be lower: no violation."""
    rec = opened(services=(service,))
    rec.complete(service, A, first)
    if where == "between attempts":
        rec.cursor_reset(service, A, "operator")
    rec.start(service, A)
    if where == "inside the attempt":
        rec.cursor_reset(service, A)
    rec.page(service, A, 1, exhausted=True)
    rec.cursor_write(service, A, second)
    rec.end(service, A, 1, exhausted=True)
    rec.run_end()
    assert named(rec) == []


def test_time_cursor_without_offset_is_refused_not_a_crash() -> None:
    """An instant without offset cannot be ordered against one with: named as a `regression`."""
    rec = opened(services=("drive",))
    rec.complete("drive", A, "2025-03-01T10:00:00Z")
    bad = rec.complete("drive", A, "2025-03-02T00:00:00") - 1
    rec.run_end()
    assert named(rec) == [(bad, "regression")]


def test_unit_cursor_regression_is_named() -> None:
    """A chat space's cursor written below its previous value is a `regression` too."""
    rec = opened(services=("chat",))
    for value in ("2025-05-01T00:00:00Z", "2025-04-01T00:00:00Z"):
        rec.start("chat", A, ["spaces/X"])
        rec.page("chat", A, 2, exhausted=True, unit="spaces/X")
        last = rec.cursor_write("chat", A, value, unit="spaces/X")
        rec.cursor_write("chat", A, "2025-05-01T00:00:00Z")
        rec.end("chat", A, 2, exhausted=True)
    rec.run_end()
    assert named(rec) == [(last, "regression")]


def test_end_count_differs_from_page_sum() -> None:
    """END.count that is not the sum of the attempt's PAGE counts is named as `count`."""
    rec = opened()
    rec.start("gmail", A)
    rec.page("gmail", A, 3, exhausted=False, page=1)
    rec.page("gmail", A, 4, exhausted=True, page=2)
    rec.cursor_write("gmail", A, "1001")
    bad = rec.end("gmail", A, 8, exhausted=True)
    rec.run_end()
    assert named(rec) == [(bad, "count")]


def test_start_while_the_pairs_attempt_is_open_is_an_overlap() -> None:
    """A second START of a pair whose attempt in a live run is still open is an `overlap`."""
    rec = opened()
    rec.start("gmail", A)
    rec.page("gmail", A, 3, exhausted=False)
    bad = rec.start("gmail", A)
    rec.page("gmail", A, 3, exhausted=True)
    rec.cursor_write("gmail", A, "1001")
    rec.end("gmail", A, 3, exhausted=True)
    rec.run_end()
    assert named(rec) == [(bad, "overlap")]


def test_start_in_a_second_run_while_the_first_holds_the_pair_is_an_overlap() -> None:
    """Two live runs attempting one pair at once: the second START is an `overlap`."""
    rec = opened()
    rec.start("gmail", A)
    rec.run_start("run-2")
    bad = rec.start("gmail", A)
    assert named(rec, live={"run-1", "run-2"}) == [(bad, "overlap")]


@pytest.mark.parametrize("kind", [EventKind.HEARTBEAT, EventKind.START])
def test_event_after_run_end_of_its_run(kind: EventKind) -> None:
    """An event of a run after that run's RUN_END is named as `run`."""
    rec = opened()
    rec.complete("gmail", A, "1001")
    rec.run_end()
    if kind is EventKind.START:
        bad = rec.start("gmail", B)
    else:
        bad = rec.add(kind, data={"pid": 1}, sweep=None)
    assert named(rec) == [(bad, "run")]


def test_run_never_ended_and_not_live() -> None:
    """A run with no RUN_END whose process is gone is named at its RUN_START as `run`."""
    rec = opened()
    rec.complete("gmail", A, "1001")
    assert named(rec) == [(1, "run")]


def test_run_never_ended_but_live_is_fine() -> None:
    """The same run listed as live (it holds the lock) is simply still running."""
    rec = opened()
    rec.complete("gmail", A, "1001")
    rec.start("gmail", B)
    assert named(rec, live={"run-1"}) == []


def test_sweep_closed_complete_while_a_pair_is_partial() -> None:
    """SWEEP_CLOSE complete while a pair is PARTIAL is named at the close as `complete`."""
    rec = opened(roster=(A,))
    rec.complete("gmail", A, "1001")
    rec.partial("drive", A)
    bad = rec.sweep_close("complete")
    rec.run_end()
    assert named(rec) == [(bad, "complete")]


def test_sweep_closed_complete_when_complete_is_fine() -> None:
    """SWEEP_CLOSE complete after every pair completed passes (blocked pairs left out)."""
    rec = opened(roster=(A, B))
    rec.operator(EventKind.BLOCK, B, "drive")
    for subject in (A, B):
        rec.complete("gmail", subject, "1001")
    rec.complete("drive", A, "2025-01-01T00:00:00Z")
    rec.sweep_close("complete")
    rec.run_end()
    assert named(rec) == []


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("page after skip", "grammar"),
        ("negative page count", "grammar"),
        ("unit cursor before its pages end", "gating"),
        ("pair cursor before every unit ended", "gating"),
        ("end ok after a skip", "gating"),
        ("pair event after the sweep closed", "sweep"),
        ("second run start", "run"),
        ("event of a run never started", "run"),
    ],
)
def test_other_rules_are_named(name: str, rule: str) -> None:
    """Each remaining rule of the checker names exactly the event that breaks it."""
    rec = opened(roster=(A,), services=("gmail", "chat"))
    if name == "page after skip":
        rec.start("gmail", A)
        rec.cursor_skip("gmail", A, "partial")
        bad = rec.page("gmail", A, 0, exhausted=True)
        rec.end("gmail", A, 0, partial=True)
    elif name == "negative page count":
        rec.start("gmail", A)
        bad = rec.page("gmail", A, -1, exhausted=True)
        rec.cursor_skip("gmail", A, "partial")
        rec.end("gmail", A, 0, partial=True)
    elif name == "unit cursor before its pages end":
        rec.start("chat", A, ["spaces/X"])
        rec.page("chat", A, 1, exhausted=False, unit="spaces/X")
        bad = rec.cursor_write("chat", A, "2025-01-01T00:00:00Z", unit="spaces/X")
        rec.cursor_skip("chat", A, "partial")
        rec.end("chat", A, 1, partial=True)
    elif name == "pair cursor before every unit ended":
        rec.start("chat", A, ["spaces/X", "spaces/Y"])
        rec.page("chat", A, 1, exhausted=True, unit="spaces/X")
        rec.cursor_write("chat", A, "2025-01-01T00:00:00Z", unit="spaces/X")
        rec.page("chat", A, 1, exhausted=False, unit="spaces/Y")
        bad = rec.cursor_write("chat", A, "2025-01-01T00:00:00Z")
        rec.end("chat", A, 2, exhausted=True)
    elif name == "end ok after a skip":
        rec.start("gmail", A)
        rec.page("gmail", A, 1, exhausted=True)
        rec.cursor_skip("gmail", A, "partial")
        bad = rec.end("gmail", A, 1)
    elif name == "pair event after the sweep closed":
        rec.sweep_close("abandoned")
        bad = rec.start("gmail", A)
    elif name == "second run start":
        bad = rec.run_start("run-1")
    else:
        bad = rec.start("gmail", A)
        rec.news[-1] = replace(rec.news[-1], run_id="run-ghost")
    rec.run_end(run="run-1")
    assert named(rec) == [(bad, rule)]


# -- the stored path -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [3, 17, 42])
def test_generated_ledgers_pass_check_store(tmp_path: Path, seed: int) -> None:
    """Valid ledgers appended through a real store (with and without projections) check clean."""
    news, live = valid_ledger(seed)
    with SqliteStore.open(tmp_path / "plain.db", create=True) as store:
        store.append(news)
        assert [str(v) for v in check_store(store, live).violations] == []
    store, _ = open_for_writing(tmp_path / "projected.db", create=True)
    with store:
        for new in news:
            store.append([new])
        assert [str(v) for v in check_store(store, live).violations] == []


def test_check_store_names_the_same_violation_as_check_events(fresh_db: SqliteStore) -> None:
    """A rule broken in a stored ledger is named at the same seq and rule as in memory."""
    rec = opened()
    rec.start("gmail", A)
    rec.page("gmail", A, 3, exhausted=True)
    rec.cursor_write("gmail", A, "1001")
    bad = rec.end("gmail", A, 2, exhausted=True)
    rec.run_end()
    fresh_db.append(rec.news)
    assert [(v.seq, v.rule) for v in check_store(fresh_db).violations] == [(bad, "count")]
    assert named(rec) == [(bad, "count")]


def test_tables_not_kept_by_the_projector_are_named(db_path: Path) -> None:
    """An append that bypassed the projector leaves tables that differ from a rebuild: named."""
    rec = opened()
    rec.complete("gmail", A, "1001")
    rec.run_end()
    store, _ = open_for_writing(db_path, create=True)
    with store:
        store.append(rec.news[:3])
    with SqliteStore.open(db_path) as plain:
        plain.append(rec.news[3:])
        violations = check_store(plain).violations
    assert {(v.seq, v.rule) for v in violations} == {
        (len(rec.news), "projection"),
        (len(rec.news), "anchor"),
    }


def test_check_reads_one_snapshot_while_a_run_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events appended while check runs (here: between reading the events and reading the
    projection tables) are not seen at all, so they are not reported as tampering."""
    from sweepledger.projections import check as check_module

    news, _ = valid_ledger(5)
    every_run = {str(e.run_id) for e in news if e.run_id}
    path = tmp_path / "ledger.db"
    writer, _ = open_for_writing(path, create=True)
    half = len(news) // 2
    writer.append(news[:half])
    reader = SqliteStore.open(path, readonly=True)
    real = check_module.stored_rows

    def a_run_appends_first(conn: object) -> object:
        writer.append(news[half:])
        return real(conn)  # type: ignore[arg-type]

    monkeypatch.setattr(check_module, "stored_rows", a_run_appends_first)
    try:
        assert [str(v) for v in check_store(reader, every_run).violations] == []
        assert writer.head() == len(news)
    finally:
        reader.close()
        writer.close()


def test_pages_that_do_not_say_what_they_added_are_not_counted(tmp_path: Path) -> None:
    """Rows of item tables are counted against the PAGE events' `created`; a ledger written
    before PAGE events carried it cannot be counted, so its pairs are left out rather than
    reported (the other rules still apply). `tests/collectors/test_item_audit.py` counts real
    sweeps."""
    rec = opened(("gmail",), (A,))
    rec.start("gmail", A)
    rec.page("gmail", A, 2, exhausted=True)
    rec.cursor_write("gmail", A, "10")
    rec.end("gmail", A, 2)
    rec.run_end("run-1")
    with SqliteStore.open(tmp_path / "old.db", create=True) as store:
        store.append(rec.news)
        store.conn.execute("CREATE TABLE gmail_messages (subject_email TEXT, id TEXT)")
        store.conn.execute(
            "INSERT INTO gmail_messages VALUES (?, 'm1'), (?, 'm2'), (?, 'm3')", (A, A, A)
        )
        store.conn.commit()
        page = store.conn.execute("SELECT data FROM events WHERE kind = 'PAGE'").fetchone()[0]
        assert "created" not in page
        assert check_store(store).violations == []
