"""Acceptance 1 of the runner issue: the verification bundle on a fresh demo ledger."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.projections.attach import open_for_writing

if TYPE_CHECKING:
    from conftest import SweepCLI


def test_full_sweep_passes_the_verification_bundle(workdir: Path, cli: SweepCLI) -> None:
    """A full exhaustive sweep of the default demo workspace ends 0 with 80 END lines, no
    partial, no error, cursors for every subject and items for every subject in every table."""
    run = cli.run(
        "run", "--full-sweep", "--exhaust", "--services", "gmail,calendar,chat,drive", cwd=workdir
    )
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout
    log = run.stderr
    assert len(re.findall(r"SWEEP .* phase=END", log)) == 80
    assert "partial=1" not in log
    assert set(re.findall(r"err=\S*", log)) == {"err=none"}
    assert "sim://" in run.stdout
    db = workdir / "sweep.db"
    rows = cli.query(
        db,
        "SELECT service, subject, key, value FROM sync_cursor WHERE "
        "(service='gmail' AND key='historyId') OR "
        "(service='drive' AND key='last_modified_time')",
    )
    assert len({r[1] for r in rows if r[0] == "gmail"}) == 20
    assert len({r[1] for r in rows if r[0] == "drive"}) == 20
    assert all(str(r[3]).isdigit() for r in rows if r[0] == "gmail")
    for table in cli.ITEM_TABLES:
        assert cli.query(db, f"SELECT COUNT(DISTINCT subject_email) FROM {table}") == [(20,)]
    check = cli.run("check", "--require-complete", cwd=workdir)
    assert check.returncode == 0, check.stdout
    assert check.stdout.strip().endswith("events)")


def test_log_rerenders_exactly_what_the_run_printed(workdir: Path, cli: SweepCLI) -> None:
    """`sweep log --run ID` gives the run's SWEEP lines, line for line."""
    run = cli.run("run", "--exhaust", "--source", "sim://?subjects=3", cwd=workdir)
    assert run.returncode == 0
    run_id = re.search(r"run (run-\w+)", run.stdout)
    assert run_id is not None
    log = cli.run("log", "--run", run_id.group(1), cwd=workdir)
    printed = [line for line in run.stderr.splitlines() if line.startswith("SWEEP ")]
    assert log.stdout.splitlines() == printed
    assert len(printed) > 12
    ends = cli.run("log", "--phase", "END", "--service", "chat", cwd=workdir)
    assert len(ends.stdout.splitlines()) == 3


def test_log_subject_gives_every_spelling_in_seq_order_from_tables_or_events(
    workdir: Path, cli: SweepCLI
) -> None:
    """`log --subject` matches emails case-folded, as `--subjects` and the operator commands
    do, non-ASCII letters included (SQLite's NOCASE folds ASCII only). It reads one subject's
    pairs through the pair index when the projection tables are current, and every event when
    they are behind: both give the events of every stored spelling of the subject, interleaved
    with nothing else, in seq order; both answer a subject only a roster names with no lines,
    and refuse one nothing names."""
    spellings = ("Émile@corp.example", "émile@CORP.example")
    other = "zoe@corp.example"
    store, _ = open_for_writing(workdir / "sweep.db", create=True)
    with store, store.transaction() as tx:
        tx.append(NewEvent(EventKind.RUN_START, "sweep-1", "run-1", data={"pid": 1}))
        tx.append(
            NewEvent(
                EventKind.SWEEP_OPEN,
                "sweep-1",
                "run-1",
                data={
                    "roster": [spellings[0], other, "Yan@corp.example"],
                    "services": ["gmail", "drive"],
                    "source": "sim://",
                },
            )
        )
        for service, subject in [
            ("gmail", spellings[0]),
            ("drive", other),
            ("drive", spellings[1]),
            ("gmail", other),
        ]:
            tx.append(
                NewEvent(EventKind.START, "sweep-1", "run-1", service, subject, {"attempt": 1})
            )
        tx.append(NewEvent(EventKind.PAGE, "sweep-1", "run-1", "gmail", spellings[0], {"count": 0}))
    db = workdir / "sweep.db"
    expected = [
        (service, subject, kind)
        for service, subject, kind in cli.query(
            db, "SELECT service, subject, kind FROM events WHERE service IS NOT NULL ORDER BY seq"
        )
        if subject in spellings
    ]
    assert len(expected) == 3

    def logged() -> list[tuple[str, str, str]]:
        done = cli.run("log", "--subject", "ÉMILE@corp.example", cwd=workdir)
        assert done.returncode == 0, done.stderr
        fields = [
            dict(f.split("=", 1) for f in line.split()[1:4])
            for line in done.stdout.split("\n")
            if line
        ]
        return [(f["service"], f["subject"], f["phase"]) for f in fields]

    def roster_only_and_unknown() -> tuple[int, str, int, str]:
        listed = cli.run("log", "--subject", "yan@CORP.example", cwd=workdir)
        unknown = cli.run("log", "--subject", "nobody@corp.example", cwd=workdir)
        return listed.returncode, listed.stdout, unknown.returncode, unknown.stderr.strip()

    refused = "Error: no subject nobody@corp.example in sweep.db (no roster or event names it)"
    assert logged() == expected
    assert roster_only_and_unknown() == (0, "", 2, refused)
    with sqlite3.connect(db) as conn:  # the tables now read as of another version
        conn.execute("UPDATE meta SET value = 'behind' WHERE key = 'projection_version'")
    assert logged() == expected
    assert roster_only_and_unknown() == (0, "", 2, refused)
