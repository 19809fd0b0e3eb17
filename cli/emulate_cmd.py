"""`sweep emulate`: serve a `sim://` workspace as Google Workspace on loopback, until signalled.

The emulator package is imported inside the command, so `sweep --help` and every other command
stay free of it (and of the `google` extra it needs).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from urllib.parse import quote

import click
import orjson

from sweepledger.collectors.errors import SourceConfigError

from .params import EMAIL, UserError


@click.command("emulate")
@click.option(
    "--workspace",
    default="sim://",
    show_default=True,
    help="The sim:// workspace to serve (same items, ids, faults and latency).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one (the URL is printed).",
)
@click.option(
    "--credentials-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the service account key file here (default: a temporary file, removed on exit).",
)
@click.option(
    "--admin",
    default="admin@example.com",
    show_default=True,
    help="The only account the Directory API may be called as.",
)
def emulate_command(workspace: str, port: int, credentials_out: str | None, admin: str) -> None:
    """Serve a sim:// workspace under Google's API paths on 127.0.0.1 until SIGTERM/SIGINT.

    \b
    Prints three lines on stdout, then serves:
      sweep emulate: serving <workspace> at http://127.0.0.1:<port>
      credentials: <key file>
      source: google://?admin=...&credentials=...&endpoint=...
    """
    try:
        from sweepledger.collectors.emulator.server import Emulator, EmulatorServer
        from sweepledger.collectors.emulator.tokens import ServiceAccount
        from sweepledger.collectors.sim.config import SimConfig
    except ImportError as missing:
        raise UserError(
            f"sweep emulate needs the google extra ({missing.name} is not "
            "installed): pip install 'sweepledger[google]'",
            2,
        ) from None
    try:
        canonical = SimConfig.from_url(workspace).url
    except SourceConfigError as error:
        raise UserError(f"bad workspace: {error}", 2) from None
    if not EMAIL.match(admin):
        raise UserError(f"--admin {admin!r} is not an email address", 2)
    account = ServiceAccount.create()
    try:
        server = EmulatorServer(
            port, lambda url: Emulator(canonical, admin, url + "/token", account)
        )
    except OSError as error:
        raise UserError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}", 2) from None
    scratch = None
    if credentials_out is None:
        scratch = tempfile.mkdtemp(prefix="sweep-emulate-")
        credentials_out = os.path.join(scratch, "service-account.json")
    key_path = Path(credentials_out).absolute()
    try:
        _write_key(
            key_path,
            orjson.dumps(account.key_file(server.url + "/token"), option=orjson.OPT_INDENT_2),
        )
    except OSError as error:
        server.server_close()
        raise UserError(f"cannot write {key_path}: {error.strerror}", 2) from None
    source = (
        f"google://?admin={quote(admin, safe='@.')}&credentials="
        f"{quote(str(key_path), safe='/@._-')}&endpoint={server.url}"
    )
    click.echo(f"sweep emulate: serving {canonical} at {server.url}")
    click.echo(f"credentials: {key_path}")
    click.echo(f"source: {source}")
    sys.stdout.flush()
    _serve_until_signalled(server)
    if scratch is not None:
        key_path.unlink(missing_ok=True)
        os.rmdir(scratch)


def _write_key(path: Path, content: bytes) -> None:
    """Write the key readable by its owner only, as a downloaded key should be kept."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def _serve_until_signalled(server: object) -> None:
    """Serve on a thread; the first SIGTERM or SIGINT shuts the server down cleanly."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_in_thread()  # type: ignore[attr-defined]
        while not stop.wait(0.25):
            pass
    finally:
        server.stop()  # type: ignore[attr-defined]
        for s, h in previous.items():
            signal.signal(s, h)
