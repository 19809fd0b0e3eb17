"""`sweep daemon`: `sweep run` in a loop, under one held lock, with heartbeats between cycles."""

from __future__ import annotations

import sys
from typing import IO, Any

import click

from sweepledger.collectors.daemon import DaemonOptions, SweepDaemon

from .params import Seconds, count_range, open_log, translate_errors
from .run_cmd import prepare_run, run_command
from .signals import stop_on_signals


@click.command("daemon")
@click.option(
    "--interval",
    type=Seconds(),
    default=300.0,
    show_default=True,
    help="Seconds to sleep between cycles.",
)
@click.option(
    "--jitter",
    type=Seconds(),
    default=0.0,
    show_default=True,
    help="Up to this many seconds added at random to each sleep.",
)
@click.option(
    "--max-cycles",
    type=count_range(1),
    default=None,
    help="Stop after N cycles (tests, cron-like use); default: until SIGTERM/SIGINT.",
)
@translate_errors
def daemon_command(interval: float, jitter: float, max_cycles: int | None, **flags: Any) -> None:
    """Keep the ledger up to date: a `sweep run` with these flags every --interval seconds.

    Cycle 1 does the full sync, later cycles an incremental poll from the cursors; PAUSED and
    BLOCKED pairs are skipped, and a failing pair is recorded and retried next cycle (a cycle
    that failed or left pairs in ERR doubles the next sleep, up to 8 intervals). The daemon
    holds the ledger's lock across cycles and sleeps, so another daemon or `sweep run` is
    refused (exit 4), and appends HEARTBEAT events while idle so `sweep status` can tell
    "idle, next cycle at T" from dead. `--source 'sim://?generation=auto'` moves the demo
    workspace on by one generation per cycle.

    \b
    Exit codes: 0 stopped by SIGTERM/SIGINT while sleeping, or --max-cycles reached with the
    last sweep COMPLETE (else that cycle's code: 3 incomplete or the source down, 75 paused);
    1 internal error; 2 bad input; 4 another run holds the ledger; 130/143 SIGINT/SIGTERM
    during a cycle (the interrupted attempt is recorded).
    """
    quiet = bool(flags.pop("quiet"))
    log_file = flags.pop("log_file")
    db = flags.pop("db")
    path, source, options = prepare_run(db, **flags)
    source.close()  # validated here; each cycle opens its own (`generation=auto` moves on)
    streams: list[IO[str]] = [] if quiet else [sys.stderr]
    log: IO[str] | None = None
    if log_file is not None:
        log = open_log(log_file)  # closed below
        streams.append(log)
    banner = (
        f"ledger {db}, source {options.source_url}, every {interval:g}s"
        + (f" (+ up to {jitter:g}s)" if jitter else "")
        + (f", {_cycles(max_cycles)}" if max_cycles else "")
    )
    daemon = SweepDaemon(
        path,
        options,
        DaemonOptions(interval=interval, jitter=jitter, max_cycles=max_cycles),
        streams=streams,
        say=click.echo,
        on_start=lambda: click.echo(f"sweep daemon {daemon.daemon_id}: {banner}"),
    )
    try:
        with stop_on_signals(daemon):
            outcome = daemon.run()
    finally:
        if log is not None:
            log.close()
    why = f" ({outcome.stop_reason})" if outcome.stop_reason else ""
    click.echo(
        f"sweep daemon {outcome.daemon_id}: stopped after {_cycles(len(outcome.cycles))}{why}, "
        f"exit {outcome.exit_code}"
    )
    sys.exit(outcome.exit_code)


def _cycles(count: int) -> str:
    """`1 cycle`, `3 cycles`."""
    return f"{count} cycle" if count == 1 else f"{count} cycles"


daemon_command.params[:0] = list(run_command.params)
"""Every `sweep run` flag, with the same meaning: a cycle is exactly that run."""
