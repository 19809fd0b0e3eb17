"""`sweep serve` stops on a signal as the other long-running commands do: quietly, 130/143."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Ops


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_serve_stops_on_a_signal_with_its_code(
    tmp_path: Path, ops: Ops, signum: signal.Signals, code: int
) -> None:
    """Ctrl-C used to end in click's "Aborted!" and exit 1, which a supervisor reads as a
    failure; a signal now ends the server after its graceful shutdown with 128 + the signal."""
    server, base = ops.serve(tmp_path / "later.db", tmp_path)
    assert ops.get(base + "/api/status")[0] in (200, 503)
    server.send_signal(signum)
    returncode, _, err = ops.finish(server)
    assert returncode == code, (returncode, err)
    assert "Aborted" not in err and "Traceback" not in err
