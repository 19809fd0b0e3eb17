"""The write-through tables always equal a rebuild of the fold from seq 1."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweepledger.collectors.runner import RunOptions, SweepRunner
from sweepledger.collectors.sim.source import SimSource
from sweepledger.ledger.events import EventKind
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.check import check_store
from sweepledger.projections.completeness import completeness
from sweepledger.projections.fold import fold
from sweepledger.projections.model import SERVICES, subject_order
from sweepledger.projections.parallel import fold_parallel
from sweepledger.projections.status import build_report, gather_from_state, gather_from_tables
from sweepledger.projections.tables import load_sweep, state_rows, stored_rows

from .builder import Recorder, valid_ledger

A, B = "ana@corp.example", "Bob@corp.example"


def open_writer(path: Path, *, create: bool = False) -> SqliteStore:
    """`open_for_writing`, without fsync per append: durability is not what these tests check."""
    store, _ = open_for_writing(path, create=create)
    store.conn.execute("PRAGMA synchronous = OFF")
    return store


def assert_tables_match_rebuild(store: SqliteStore) -> None:
    state = fold(store.read())
    assert stored_rows(store.conn) == state_rows(state), f"after seq {store.head()}"


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    batches=st.lists(st.integers(1, 12), min_size=1, max_size=40),
    reopen=st.booleans(),
)
def test_incremental_tables_equal_rebuild_after_every_append(
    seed: int, batches: list[int], reopen: bool
) -> None:
    """Appending a valid ledger in random batches keeps every table equal to a fresh fold."""
    news, _ = valid_ledger(seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.db"
        store = open_writer(path, create=True)
        done, turn = 0, 0
        try:
            while done < len(news):
                size = batches[turn % len(batches)]
                store.append(news[done : done + size])
                done, turn = done + size, turn + 1
                assert_tables_match_rebuild(store)
                if reopen and turn % 3 == 0:
                    store.close()
                    store = open_writer(path)
        finally:
            store.close()


def test_demo_sweep_tables_equal_in_memory_fold(tmp_path: Path) -> None:
    """A real runner's sweep of the demo workspace leaves tables equal to an in-memory fold."""
    url = "sim://?subjects=3"
    db = tmp_path / "demo.db"
    for max_pages in (2, None):
        options = RunOptions(source_url=url, services=SERVICES, max_pages=max_pages, seed=1)
        SweepRunner(db, SimSource(url), options).run()
    with SqliteStore.open(db, readonly=True) as store:
        assert_tables_match_rebuild(store)
        assert check_store(store).ok
        state = fold(store.read())
    assert state.sweep is not None
    assert state.sweep.closed == "complete"
    assert {row.state for row in state.pairs.values()} == {"COMPLETE"}
    assert len(state.runs) == 2


def test_projection_tables_rebuilt_when_their_version_changes(db_path: Path) -> None:
    """Tables of another projection version are rebuilt from the events when a writer opens."""
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open([A, B], ["gmail"])
    rec.complete("gmail", A, "1001")
    with SqliteStore.open(db_path, create=True) as plain:
        plain.append(rec.news)
        plain.conn.execute("CREATE TABLE pair_state (junk TEXT)")
        plain.conn.execute("INSERT INTO meta VALUES ('projection_version', 'old')")
    store, _ = open_for_writing(db_path)
    with store:
        assert_tables_match_rebuild(store)
        assert store.get_meta("projection_version") != "old"


def test_closing_and_opening_sweeps_in_one_append_keeps_the_old_sweep_row(
    db_path: Path,
) -> None:
    """SWEEP_CLOSE abandoned and the next SWEEP_OPEN in one transaction: the old row says so."""
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open([A], ["gmail"])
    rec.partial("gmail", A)
    rec.run_end()
    first = len(rec.news)
    rec.run_start("run-2", "sweep-2")
    rec.sweep_close("abandoned", sweep="sweep-1")
    rec.sweep_open([A], ["gmail"])
    store, _ = open_for_writing(db_path, create=True)
    with store:
        store.append(rec.news[:first])
        store.append(rec.news[first:])
        assert_tables_match_rebuild(store)
        closed = store.conn.execute(
            "SELECT closed, closed_seq FROM sweeps WHERE sweep_id = 'sweep-1'"
        ).fetchone()
    assert closed == ("abandoned", first + 2)


def test_pairs_finishing_in_the_append_that_opens_the_next_sweep_count_in_the_old_one(
    db_path: Path,
) -> None:
    """A pair completes, its run ends and the next sweep opens (the old one left open), all in
    one transaction: the old sweep's counters include that pair (the counters settle before the
    new sweep opens)."""
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open([A, B], ["gmail"])
    first = len(rec.news)
    rec.complete("gmail", A, "100")
    rec.run_end()
    rec.run_start("run-2", "sweep-2")
    rec.sweep_open([A, B], ["gmail"])
    store, _ = open_for_writing(db_path, create=True)
    with store:
        store.append(rec.news[:first])
        store.append(rec.news[first:])
        assert_tables_match_rebuild(store)
        old = dict(
            store.conn.execute(
                "SELECT key, value FROM sweep_counters WHERE sweep_id = 'sweep-1'"
            ).fetchall()
        )
    assert old["complete:gmail"] == 1


def test_a_rolled_back_append_leaves_tables_and_projector_in_step(db_path: Path) -> None:
    """An append that fails after the projector folded it leaves no trace in tables or state."""
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open([A, B], ["gmail"])
    store, projector = open_for_writing(db_path, create=True)
    with store:
        store.append(rec.news)

        def fail(conn: object, events: object) -> None:
            raise RuntimeError("disk full")

        store.hooks.append(fail)
        extra = Recorder(run_id="run-1", sweep_id="sweep-1")
        extra.complete("gmail", A, "1001")
        with pytest.raises(RuntimeError, match="disk full"):
            store.append(extra.news)
        store.hooks.remove(fail)
        assert store.head() == len(rec.news)
        extra.run_end()
        store.append(extra.news[-1:])
        assert_tables_match_rebuild(store)
        assert ("gmail", A) not in projector.state.pairs
        assert projector.state.head == store.head()
        assert projector.state.runs["run-1"].status == "completed"


def test_problem_pairs_list_in_the_folds_order_from_the_tables(db_path: Path) -> None:
    """`status` lists problem pairs from the tables in the order a fold (`status --as-of`,
    replay) sorts them: case-folded subjects, including non-ASCII ones, which SQLite's
    `lower()` leaves as they are ("Émile" would sort after "zoe", "STRASSE" apart from "ß")."""
    subjects = [
        "zoe@corp.example",
        "Émile@corp.example",
        "émile@corp.example",
        "ßtrasse@corp.example",
        "STRASSE@corp.example",
        "Ωmega@corp.example",
        "anna@corp.example",
    ]
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open(subjects, ["gmail", "drive"])
    for subject in subjects:
        rec.partial("drive", subject)
        rec.error("gmail", subject)
    store, _ = open_for_writing(db_path, create=True)
    with store:
        store.append(rec.news)
        from_tables = gather_from_tables(store.conn).problems
        from_fold = gather_from_state(fold(store.read())).problems
    order = [(p.subject, p.service) for p in from_fold]
    assert [(p.subject, p.service) for p in from_tables] == order
    assert [s for s, _ in order[::2]] == sorted(subjects, key=subject_order)


@pytest.mark.parametrize("limit", [None, 1, 3])
def test_flagged_pairs_are_not_problems_and_the_count_says_so(
    db_path: Path, limit: int | None
) -> None:
    """A paused subject's or a blocked pair's partial progress is listed with its flag, not
    among the problem pairs, and the count of problems (which says how many the cut list left
    out) counts exactly what the list would hold, from the tables as from the fold."""
    subjects = ["a@corp.example", "b@corp.example", "c@corp.example", "d@corp.example"]
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open(subjects, ["gmail", "drive"])
    for subject in subjects:
        rec.partial("gmail", subject)
        rec.partial("drive", subject)
    rec.complete("gmail", "d@corp.example", "1001")
    rec.operator(EventKind.BLOCK, "a@corp.example")
    rec.operator(EventKind.BLOCK, "b@corp.example", "drive")
    rec.operator(EventKind.BLOCK, "c@corp.example", "gmail")
    rec.operator(EventKind.PAUSE, "c@corp.example")
    expected = [("b@corp.example", "gmail"), ("d@corp.example", "drive")]
    store, _ = open_for_writing(db_path, create=True)
    with store:
        store.append(rec.news)
        for gathered in (
            gather_from_tables(store.conn, problem_limit=limit),
            gather_from_state(fold(store.read()), problem_limit=limit),
        ):
            listed = [(p.subject, p.service) for p in gathered.problems]
            assert listed == expected[:limit]
            assert gathered.problems_found == len(expected)


def test_a_closed_sweep_keeps_the_figures_it_closed_with(db_path: Path) -> None:
    """Operator events after SWEEP_CLOSE (an unblock, a pause, a cursor reset) shape the next
    sweep: the closed sweep's figures stay those it closed with, all met for a COMPLETE one,
    whether read from the tables, folded in one pass or folded in parts."""
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open([A, B], ["gmail"])
    rec.operator(EventKind.BLOCK, B)
    rec.complete("gmail", A, "1001")
    rec.sweep_close("complete")
    rec.run_end()
    closed = len(rec.news)
    rec.operator(EventKind.UNBLOCK, B)
    rec.operator(EventKind.PAUSE, A)
    rec.cursor_reset("gmail", A, "operator")
    store, _ = open_for_writing(db_path, create=True)
    with store:
        store.append(rec.news[:closed])
        at_close = dict(fold(store.read()).counters)
        for event in rec.news[closed:]:
            store.append([event])
            assert_tables_match_rebuild(store)
        state = fold(store.read())
        parts = fold_parallel(store.path, store.conn, parts=2)
        stored = load_sweep(store.conn)[1]
    assert at_close["active_targets_total"] == at_close["complete_subjects_count"] == 1
    assert state.counters == parts.counters == stored == at_close
    assert state.sweep is not None
    figures = completeness(state.counters, state.sweep.services, run_live=False)
    assert not figures.failures()
    assert (B, None) not in state.blocked and state.is_paused(A)  # the flags themselves moved


@pytest.mark.parametrize("live", [True, False])
def test_an_attempt_of_a_dead_run_counts_as_partial_in_the_services_table(
    db_path: Path, live: bool
) -> None:
    """IN_PROGRESS lasts only while the attempt's run is live: once it is dead (killed, its
    RUN_END not yet written by the next run) the services table counts the pair PARTIAL, as
    the problem list and the figures do."""
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open([A, B], ["gmail"])
    rec.complete("gmail", A, "1001")
    rec.start("gmail", B)
    rec.page("gmail", B, 3, exhausted=False)
    store, _ = open_for_writing(db_path, create=True)
    with store:
        store.append(rec.news)
        gathered = gather_from_tables(store.conn)
    report = build_report(gathered, live_run_ids={"run-1"} if live else set())
    [gmail] = report.services
    expected = (1, 0) if live else (0, 1)
    assert (gmail["in_progress"], gmail["partial"]) == expected
    assert (gmail["complete"], gmail["not_started"]) == (1, 0)
    [problem] = report.problems
    assert problem["state"] == ("IN_PROGRESS" if live else "PARTIAL")
