"""Permanent failures become BLOCKED pairs that leave the totals; operators pause and unblock."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import SweepCLI

SOURCE = "sim://?subjects=3&suspended=user2@example.com"


def test_suspended_subject_is_blocked_after_max_attempts(workdir: Path, cli: SweepCLI) -> None:
    """Forbidden pairs end ERR:Forbidden until --max-attempts attempts in the sweep; then they
    are BLOCKED with the reason, leave the active totals, and the sweep completes without them."""
    args = ("run", "--exhaust", "--source", SOURCE, "--max-attempts", "2")
    first = cli.run(*args, cwd=workdir)
    assert first.returncode == 3
    assert first.stderr.count("err=Forbidden phase") == 0
    assert first.stderr.count("phase=END ok=0 count=0 partial=0 err=Forbidden") == 4
    status = json.loads(cli.run("status", "--json", cwd=workdir).stdout)
    assert status["invariants"]["errors_count"] == 4
    second = cli.run(*args, cwd=workdir)
    assert second.returncode == 0, second.stdout
    status = json.loads(cli.run("status", "--json", cwd=workdir).stdout)
    assert status["verdict"] == "COMPLETE"
    assert status["invariants"]["active_targets_total"] == 2
    assert status["invariants"]["blocked_pairs"] == 4
    assert {b["service"] for b in status["blocked"]} == {"gmail", "calendar", "chat", "drive"}
    assert all("Forbidden in 2 attempts" in b["reason"] for b in status["blocked"])
    text = cli.run("status", cwd=workdir).stdout
    assert re.search(
        r"^BLOCKED user2@example\.com gmail since [-0-9]+ [:0-9]+ \(seq \d+\): "
        r"Forbidden in 2 attempts",
        text,
        re.MULTILINE,
    )
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0


def test_paused_subject_is_skipped_and_listed(workdir: Path, cli: SweepCLI) -> None:
    """A paused subject is not swept, is listed as paused, and leaves the totals; unpausing
    brings it back into the next plan."""
    assert cli.run(
        "run",
        "--exhaust",
        "--source",
        "sim://?subjects=3",
        "--max-pages",
        "1",
        "--services",
        "gmail",
        cwd=workdir,
    ).returncode in (0, 3)
    paused = cli.run("pause", "user3@example.com", "--reason", "legal hold", cwd=workdir)
    assert paused.returncode == 0 and "PAUSE user3@example.com recorded" in paused.stdout
    run = cli.run(
        "run", "--exhaust", "--source", "sim://?subjects=3", "--services", "gmail", cwd=workdir
    )
    assert "subject=user3@example.com" not in run.stderr
    status = json.loads(cli.run("status", "--json", cwd=workdir).stdout)
    [pause_seq] = cli.query(workdir / "sweep.db", "SELECT seq FROM events WHERE kind = 'PAUSE'")
    [flag] = status["paused"]
    assert flag | {"since": None} == {
        "subject": "user3@example.com",
        "reason": "legal hold",
        "since": None,
        "since_seq": pause_seq[0],
    }
    assert status["invariants"]["active_targets_total"] == 2
    assert cli.run("unpause", "user3@example.com", cwd=workdir).returncode == 0
    run = cli.run(
        "run", "--exhaust", "--source", "sim://?subjects=3", "--services", "gmail", cwd=workdir
    )
    assert run.returncode == 0
    assert "subject=user3@example.com phase=END" in run.stderr


def test_operator_commands_match_subjects_case_insensitively(workdir: Path, cli: SweepCLI) -> None:
    """Emails are case-insensitive: `block USER1@Example.com` blocks the roster's
    user1@example.com (recorded in the roster's spelling), and the next sweep leaves it out;
    `unblock` in yet another spelling lifts it for the next sweep (the closed one keeps its
    figures); `log --subject` finds it in any spelling."""
    args = ("run", "--exhaust", "--source", "sim://?subjects=2", "--services", "gmail")
    assert cli.run(*args, cwd=workdir).returncode == 0
    blocked = cli.run("block", "USER1@Example.com", "--reason", "left", cwd=workdir)
    assert blocked.returncode == 0
    assert "BLOCK user1@example.com recorded" in blocked.stdout
    run = cli.run(*args, cwd=workdir)
    assert run.returncode == 0
    assert "subject=user1@example.com" not in run.stderr
    assert "subject=user2@example.com phase=END" in run.stderr
    status = json.loads(cli.run("status", "--json", cwd=workdir).stdout)
    assert status["invariants"]["blocked_pairs"] == 1
    lifted = cli.run("unblock", "User1@EXAMPLE.COM", cwd=workdir)
    assert lifted.returncode == 0 and "UNBLOCK user1@example.com recorded" in lifted.stdout
    after = json.loads(cli.run("status", "--json", cwd=workdir).stdout)
    assert after["blocked"] == [] and after["verdict"] == "COMPLETE"
    # the closed sweep keeps the figures it closed with: user1 is due in the next sweep only
    assert after["invariants"]["blocked_pairs"] == 1
    text = cli.run("status", cwd=workdir).stdout
    assert "invariants (as the sweep closed):" in text and "NOT MET" not in text
    lines = cli.run("log", "--subject", "USER2@EXAMPLE.COM", cwd=workdir).stdout.splitlines()
    assert lines and all("subject=user2@example.com " in line for line in lines)
