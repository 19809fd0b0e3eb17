"""`sweep serve`: the read-only web view of a ledger (needs the `web` extra)."""

from __future__ import annotations

import signal
from types import FrameType

import click

from .params import UserError, db_option, translate_errors
from .signals import EXIT_CODES


def _exit_with_code(signum: int, frame: FrameType | None) -> None:
    """The server re-raises the signal it shut down for once it is done: exit then with the
    code `sweep run` gives it, rather than die by it, or (SIGINT ignored by the parent, as
    for a background job of a script) carry on to exit 0 as if nothing had asked it to stop."""
    raise SystemExit(EXIT_CODES[signal.Signals(signum)])


@click.command("serve")
@db_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback exposes the view to the network.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: any free port, printed on the first line).",
)
@translate_errors
def serve_command(db: str, host: str, port: int) -> None:
    """Serve a read-only web view of the ledger: status (live while a run works), invariants,
    services, problem pairs, run history and each pair's attempts; JSON at /api/status,
    /api/runs and /api/runs/<id>; Prometheus metrics at /metrics. The database is opened
    read-only and every write method gets 405. Stops on SIGINT/SIGTERM after the requests in
    flight, exiting 130/143 as `sweep run` does."""
    try:
        from sweepledger.web.server import serve
    except ImportError as error:
        raise UserError(
            f"sweep serve needs the web extra: pip install 'sweepledger[web]' ({error})", 2
        ) from None
    for signum in EXIT_CODES:
        signal.signal(signum, _exit_with_code)
    serve(db, host=host, port=port, say=click.echo)
