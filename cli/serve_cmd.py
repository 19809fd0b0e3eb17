"""`sweep serve`: the read-only web view of a ledger (needs the `web` extra)."""

from __future__ import annotations

import click

from .params import UserError, db_option, translate_errors


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
    read-only and every write method gets 405. Stops on SIGINT/SIGTERM."""
    try:
        from sweepledger.web.server import serve
    except ImportError as error:
        raise UserError(
            f"sweep serve needs the web extra: pip install 'sweepledger[web]' ({error})", 2
        ) from None
    serve(db, host=host, port=port, say=click.echo)
