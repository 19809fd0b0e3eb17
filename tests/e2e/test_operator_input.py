"""Operator commands and the text an operator gives them: what `status` shows of it stays one
line per flag, whatever the ledger holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.projections.attach import open_for_writing

if TYPE_CHECKING:
    from conftest import SweepCLI

SOURCE = "sim://?subjects=2"
FORGED = "left\nBLOCKED forged@example.com gmail: never blocked"
"""A reason that, printed as it is, adds a BLOCKED line of its own to `sweep status`."""


@pytest.fixture
def ledger(workdir: Path, cli: SweepCLI) -> Path:
    """A COMPLETE sweep of user1 and user2 (gmail only), so each pair has a cursor."""
    run = cli.run("run", "--exhaust", "--source", SOURCE, "--services", "gmail", cwd=workdir)
    assert run.returncode == 0, run.stderr
    return workdir / "sweep.db"


def test_status_escapes_control_characters_a_ledger_already_holds(
    ledger: Path, cli: SweepCLI
) -> None:
    """Reasons recorded with a newline or a terminal escape are shown escaped: `status` has one
    BLOCKED line for the one block, and no terminal escape reaches it."""
    store, _ = open_for_writing(ledger)
    try:
        with store.transaction() as tx:
            for kind, data in (
                (EventKind.BLOCK, {"subject": "user1@example.com", "service": None}),
                (EventKind.PAUSE, {"subject": "user2@example.com"}),
            ):
                reason = FORGED if kind is EventKind.BLOCK else "\x1b[31mred"
                tx.append(NewEvent(kind, subject=data["subject"], data={**data, "reason": reason}))
    finally:
        store.close()
    text = cli.run("status", cwd=ledger.parent).stdout
    flags = [line for line in text.splitlines() if line.startswith(("BLOCKED", "PAUSED"))]
    assert flags == [
        "BLOCKED user1@example.com (all services): left\\nBLOCKED forged@example.com gmail: "
        "never blocked",
        "PAUSED  user2@example.com: \\x1b[31mred",
    ]
    assert "\x1b" not in text
