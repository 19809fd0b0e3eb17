"""Acceptance 3: once the emulator moves to generation 2, the next sweep reads Gmail history,
Calendar sync tokens, Chat create_time filters and the Drive changes feed (no full re-list:
the emulator's request counts say so) and fetches exactly what changed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sweepledger.collectors.google.resources import parse_time
from sweepledger.collectors.sim.workspace import Workspace

if TYPE_CHECKING:
    from conftest import EmulatorFactory, GoogleCLI

WORKSPACE = "sim://?subjects=4&seed=21"
LAST_SWEEP_ENDS = (
    "SELECT service, subject, json_extract(data, '$.count') FROM events WHERE kind = 'END' "
    "AND sweep_id = (SELECT sweep_id FROM events WHERE kind = 'SWEEP_OPEN' "
    "ORDER BY seq DESC LIMIT 1)"
)


def test_generation_2_uses_history_sync_tokens_and_changes(
    emulators: EmulatorFactory, gcli: GoogleCLI, tmp_path: Path
) -> None:
    """No listing call is repeated at generation 2; Gmail gets exactly the messages whose last
    change left them alive; every pair fetches as many items as the sim's incremental sweep;
    the rows equal a sim sweep of generations 1 then 2, and the Drive upload that kept an old
    modifiedTime (older than the cursor) is stored."""
    emulator = emulators(WORKSPACE)
    folder = tmp_path / "google"
    folder.mkdir()
    args = ("run", "--exhaust", "--quiet", "--source", emulator.source)
    assert gcli.run(*args, cwd=folder).returncode == 0
    db = folder / "sweep.db"
    first = {(s, e, k): v for s, e, k, v in gcli.query(db, "SELECT * FROM sync_cursor")}
    emulator.reset_stats()
    emulator.serve(WORKSPACE + "&generation=2")
    second = gcli.run(*args, cwd=folder)
    assert second.returncode == 0, second.stderr[-2000:]
    calls = emulator.stats()["routes"]

    workspace = Workspace(4, 21, 2)
    subjects = workspace.roster()
    for listing in (
        "gmail.users.getProfile",
        "gmail.users.messages.list",
        "drive.files.list",
        "drive.changes.getStartPageToken",
    ):
        assert listing not in calls, f"{listing} was called {calls[listing]} times"
    assert calls["gmail.users.history.list"] == len(subjects)
    assert calls["calendar.events.list"] == len(subjects)
    assert calls["drive.changes.list"] == len(subjects)
    assert calls["chat.spaces.messages.list"] == sum(
        len(workspace.chat_spaces(s)) for s in subjects
    )
    alive_changed = sum(
        1
        for s in subjects
        for _, message in workspace.gmail_changes(s, int(first["gmail", s, "historyId"]))
        if message is not None
    )
    assert calls["gmail.users.messages.get"] == alive_changed

    reference = gcli.sim_sweep(tmp_path / "sim", WORKSPACE, WORKSPACE + "&generation=2")
    assert sorted(gcli.query(db, LAST_SWEEP_ENDS)) == sorted(gcli.query(reference, LAST_SWEEP_ENDS))
    assert gcli.snapshot(db) == gcli.snapshot(reference)

    old_uploads = {
        (s, f.id)
        for s in subjects
        for f in workspace.drive(s).files
        if f.generation == 2
        and not f.gone
        and f.modified_time < parse_time(first["drive", s, "last_modified_time"])
    }
    stored = set(gcli.query(db, "SELECT subject_email, id FROM drive_files WHERE deleted = 0"))
    assert old_uploads and old_uploads <= stored
