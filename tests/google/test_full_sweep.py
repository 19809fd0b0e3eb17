"""Acceptance 1 and 5: a full google:// sweep of the emulator stores what a sim:// sweep stores,
completes, writes the emulator's historyIds, and never logs a secret (AUTH_DEBUG=1 included)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sweepledger.collectors.emulator.control import EmulatorProcess
from sweepledger.collectors.sim.workspace import Workspace

if TYPE_CHECKING:
    from conftest import EmulatorFactory, GoogleCLI

WORKSPACE = "sim://?subjects=6&seed=21"


@dataclass
class FullSweep:
    emulator: EmulatorProcess
    folder: Path
    run: subprocess.CompletedProcess[str]
    check: subprocess.CompletedProcess[str]
    log_file: Path

    @property
    def db(self) -> Path:
        return self.folder / "sweep.db"


@pytest.fixture(scope="module")
def full_sweep(
    module_emulators: EmulatorFactory, tmp_path_factory: pytest.TempPathFactory, gcli: GoogleCLI
) -> FullSweep:
    """One full sweep through google:// with AUTH_DEBUG=1, shared by this module's tests."""
    emulator = module_emulators(WORKSPACE)
    folder = tmp_path_factory.mktemp("google-full")
    log_file = folder / "sweep.log"
    run = gcli.run(
        "run",
        "--full-sweep",
        "--exhaust",
        "--workers",
        "2",
        "--source",
        emulator.source,
        "--log-file",
        str(log_file),
        cwd=folder,
        env=gcli.env(AUTH_DEBUG="1"),
    )
    check = gcli.run("check", "--require-complete", cwd=folder)
    return FullSweep(emulator, folder, run, check, log_file)


def test_full_sweep_stores_the_same_items_as_a_sim_sweep(
    full_sweep: FullSweep, gcli: GoogleCLI, tmp_path: Path
) -> None:
    """Every item table holds exactly the rows (ids and fields) a sim:// sweep of the same
    workspace stores, and `check --require-complete` passes."""
    assert full_sweep.run.returncode == 0, full_sweep.run.stderr[-3000:]
    assert full_sweep.check.returncode == 0, full_sweep.check.stdout + full_sweep.check.stderr
    reference = gcli.sim_sweep(tmp_path / "sim", WORKSPACE)
    ours, theirs = gcli.snapshot(full_sweep.db), gcli.snapshot(reference)
    for table in gcli.ITEM_TABLES:
        assert {row[:2] for row in ours[table]} == {row[:2] for row in theirs[table]}, table
        assert ours[table] == theirs[table], table


def test_gmail_cursors_are_the_emulators_history_ids(
    full_sweep: FullSweep, gcli: GoogleCLI
) -> None:
    """Each subject's gmail historyId cursor is the profile historyId the emulator serves."""
    workspace = Workspace(6, 21, 1)
    cursors = dict(
        gcli.query(
            full_sweep.db,
            "SELECT subject, value FROM sync_cursor WHERE service = 'gmail' AND key = 'historyId'",
        )
    )
    assert cursors == {s: str(workspace.gmail_profile_history_id(s)) for s in workspace.roster()}


def test_the_log_of_a_clean_full_run_passes_the_seed_checks(full_sweep: FullSweep) -> None:
    """END lines == subjects x services, no partial=1, no err= other than err=none."""
    lines = full_sweep.log_file.read_text().splitlines()
    assert sum(1 for line in lines if " phase=END " in line) == 6 * 4
    assert not any("partial=1" in line for line in lines)
    assert set(re.findall(r"err=\S+", "\n".join(lines))) == {"err=none"}


def test_no_secret_in_any_log_line_with_auth_debug(full_sweep: FullSweep, gcli: GoogleCLI) -> None:
    """With AUTH_DEBUG=1 each token exchange is logged (subject, scopes, expiry, outcome), and
    neither the private key, an access token, a signed grant nor an Authorization header
    appears in stdout, stderr, the log file, the emulator's output or the ledger."""
    key = json.loads(full_sweep.emulator.key.read_text())
    key_lines = [line for line in key["private_key"].splitlines() if "PRIVATE KEY" not in line]
    exchanges = [
        line
        for line in full_sweep.run.stderr.splitlines()
        if line.startswith("AUTH token_exchange ")
    ]
    assert len(exchanges) == 6 * 4 + 1  # four scopes per subject, and the Directory as admin
    for line in exchanges:
        assert re.search(r"subject=\S+@example\.com scopes=\S+ outcome=ok expiry=\S+Z", line)
    ledger = "\n".join(str(row[0]) for row in gcli.query(full_sweep.db, "SELECT data FROM events"))
    replayed = gcli.run("log", cwd=full_sweep.folder)
    texts = {
        "stdout": full_sweep.run.stdout,
        "stderr": full_sweep.run.stderr,
        "log file": full_sweep.log_file.read_text(),
        "ledger": ledger,
        "sweep log": replayed.stdout + replayed.stderr,
        "emulator": full_sweep.emulator.stderr_path.read_text(),
    }
    secrets = ["ya29.", "Bearer ", "Authorization", "authorization", "eyJ", *key_lines]
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret[:12]!r} leaked into the {where}"
