"""`sweep runs`: the run history (job tracking), newest first, every counter folded from events."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from sweepledger.ledger.logline import printable
from sweepledger.projections.model import to_second
from sweepledger.projections.runs import HISTORY_LIMIT, read_runs

from .params import count_range, db_option, translate_errors


@click.command("runs")
@db_option
@click.option("--json", "as_json", is_flag=True, help="A JSON list of run objects, for scripts.")
@click.option(
    "--limit",
    type=count_range(1),
    default=HISTORY_LIMIT,
    show_default=True,
    help="How many runs, newest first.",
)
@translate_errors
def runs_command(db: str, as_json: bool, limit: int) -> None:
    """One line per run: status, trigger, start, duration, pairs, items, requests and rate.

    \b
    Status is running, completed, paused, interrupted, failed or aborted; a run whose process
    died without ending shows as interrupted (stale) until the next run closes it as aborted.
    A failed run names its error class and message.
    """
    runs = read_runs(db, limit=limit)
    if as_json:
        sys.stdout.write(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not runs:
        click.echo("no runs yet (`sweep run` starts one)")
        return
    click.echo(runs_text(runs))


def runs_text(runs: list[dict[str, Any]]) -> str:
    """The history as a table for people; `--json` prints every field."""
    header = (
        "run",
        "status",
        "trigger",
        "started",
        "duration",
        "pairs a/c/p/e",
        "items f/i/u/s/d",
        "req",
        "retry",
        "rl wait",
        "items/s",
    )
    rows = [header]
    notes = []
    for r in runs:
        c = r["counters"]
        duration = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
        rate = "-" if r["items_per_s"] is None else f"{r['items_per_s']:.0f}"
        rows.append(
            (
                r["run_id"],
                r["status"],
                printable(r["trigger"] or "cli"),
                to_second(r["started"]),
                duration,
                f"{c['pairs_attempted']}/{c['pairs_completed']}/{c['pairs_partial']}/"
                f"{c['pairs_errored']}",
                f"{c['items_fetched']}/{c['items_inserted']}/{c['items_updated']}/"
                f"{c['items_unchanged']}/{c['items_deleted']}",
                str(c["requests"]),
                str(c["retries"]),
                str(c["rate_limit_waits"]),
                rate,
            )
        )
        if r["error"] is not None:
            error = f"{r['error']['class']}: {r['error']['message']}"
            notes.append(f"  {r['run_id']} failed: {printable(error)}")
        elif r["reason"] and r["status"] != "completed":
            notes.append(f"  {r['run_id']} {r['status']}: {printable(r['reason'])}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.append(
        "pairs: attempted/completed/partial/errored; items: fetched/inserted/updated/"
        "unchanged (skipped)/deleted"
    )
    return "\n".join(lines + notes)
