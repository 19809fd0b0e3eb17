"""`sweep serve`: bind, say where, and run the app under uvicorn until SIGINT/SIGTERM.

The socket is bound here, before uvicorn starts, so a busy port is one clear error and
`--port 0` (any free port) prints the port it got: scripts and tests read it from the first line.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from pathlib import Path

import uvicorn

from sweepledger.ledger.errors import LedgerError, MissingFolder, NoLedger
from sweepledger.ledger.store import SqliteStore

from .app import create_app

LOOPBACK = "127.0.0.1"


class ServeError(LedgerError):
    """The server cannot start (port taken, bad address)."""

    exit_code = 2


def check_ledger_path(db: Path) -> None:
    """Refuse a path that can never be a ledger; a missing file is fine (the view waits)."""
    if not db.parent.is_dir():
        raise MissingFolder(str(db), str(db.parent))
    with contextlib.suppress(NoLedger):
        SqliteStore.open(db, readonly=True).close()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    db_path: str | Path,
    *,
    host: str = LOOPBACK,
    port: int = 8765,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the view of `db_path` until SIGINT/SIGTERM (uvicorn's graceful shutdown)."""
    db = Path(db_path)
    check_ledger_path(db)
    sock = bind(host, port)
    try:
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        say(f"sweep serve: http://{shown}:{bound}/ (read-only view of {db})")
        if host not in (LOOPBACK, "localhost", "::1"):
            say(f"warning: listening on {host}, not only on this machine; the view has no login")
        config = uvicorn.Config(
            create_app(db),
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
