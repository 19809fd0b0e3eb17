"""A ledger, lock or log file that cannot be opened: one line naming it and why, exit 2, no
traceback, and the ledger as it was.

Tests run as root in CI, where file modes stop nothing: most cases are built so that they fail
for root too (a folder where a file must go, a path under /proc). The read-only cases use
`chmod` for a user and `chattr +i` for root, and skip, saying why, where neither takes hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SweepCLI

SOURCE = ["--source", "sim://?subjects=2", "--quiet"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ledger(workdir: Path, cli: SweepCLI) -> Path:
    run = cli.run("run", "--exhaust", "--services", "gmail", *SOURCE, cwd=workdir)
    assert run.returncode == 0, run.stderr
    return workdir / "sweep.db"


def _refused(result: subprocess.CompletedProcess[str], needle: str) -> None:
    """Exit 2 with exactly one line on stderr, containing `needle`."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


@contextlib.contextmanager
def _unwritable(path: Path) -> Iterator[None]:
    """`path` (a file or a folder) cannot be written by this process, root included, inside the
    block: `chmod` for a user, `chattr +i` for root (modes do not stop root). Skips the test
    where neither takes hold, so a test never passes without the condition it checks."""
    mode = path.stat().st_mode
    chattr = shutil.which("chattr")
    if os.geteuid() != 0:
        path.chmod(0o555 if path.is_dir() else 0o444)
    elif chattr is None:
        pytest.skip("running as root, and no chattr to make a path immutable")
    else:
        made = subprocess.run(
            [chattr, "+i", str(path)], check=False, capture_output=True, text=True
        )
        if made.returncode != 0:
            pytest.skip(f"running as root, and chattr +i failed here: {made.stderr.strip()}")
    try:
        probe = path / "probe" if path.is_dir() else path
        try:
            with open(probe, "a", encoding="utf-8"):
                pass
        except OSError:
            pass
        else:
            pytest.skip(f"{path} is still writable for this process")
        yield
    finally:
        if os.geteuid() != 0:
            path.chmod(mode)
        elif chattr is not None:
            subprocess.run([chattr, "-i", str(path)], check=True)


def _run(
    cli: SweepCLI, workdir: Path, command: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    """`sweep run`, or a one-cycle `sweep daemon`, of the test source with `flags`."""
    cycles = ["--max-cycles", "1", "--interval", "0"] if command == "daemon" else []
    done: subprocess.CompletedProcess[str] = cli.run(command, *SOURCE, *cycles, *flags, cwd=workdir)
    return done


@pytest.mark.parametrize("command", ["run", "daemon"])
@pytest.mark.parametrize(
    ("log", "why"),
    [("missing/folder/x.log", "No such file or directory"), ("/proc/version", "")],
)
def test_a_log_file_that_cannot_be_written_is_refused(
    ledger: Path, workdir: Path, cli: SweepCLI, command: str, log: str, why: str
) -> None:
    """`--log-file` in a missing folder, or a file nobody can append to (any user's error for
    /proc/version: EACCES, or EINVAL for root)."""
    before = _digest(ledger)
    result = _run(cli, workdir, command, "--log-file", log)
    _refused(result, f"Error: cannot write the log file {log}: {why}")
    assert _digest(ledger) == before


@pytest.mark.parametrize("command", ["run", "daemon"])
def test_a_lock_file_that_cannot_be_opened_is_refused(
    ledger: Path, workdir: Path, cli: SweepCLI, command: str
) -> None:
    """A folder where the writer lock must go: refused before anything is appended."""
    lock = workdir / "sweep.db.lock"
    lock.unlink(missing_ok=True)  # the run that made the ledger left its (released) lock
    lock.mkdir()
    before = _digest(ledger)
    result = _run(cli, workdir, command)
    _refused(
        result,
        "Error: cannot open the ledger sweep.db: its lock file sweep.db.lock cannot be opened "
        "for writing (Is a directory)",
    )
    assert _digest(ledger) == before


def test_a_ledger_under_proc_is_refused(workdir: Path, cli: SweepCLI) -> None:
    """`--db /proc/version`: its lock file cannot be created, for root too."""
    result = cli.run("run", *SOURCE, "--db", "/proc/version", cwd=workdir)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    _refused(result, "Error: cannot open the ledger /proc/version: its lock file")
    assert list(workdir.iterdir()) == [], "a refused run leaves nothing behind"


@pytest.mark.parametrize(
    "args", [["run", *SOURCE], ["block", "user1@example.com", "--reason", "left"]]
)
def test_a_ledger_sqlite_can_only_read_is_refused_before_any_append(
    ledger: Path, workdir: Path, cli: SweepCLI, args: list[str]
) -> None:
    """A folder where SQLite's -shm file must go leaves SQLite able to read the ledger but not
    write it: a writer is refused when it opens the ledger, not by a traceback at its first
    append."""
    (workdir / "sweep.db-shm").mkdir()
    before = _digest(ledger)
    result = cli.run(*args, cwd=workdir)
    _refused(result, "Error: cannot open the ledger sweep.db: sweep.db-shm is a folder")
    assert _digest(ledger) == before


def test_a_read_only_ledger_is_refused(ledger: Path, workdir: Path, cli: SweepCLI) -> None:
    """A ledger file that cannot be written: `run` says so; `status` still reads it."""
    before = _digest(ledger)
    with _unwritable(ledger):
        result = cli.run("run", *SOURCE, cwd=workdir)
        status = cli.run("status", cwd=workdir)
    _refused(result, "Error: cannot open the ledger sweep.db: the file is read-only")
    assert status.returncode == 0, status.stderr
    assert _digest(ledger) == before


@pytest.mark.parametrize("command", ["status", "check", "log", "replay", "run"])
def test_a_ledger_in_a_folder_that_cannot_be_written(
    workdir: Path, cli: SweepCLI, command: str
) -> None:
    """SQLite keeps -wal and -shm files beside a ledger: in a folder that cannot be written it
    cannot open it, and every command says that (not that the file is no ledger)."""
    folder = workdir / "shelf"
    folder.mkdir()
    made = cli.run("run", "--db", "shelf/sweep.db", "--exhaust", *SOURCE, cwd=workdir)
    assert made.returncode == 0, made.stderr
    ledger = folder / "sweep.db"
    before = _digest(ledger)
    with _unwritable(folder):
        extra = SOURCE if command == "run" else []
        result = cli.run(command, "--db", "shelf/sweep.db", *extra, cwd=workdir)
    _refused(
        result,
        "Error: cannot open the ledger shelf/sweep.db: its folder shelf cannot be written",
    )
    assert "not a Sweepledger ledger" not in result.stderr
    assert _digest(ledger) == before
