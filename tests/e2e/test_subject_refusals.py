"""`--subjects` outside the roster a run would sweep: refused by name (exit 2), ledger unchanged.

A subject the roster does not have plans no pair, so without the refusal a typo reads as a run of
"0/0 planned pairs" that every rerun repeats.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import SweepCLI

SOURCE = "sim://?subjects=3&page_size=2"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def _open_sweep(workdir: Path, cli: SweepCLI) -> Path:
    """A ledger whose sweep is still open (one page per attempt leaves every pair PARTIAL)."""
    run = cli.run("run", "--source", SOURCE, "--max-pages", "1", "--quiet", cwd=workdir)
    assert run.returncode == 3, run.stderr
    return workdir / "sweep.db"


def test_a_subject_outside_the_open_sweeps_roster_is_refused(workdir: Path, cli: SweepCLI) -> None:
    """Only the unknown subjects are named; nothing is appended; a known one in another letter
    case is accepted (subjects compare case-insensitively)."""
    ledger = _open_sweep(workdir, cli)
    before = _digest(ledger)
    refused = cli.run(
        "run",
        "--source",
        SOURCE,
        "--subjects",
        "user1@example.com,nobody@example.com",
        cwd=workdir,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "Error: --subjects: nobody@example.com is not in the roster of the open sweep "
        f"{_sweep_id(cli, ledger)} (3 subjects); a subject the source listed since it opened "
        "joins a new sweep (--no-resume)"
    ]
    assert _digest(ledger) == before
    again = cli.run("run", "--source", SOURCE, "--subjects", "nobody@example.com", cwd=workdir)
    assert again.returncode == 2 and _digest(ledger) == before
    known = cli.run(
        "run", "--source", SOURCE, "--subjects", "USER2@Example.COM", "--quiet", cwd=workdir
    )
    assert known.returncode == 3, known.stderr
    assert "run-" in known.stdout and "0/0 planned pairs" not in known.stdout


def test_a_subject_the_source_does_not_list_is_refused_as_bad_input(
    workdir: Path, cli: SweepCLI
) -> None:
    """With no sweep to continue the roster is the source's: an unknown subject is exit 2 (bad
    input, not an internal error) naming it and the source, and no ledger is created."""
    refused = cli.run("run", "--source", SOURCE, "--subjects", "nobody@example.com", cwd=workdir)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "Error: --subjects: nobody@example.com is not in the roster of "
        "sim://?page_size=2&subjects=3"
    ]
    assert not (workdir / "sweep.db").exists()


def test_log_refuses_a_subject_the_ledger_never_saw(workdir: Path, cli: SweepCLI) -> None:
    """`log --subject` with a subject no roster or event names is refused (exit 2), as an unknown
    run or sweep id is; a known subject (any letter case) without matching lines is an empty
    answer (one page per attempt writes no cursor)."""
    _open_sweep(workdir, cli)
    unknown = cli.run("log", "--subject", "nobody@example.com", cwd=workdir)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "Error: no subject nobody@example.com in sweep.db (no roster or event names it)"
    ]
    empty = cli.run("log", "--subject", "USER1@example.com", "--phase", "CURSOR_WRITE", cwd=workdir)
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "")
    lines = cli.run("log", "--subject", "USER1@example.com", cwd=workdir)
    assert lines.returncode == 0 and "subject=user1@example.com" in lines.stdout


def _sweep_id(cli: SweepCLI, ledger: Path) -> str:
    rows = cli.query(ledger, "SELECT sweep_id FROM events WHERE kind = 'SWEEP_OPEN'")
    return str(rows[-1][0])
