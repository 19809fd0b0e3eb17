"""Bad input: one clear line, a non-zero exit, no traceback, and the ledger unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SweepCLI


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@pytest.fixture
def ledger(workdir: Path, cli: SweepCLI) -> Path:
    run = cli.run(
        "run", "--exhaust", "--source", "sim://?subjects=2", "--services", "gmail", cwd=workdir
    )
    assert run.returncode == 0
    return workdir / "sweep.db"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--services", "gmail,docs"], "docs is out of scope"),
        (["run", "--services", "gmail,fax"], "unknown service 'fax'"),
        (["run", "--services", ""], "Invalid value for --services: no service given"),
        (["run", "--services", " , "], "Invalid value for --services: no service given"),
        (["daemon", "--services", ""], "Invalid value for --services: no service given"),
        (
            ["unblock", "user1@example.com", "--service", ""],
            "Invalid value for --service: no service given",
        ),
        (
            ["run", "--subjects", "user01@example.com,not-an-email"],
            "'not-an-email' is not an email",
        ),
        (["run", "--source", "sim://?subjects=abc"], "subjects"),
        (["run", "--source", "ftp://x"], "unknown source scheme"),
        (["run", "--source", "sim://?colour=blue"], "colour"),
        (["run", "--since", "last tuesday"], "not an RFC 3339 date"),
        (["run", "--max-pages", "0"], "--max-pages"),
        (["run", "--since", "2025-01-01", "--months-back", "3"], "not both"),
        (
            ["run", "--full-sweep", "--subjects", "user1@example.com"],
            "give --full-sweep (the whole roster) or --subjects (a few subjects), not both",
        ),
        (
            ["daemon", "--full-sweep", "--subjects", "user1@example.com"],
            "give --full-sweep (the whole roster) or --subjects (a few subjects), not both",
        ),
        (["block", "nobody"], "--reason"),
        (["unpause", "user1"], "Invalid value for SUBJECT: 'user1' is not an email"),
        (
            ["pause", "us\x1b[2Ker1@example.com"],
            "Invalid value for SUBJECT: 'us\\x1b[2Ker1@example.com' is not an email",
        ),
        (
            ["block", "user1@\u202emoc.elpmaxe", "--reason", "x"],
            "Invalid value for SUBJECT: 'user1@\\u202emoc.elpmaxe' is not an email",
        ),
        (["log", "--run", "run-typo"], "no run run-typo in sweep.db"),
        (["log", "--service", "fax"], "'fax' is not one of"),
        (["log", "--sweep", "sweep-typo"], "no sweep sweep-typo in sweep.db"),
        (["log", "--subject", "unknown@x"], "no subject unknown@x in sweep.db"),
        (["status", "--as-of", "999999"], "past the last event"),
        (["replay", "--as-of", "999999"], "past the last event"),
        (["run", "--workers", "zero"], "(see 'sweep run --help')"),
        (["run", "--no-such-flag"], "No such option '--no-such-flag' (see 'sweep run --help')"),
        (["rnu"], "No such command 'rnu'. Did you mean 'run'? (see 'sweep --help')"),
        (["pause", "user1@example.com", "--reason", "x" * 501], "--reason is 501 characters"),
        (["run", "--max-seconds", "nan"], "'nan' is not a number of seconds"),
        (["run", "--max-seconds", "inf"], "inf is not in the range 0<x<=31622400"),
        (["run", "--retry-wait", "1e12"], "is not in the range 0<=x<=31622400"),
        (["daemon", "--interval", "nan"], "'nan' is not a number of seconds"),
        (["run", "--max-pages", "99999999999999999999"], "not in the range 1<=x<=2147483647"),
        (["runs", "--limit", "99999999999999999999"], "not in the range 1<=x<=2147483647"),
        (["run", "--since", "0999-12-31"], "is before 1970-01-01"),
        (["run", "--months-back", "12400"], "12400 is not in the range 1<=x<=600"),
        (["block", "user1@example.com", "--reason", "a\udcffb"], "'a\\xffb' is not valid UTF-8"),
        (["log", "--subject", "a\udcff@b.com"], "'a\\xff@b.com' is not valid UTF-8"),
    ],
)
def test_refusals_leave_the_ledger_unchanged(
    ledger: Path, workdir: Path, cli: SweepCLI, args: list[str], needle: str
) -> None:
    """Each bad input is refused with one line naming the problem (a usage mistake too, with
    the help to read instead of click's synopsis); the ledger's bytes are the same afterwards."""
    before = _digest(ledger)
    result = cli.run(*args, cwd=workdir)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert _digest(ledger) == before


@pytest.mark.parametrize("value", ["nan", "inf", "0", "1e12", "soon"])
def test_a_bad_time_budget_in_the_environment_is_refused(
    workdir: Path, cli: SweepCLI, value: str
) -> None:
    """$MAX_SECONDS_PER_RUN gets the checks --max-seconds gets: nan would make a budget never
    reached or spent before the first page, and a huge figure overflows the timer."""
    result = cli.run("run", "--quiet", cwd=workdir, env=cli.env(MAX_SECONDS_PER_RUN=value))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"MAX_SECONDS_PER_RUN='{value}'" in lines[0], result.stderr
    assert not (workdir / "sweep.db").exists()


def test_open_sweep_resumed_with_another_scope_is_refused_clearly(
    ledger: Path, workdir: Path, cli: SweepCLI
) -> None:
    """Resuming an open sweep with other services names its scope and --no-resume."""
    paused = cli.run(
        "run", "--source", "sim://?subjects=2&page_size=2", "--max-pages", "1", cwd=workdir
    )
    assert paused.returncode == 3
    before = _digest(ledger)
    other = cli.run(
        "run", "--source", "sim://?subjects=2&page_size=2", "--services", "gmail", cwd=workdir
    )
    assert other.returncode == 2
    assert (
        "covers source sim://?page_size=2&subjects=2 and services gmail,calendar,chat,drive"
        in other.stderr
    )
    assert _digest(ledger) == before


@pytest.mark.parametrize(
    ("opened", "asked", "line"),
    [
        (
            [],
            ["--months-back", "2"],
            "was opened with no window (neither --since nor --months-back); this run asks for "
            "--months-back 2.",
        ),
        (
            ["--since", "2025-01-01"],
            ["--months-back", "3"],
            "was opened with --since 2025-01-01; this run asks for --months-back 3.",
        ),
    ],
)
def test_another_window_is_named_by_its_flags(
    workdir: Path, cli: SweepCLI, opened: list[str], asked: list[str], line: str
) -> None:
    """Resuming an open sweep with another window names both windows as the flags that ask for
    them, not as the dicts the ledger records."""
    source = ["--source", "sim://?subjects=2&page_size=2", "--quiet"]
    assert cli.run("run", *source, *opened, "--max-pages", "1", cwd=workdir).returncode == 3
    before = _digest(workdir / "sweep.db")
    other = cli.run("run", *source, *asked, cwd=workdir)
    assert other.returncode == 2
    assert line in other.stderr and "{" not in other.stderr, other.stderr
    assert _digest(workdir / "sweep.db") == before


@pytest.mark.parametrize("command", ["status", "check", "log", "replay", "run"])
def test_junk_and_foreign_files_are_refused(workdir: Path, cli: SweepCLI, command: str) -> None:
    """A file that is not SQLite, or SQLite that is not a ledger, is refused by every command
    as bad input (exit 2, as a missing folder is) and left as it was."""
    junk = workdir / "junk.db"
    junk.write_bytes(b"this is not a database, just some bytes" * 50)
    foreign = workdir / "foreign.db"
    import sqlite3

    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    for path, needle in ((junk, "not an SQLite database"), (foreign, "without Sweepledger")):
        before = _digest(path)
        result = cli.run(command, "--db", str(path), cwd=workdir)
        assert result.returncode == 2, result.stderr
        assert needle in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert _digest(path) == before


@pytest.mark.parametrize("command", ["status", "check", "replay", "log", "runs"])
def test_missing_ledger_and_missing_folder(workdir: Path, cli: SweepCLI, command: str) -> None:
    """Read commands on a missing ledger are bad input (exit 2: `sweep check` answering 1 would
    read as "violations found"), and a run into a missing folder too; nothing is created."""
    missing = cli.run(command, "--db", "nothing.db", cwd=workdir)
    assert missing.returncode == 2 and "no ledger at nothing.db" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
    assert not (workdir / "nothing.db").exists()
    run = cli.run("run", "--db", "no/such/dir/x.db", cwd=workdir)
    assert run.returncode == 2 and "folder no/such/dir does not exist" in run.stderr


@pytest.mark.parametrize("command", ["status", "check", "replay", "run"])
def test_a_ledger_from_a_newer_sweepledger_is_refused(
    ledger: Path, workdir: Path, cli: SweepCLI, command: str
) -> None:
    """A ledger with a newer schema cannot be read by this build: exit 2 naming both versions,
    the file untouched (not exit 1, which `sweep check` keeps for violations it found)."""
    import sqlite3

    with sqlite3.connect(ledger) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    before = _digest(ledger)
    refused = cli.run(command, "--db", str(ledger), cwd=workdir)
    assert refused.returncode == 2, refused.stderr
    assert "schema version 99" in refused.stderr and "Traceback" not in refused.stderr
    assert _digest(ledger) == before


def test_unblock_of_the_wrong_scope_names_the_block_there_is(
    ledger: Path, workdir: Path, cli: SweepCLI
) -> None:
    """A subject blocked for every service is not unblocked by `--service gmail`: the refusal
    says which block exists and appends nothing; the matching unblock then succeeds."""
    assert cli.run("block", "user1@example.com", "--reason", "left", cwd=workdir).returncode == 0
    before = _digest(ledger)
    wrong = cli.run("unblock", "user1@example.com", "--service", "gmail", cwd=workdir)
    assert wrong.returncode == 2
    assert wrong.stderr == (
        "Error: gmail/user1@example.com has no block of its own: the block of user1@example.com "
        "for every service keeps it blocked (unblock that, without --service)\n"
    )
    assert _digest(ledger) == before
    right = cli.run("unblock", "user1@example.com", cwd=workdir)
    assert right.returncode == 0 and "UNBLOCK user1@example.com recorded" in right.stdout
