"""`sweep run`: parse flags, start the runner, print the summary, exit with the DESIGN 12 code."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import click

from sweepledger.collectors.protocol import Source
from sweepledger.collectors.retry import RetryPolicy
from sweepledger.collectors.runner import RunOptions, RunOutcome, SweepRunner
from sweepledger.collectors.sources import open_source
from sweepledger.ledger.events import Event, EventKind
from sweepledger.ledger.store import SqliteStore

from .params import (
    Seconds,
    UserError,
    count_range,
    db_option,
    env_max_seconds,
    open_log,
    parse_services,
    parse_subjects,
    translate_errors,
)
from .signals import stop_on_signals

DEFAULT_SOURCE = "sim://"
EARLIEST_SINCE = "1970-01-01"
"""The earliest window start taken: no mailbox, calendar or drive holds older items, and dates
before the year 1000 do not print as RFC 3339."""
MONTHS_BACK_MAX = 600
"""Fifty years: `--months-back` stays after `EARLIEST_SINCE`."""


@click.command("run")
@db_option
@click.option(
    "--source",
    "source_url",
    envvar="SWEEP_SOURCE",
    default=DEFAULT_SOURCE,
    show_default=True,
    help="Where to collect from (also $SWEEP_SOURCE): sim://?... "
    "is the built-in demo workspace, google://?... Google Workspace.",
)
@click.option(
    "--full-sweep",
    is_flag=True,
    help="The whole roster times the selected services (the default; never discards cursors; "
    "not with --subjects).",
)
@click.option("--exhaust", is_flag=True, help="No page limit per attempt.")
@click.option(
    "--services",
    "services",
    default=None,
    help="Comma-separated, from gmail,calendar,chat,drive (default: all four).",
)
@click.option(
    "--subjects",
    "subjects",
    default=None,
    help="Comma-separated emails: only these subjects (a new sweep's roster). Each must be in "
    "the roster swept: the source's for a new sweep, the open sweep's when continuing it.",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Continue the open sweep, or abandon it and open a new one.",
)
@click.option(
    "--only-remaining",
    is_flag=True,
    help="Take NOT_STARTED and PARTIAL pairs only, not those in ERR.",
)
@click.option(
    "--max-pages",
    type=count_range(1),
    default=10,
    show_default=True,
    help="Pages per attempt before the pair ends PARTIAL (ignored with --exhaust).",
)
@click.option(
    "--max-seconds",
    type=Seconds(positive=True),
    default=None,
    help="Stop at the next page boundary after this many seconds (a retry or quota wait "
    "under way ends then); the run ends paused (exit 75). Also $MAX_SECONDS_PER_RUN unless "
    "$RUN_TO_COMPLETION=true.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Pairs fetched concurrently (events are still appended by one writer).",
)
@click.option(
    "--passes",
    type=count_range(1),
    default=1,
    show_default=True,
    help="Passes over the plan: pairs left in ERR or PARTIAL are retried.",
)
@click.option(
    "--retry-wait",
    type=Seconds(),
    default=5.0,
    show_default=True,
    help="Seconds between passes.",
)
@click.option(
    "--max-retries",
    type=count_range(0),
    default=5,
    show_default=True,
    help="Retries of one request on rate limits and transient errors.",
)
@click.option(
    "--max-attempts",
    type=count_range(1),
    default=3,
    show_default=True,
    help="Attempts in a sweep before a permanently failing pair is blocked.",
)
@click.option(
    "--since",
    default=None,
    help="RFC 3339 date: how far back a full sync reaches (or --months-back).",
)
@click.option(
    "--months-back",
    type=click.IntRange(1, MONTHS_BACK_MAX),
    default=None,
    help="How many months back a full sync reaches (or --since).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also append the SWEEP lines to this file.",
)
@click.option("--quiet", is_flag=True, help="No SWEEP lines on stderr.")
@click.option("--seed", type=int, default=None, help="Seed of the retry jitter (for tests).")
@translate_errors
def run_command(
    db: str,
    source_url: str,
    full_sweep: bool,
    exhaust: bool,
    services: str | None,
    subjects: str | None,
    resume: bool,
    only_remaining: bool,
    max_pages: int,
    max_seconds: float | None,
    workers: int,
    passes: int,
    retry_wait: float,
    max_retries: int,
    max_attempts: int,
    since: str | None,
    months_back: int | None,
    log_file: str | None,
    quiet: bool,
    seed: int | None,
) -> None:
    """Sweep every subject x service until the sweep is COMPLETE; rerun to continue.

    \b
    Exit codes: 0 sweep COMPLETE; 1 internal error; 2 bad input; 3 run ended with the sweep
    incomplete, or the source could not list its subjects (rerun to continue); 4 another run
    holds the ledger; 75 paused by the time budget; 130/143 interrupted by SIGINT/SIGTERM (the
    interrupted attempt is recorded).
    """
    path, source, options = prepare_run(
        db,
        source_url=source_url,
        full_sweep=full_sweep,
        exhaust=exhaust,
        services=services,
        subjects=subjects,
        resume=resume,
        only_remaining=only_remaining,
        max_pages=max_pages,
        max_seconds=max_seconds,
        workers=workers,
        passes=passes,
        retry_wait=retry_wait,
        max_retries=max_retries,
        max_attempts=max_attempts,
        since=since,
        months_back=months_back,
        seed=seed,
    )
    streams: list[IO[str]] = [] if quiet else [sys.stderr]
    log: IO[str] | None = None
    if log_file is not None:
        try:
            log = open_log(log_file)  # closed below
        except UserError:
            source.close()
            raise
        streams.append(log)
    demo = " (the built-in demo workspace)" if source.url.startswith("sim://") else ""
    click.echo(f"sweep run: ledger {db}, source {source.url}{demo}")
    bar = ProgressLine(sys.stdout) if sys.stdout.isatty() else None
    runner = SweepRunner(
        path, source, options, streams=streams, on_commit=None if bar is None else bar.update
    )
    if bar is not None:
        bar.runner = runner
    try:
        with stop_on_signals(runner):
            outcome = runner.run()
    finally:
        source.close()
        if log is not None:
            log.close()
        if bar is not None:
            bar.clear()
    click.echo(summary(outcome))
    sys.exit(outcome.exit_code)


def prepare_run(
    db: str,
    *,
    source_url: str,
    full_sweep: bool,
    exhaust: bool,
    services: str | None,
    subjects: str | None,
    resume: bool,
    only_remaining: bool,
    max_pages: int,
    max_seconds: float | None,
    workers: int,
    passes: int,
    retry_wait: float,
    max_retries: int,
    max_attempts: int,
    since: str | None,
    months_back: int | None,
    seed: int | None,
) -> tuple[Path, Source, RunOptions]:
    """Validate the run flags and open the source: shared by `sweep run` and `sweep daemon`, so
    a daemon cycle is exactly the run the same flags would start. Refuses bad input before the
    ledger is touched."""
    chosen = parse_services(services)
    names = parse_subjects(subjects)
    if full_sweep and names is not None:
        # --full-sweep promises the whole roster; --subjects narrows it: honouring either one
        # silently would do something the command line says not to
        raise UserError(
            "give --full-sweep (the whole roster) or --subjects (a few subjects), not both", 2
        )
    if since is not None and months_back is not None:
        raise UserError("give --since or --months-back, not both: each sets the same window", 2)
    if since is not None:
        _check_since(since)
    if max_seconds is None:
        max_seconds = env_max_seconds()
    path = Path(db)
    if path.exists() and path.stat().st_size > 0:
        SqliteStore.open(path, readonly=True).close()
    elif not path.parent.is_dir():
        raise UserError(f"cannot use {db}: folder {path.parent} does not exist", 2)
    source = open_source(source_url)
    options = RunOptions(
        source_url=source.url,
        services=chosen,
        subjects=names,
        resume=resume,
        only_remaining=only_remaining,
        max_pages=None if exhaust else max_pages,
        max_seconds=max_seconds,
        workers=workers,
        passes=passes,
        retry_wait=retry_wait,
        policy=RetryPolicy(max_retries=max_retries),
        max_attempts=max_attempts,
        since=since,
        months_back=months_back,
        argv=tuple(sys.argv[1:]),
        seed=seed,
    )
    return path, source, options


class ProgressLine:
    """A one-line progress bar on a terminal (never in a pipe or a log): pairs done of planned,
    items so far, elapsed time. Redrawn at most ten times a second."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.runner: SweepRunner | None = None
        self.done = 0
        self.items = 0
        self.started = time.monotonic()
        self.drawn = 0.0

    def update(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.kind is EventKind.END:
                self.done += 1
            elif event.kind is EventKind.PAGE:
                self.items += int(event.data.get("count", 0))
        now = time.monotonic()
        if now - self.drawn < 0.1:
            return
        self.drawn = now
        total = self.runner.planned if self.runner is not None else 0
        width = 30
        filled = width * min(self.done, total) // total if total else 0
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{total} pairs, "
            f"{self.items} items, {now - self.started:.1f}s "
        )
        self.stream.flush()

    def clear(self) -> None:
        self.stream.write("\r\033[K")
        self.stream.flush()


def summary(outcome: RunOutcome) -> str:
    """The closing lines on stdout.

    The sweep line names what COMPLETE left out (paused subjects, blocked pairs): a sweep whose
    every subject is paused is COMPLETE over nothing, and "0/0" alone does not say why. "Rerun
    the same command" is said only when a rerun would do something: a run that found nothing
    to do in its selection says where the rest is instead.
    """
    f = outcome.figures
    state = "COMPLETE" if outcome.complete else "INCOMPLETE"
    rate = outcome.items_per_s or 0.0  # the ledger's figures, as `sweep runs` shows them
    excluded = [
        _count(f.get("paused_subjects", 0), "paused subject"),
        _count(f.get("blocked_pairs", 0), "blocked pair"),
    ]
    left_out = ", ".join(e for e in excluded if e)
    lines = [
        f"run {outcome.run_id} {outcome.status}: {outcome.pairs_done}/{outcome.pairs_planned} "
        f"planned pairs complete, {outcome.items} items in {outcome.duration:.2f}s "
        f"({rate:.0f} items/s)",
        f"sweep {outcome.sweep_id} {state}: {f['complete_subjects_count']}/"
        f"{f['active_targets_total']} subjects complete, {f['partial_subjects_count']} partial, "
        f"{f['errors_count']} errors" + (f" (excluded: {left_out})" if left_out else ""),
    ]
    if outcome.exit_code == 3 and outcome.pairs_planned == 0:
        lines.append(
            "nothing left to do in this run's selection: the pairs the sweep still needs are "
            "outside --subjects/--services, in ERR with --only-remaining, or paused or blocked "
            "(see `sweep status`)"
        )
    elif outcome.exit_code == 3:
        lines.append("rerun the same command to continue")
    elif outcome.exit_code == 75:
        lines.append("paused by the time budget; rerun the same command to continue")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    """`n noun(s)`, or "" for none."""
    return f"{n} {noun}{'' if n == 1 else 's'}" if n else ""


def _check_since(value: str) -> None:
    from datetime import UTC, datetime

    try:
        since = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--since {value!r} is not an RFC 3339 date (e.g. 2026-01-31)", 2) from None
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if since < datetime.fromisoformat(EARLIEST_SINCE).replace(tzinfo=UTC):
        raise UserError(
            f"--since {value!r} is before {EARLIEST_SINCE}, the earliest a window can start", 2
        )
