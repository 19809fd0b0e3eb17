"""The read-only commands: status, check, log, replay. None of them changes the ledger."""

from __future__ import annotations

import heapq
import sqlite3
import sys
from collections.abc import Iterable
from typing import Any

import click
import orjson

from sweepledger.ledger.events import PAIR_PHASES, Event
from sweepledger.ledger.logline import render
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.api import check_ledger, read_status, replay
from sweepledger.projections.attach import open_for_reading, projections_current, read_snapshot
from sweepledger.projections.model import SERVICES, subject_key
from sweepledger.projections.status import PROBLEM_LIMIT

from .params import UserError, count_range, db_option, translate_errors
from .render import status_text


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


all_option = click.option(
    "--all",
    "list_all",
    is_flag=True,
    help=f"List every problem pair, not only the first {PROBLEM_LIMIT} (text and JSON).",
)


@click.command("status")
@db_option
@click.option("--json", "as_json", is_flag=True, help="The same content as JSON, for scripts.")
@click.option(
    "--as-of",
    type=count_range(0),
    default=None,
    help="The status as it was right after event SEQ (folds the events; ages and ETAs are "
    "measured from that event's time).",
)
@all_option
@translate_errors
def status_command(db: str, as_json: bool, as_of: int | None, list_all: bool) -> None:
    """The sweep's state, the COMPLETE invariants, services, problem pairs and recent runs.

    \b
    Problem pairs (attempted or flagged, not COMPLETE) are listed subject-major,
    services in the order gmail, calendar, chat, drive, as are BLOCKED lines:
    the first 20, then a line saying how many more there are (--all lists every
    one). Pairs never attempted are only counted.
    """
    report = read_status(db, as_of=as_of, problem_limit=None if list_all else PROBLEM_LIMIT)
    if as_json:
        _print_json(report.as_dict())
    else:
        click.echo(status_text(report))


@click.command("check")
@db_option
@click.option(
    "--require-complete", is_flag=True, help="Also fail unless the latest sweep is COMPLETE."
)
@click.option("--json", "as_json", is_flag=True, help="Violations as JSON.")
@translate_errors
def check_command(db: str, require_complete: bool, as_json: bool) -> None:
    """Verify the hash chain, seq, guard triggers, attempt grammar, cursor gating and
    monotonicity, counts, runs and projection tables. Exit 0 if nothing is violated, else 1
    (2: the file is not a ledger or cannot be opened)."""
    result = check_ledger(db, require_complete=require_complete)
    if as_json:
        _print_json(
            {
                "ok": result.ok,
                "events": result.state.head,
                "violations": [
                    {"seq": v.seq, "rule": v.rule, "message": v.message} for v in result.violations
                ],
            }
        )
    else:
        for violation in result.violations:
            click.echo(str(violation))
        verdict = "OK" if result.ok else f"{len(result.violations)} violations"
        click.echo(f"check: {verdict} ({result.state.head} events)")
    sys.exit(0 if result.ok else 1)


@click.command("log")
@db_option
@click.option("--run", "run_id", default=None, help="Only this run's lines.")
@click.option("--sweep", "sweep_id", default=None, help="Only this sweep's lines.")
@click.option("--service", type=click.Choice(SERVICES), default=None, help="Only this service.")
@click.option("--subject", default=None, help="Only this subject (any letter case).")
@click.option(
    "--phase",
    type=click.Choice([str(p) for p in sorted(PAIR_PHASES)]),
    default=None,
    help="Only this phase.",
)
@translate_errors
def log_command(
    db: str,
    run_id: str | None,
    sweep_id: str | None,
    service: str | None,
    subject: str | None,
    phase: str | None,
) -> None:
    """Re-render SWEEP lines from the ledger: for a run, exactly what it printed."""
    clauses = [f"kind IN ({','.join(repr(str(k)) for k in sorted(PAIR_PHASES))})"]
    params: list[object] = []
    for condition, value in (
        ("run_id = ?", run_id),
        ("sweep_id = ?", sweep_id),
        ("service = ?", service),
        ("kind = ?", phase),
    ):
        if value is not None:
            clauses.append(condition)
            params.append(value)
    with open_for_reading(db) as store, read_snapshot(store):
        # emails compare as everywhere else (`model.subject_key`), not by SQLite's ASCII NOCASE
        store.conn.create_function("subject_key", 1, _sql_subject_key, deterministic=True)
        pairs = None if subject is None else _pairs_named(store, subject, service)
        if subject is None:
            events: Iterable[Event] = store.read_where(" AND ".join(clauses), params)
        elif pairs is None:  # tables behind the events: every event is read
            clauses.append("subject_key(subject) = ?")
            events = store.read_where(" AND ".join(clauses), [*params, subject_key(subject)])
        else:  # each pair's events through the pair index, merged back into seq order
            where = " AND ".join([*clauses, "service = ?", "subject = ?"])
            events = heapq.merge(
                *(store.read_where(where, [*params, *pair]) for pair in pairs),
                key=lambda event: event.seq,
            )
        out = sys.stdout
        written = 0
        for event in events:
            out.write(render(event) + "\n")
            written += 1
        if not written:
            _refuse_unknown_ids(store.conn, db, run_id, sweep_id)
            if subject is not None and not pairs:
                _refuse_unknown_subject(store.conn, db, subject, scan=pairs is None)


def _pairs_named(store: SqliteStore, subject: str, service: str | None) -> list[Any] | None:
    """The (service, subject) pairs whose stored subject is `subject` in any spelling (by
    `subject_key`), from the pair table, so that `log --subject` reads one subject's events
    through the pair index instead of every event; None if the tables are behind the events."""
    if not projections_current(store):
        return None
    sql = "SELECT service, subject FROM pair_state WHERE subject_key = ?"
    args: list[object] = [subject_key(subject)]
    if service is not None:
        sql += " AND service = ?"
        args.append(service)
    return store.conn.execute(sql, args).fetchall()


def _sql_subject_key(value: object) -> str | None:
    """`subject_key` for SQL, where a column may hold NULL or a non-text value."""
    return subject_key(value) if isinstance(value, str) else None


def _refuse_unknown_ids(
    conn: sqlite3.Connection, db: str, run_id: str | None, sweep_id: str | None
) -> None:
    """No line matched: say so if a run or sweep id names nothing in the ledger (a typo reads
    as an empty log otherwise); a known id with no pair lines is a plain empty answer."""
    for column, kind, value, where in (
        ("run_id", "RUN_START", run_id, "`sweep runs` lists them"),
        ("sweep_id", "SWEEP_OPEN", sweep_id, "`sweep status` names the latest"),
    ):
        if value is None:
            continue
        found = conn.execute(
            f"SELECT 1 FROM events WHERE kind = ? AND {column} = ? LIMIT 1", (kind, value)
        ).fetchone()
        if found is None:
            noun = column.removesuffix("_id")
            raise UserError(f"no {noun} {value} in {db} ({where})", 2)


def _refuse_unknown_subject(conn: sqlite3.Connection, db: str, subject: str, *, scan: bool) -> None:
    """No line matched: say so if no event and no sweep's roster names `subject` (compared by
    `subject_key`, as the filter compares it), as for an unknown run or sweep id; a subject the
    ledger knows but without lines (paused, blocked, not reached yet) is a plain empty answer.
    `scan`: the tables are behind, so every event is searched for the subject; else the pair
    table has said no pair names it and only the rosters (each sweep's SWEEP_OPEN) are read."""
    key = subject_key(subject)
    named = (
        scan
        and conn.execute(
            "SELECT 1 FROM events WHERE subject_key(subject) = ? LIMIT 1", (key,)
        ).fetchone()
    )
    opened = (
        "SELECT seq FROM events WHERE kind = 'SWEEP_OPEN'"
        if scan
        else "SELECT opened_seq FROM sweeps"
    )
    listed = (
        named
        or conn.execute(
            "SELECT 1 FROM events, json_each(events.data, '$.roster') AS listed "
            f"WHERE events.seq IN ({opened}) AND subject_key(listed.value) = ? LIMIT 1",
            (key,),
        ).fetchone()
    )
    if listed is None:
        raise UserError(f"no subject {subject} in {db} (no roster or event names it)", 2)


@click.command("replay")
@db_option
@click.option(
    "--as-of", type=count_range(0), default=None, help="Stop after event SEQ (time travel)."
)
@click.option("--json", "as_json", is_flag=True, help="The rebuilt status as JSON.")
@all_option
@translate_errors
def replay_command(db: str, as_of: int | None, as_json: bool, list_all: bool) -> None:
    """Rebuild every projection from seq 1 in memory and print the status it gives (audit)."""
    result = replay(db, as_of=as_of, problem_limit=None if list_all else PROBLEM_LIMIT)
    if as_json:
        _print_json(
            {
                **result.report.as_dict(),
                "replayed_events": result.events,
                "seconds": round(result.seconds, 6),
            }
        )
        return
    click.echo(status_text(result.report))
    rate = result.events / result.seconds if result.seconds > 0 else 0.0
    click.echo(f"\nreplayed {result.events} events in {result.seconds:.3f}s ({rate:,.0f} events/s)")
