"""The closing lines of `sweep run` say what a rerun would do and what COMPLETE left out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import SweepCLI

SOURCE = ("--source", "sim://?subjects=3", "--services", "gmail", "--quiet")


def test_a_run_with_nothing_to_do_says_where_the_rest_is(workdir: Path, cli: SweepCLI) -> None:
    """With the only selected subject paused, the run plans nothing: it must not promise that
    rerunning the same command continues (it would plan nothing again), and names the
    exclusion in the sweep line."""
    first = cli.run("run", *SOURCE, "--max-pages", "1", cwd=workdir)
    assert first.returncode == 3 and "rerun the same command to continue" in first.stdout
    assert cli.run("pause", "user2@example.com", "--reason", "hold", cwd=workdir).returncode == 0
    idle = cli.run("run", *SOURCE, "--subjects", "user2@example.com", cwd=workdir)
    assert idle.returncode == 3, idle.stdout
    assert "0/0 planned pairs complete" in idle.stdout
    assert "rerun the same command" not in idle.stdout
    assert "nothing left to do in this run's selection" in idle.stdout
    assert "2 partial, 0 errors (excluded: 1 paused subject)" in idle.stdout


def test_a_sweep_of_paused_subjects_only_says_so(workdir: Path, cli: SweepCLI) -> None:
    """COMPLETE over no subject at all (the only one asked for is paused) reads as such."""
    assert cli.run("run", *SOURCE, "--max-pages", "1", cwd=workdir).returncode == 3
    assert cli.run("pause", "user1@example.com", "--reason", "hold", cwd=workdir).returncode == 0
    assert cli.run("block", "user3@example.com", "--reason", "gone", cwd=workdir).returncode == 0
    only = cli.run("run", *SOURCE, "--subjects", "user1@example.com", "--no-resume", cwd=workdir)
    assert only.returncode == 0, only.stdout
    assert "COMPLETE: 0/0 subjects complete, 0 partial, 0 errors (excluded: 1 paused subject)" in (
        only.stdout
    )
    whole = cli.run("run", *SOURCE, "--no-resume", "--exhaust", cwd=workdir)
    assert whole.returncode == 0, whole.stdout
    assert "1/1 subjects complete" in whole.stdout
    assert "(excluded: 1 paused subject, 1 blocked pair)" in whole.stdout
