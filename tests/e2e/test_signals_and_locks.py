"""Signals, double starts, stale runs and the time budget, with real processes and signals."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytest

if TYPE_CHECKING:
    from conftest import EmulatorFactory, SweepCLI

SLOW = "sim://?subjects=4&latency_ms=40"
PACED = "sim://?subjects=2&seed=21&quota_user=1"
"""Google's APIs with a quota of one unit a second per user: a Gmail page (about 130 units)
takes minutes, nearly all of them spent waiting for the limiter to let a call go."""


def _wait_for(cli: SweepCLI, db: Path, sql: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if db.exists() and cli.query(db, sql)[0][0]:
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {sql}")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_records_the_interrupted_attempt(
    workdir: Path, cli: SweepCLI, signum: signal.Signals, code: int
) -> None:
    """SIGTERM/SIGINT end the open attempt with CURSOR_SKIP reason=interrupted + END and the
    run with RUN_END interrupted, exiting 143/130 within 5 s; the ledger checks clean."""
    db = workdir / "sweep.db"
    proc = cli.start("run", "--exhaust", "--source", SLOW, cwd=workdir)
    _wait_for(cli, db, "SELECT COUNT(*) FROM events WHERE kind = 'PAGE'")
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == code
    assert time.monotonic() - sent < 5
    assert "phase=CURSOR_SKIP" in err and "reason:interrupted" in err
    ends = cli.query(db, "SELECT json_extract(data, '$.status') FROM events WHERE kind='RUN_END'")
    assert ends == [("interrupted",)]
    skips = cli.query(
        db,
        "SELECT COUNT(*) FROM events WHERE kind = 'CURSOR_SKIP' AND "
        "json_extract(data, '$.reason') = 'interrupted'",
    )
    assert skips == [(1,)]
    assert cli.run("check", cwd=workdir).returncode == 0
    again = cli.run("run", "--exhaust", "--source", SLOW, cwd=workdir)
    assert again.returncode == 0
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0


def _signal_when(
    proc: subprocess.Popen[str], signum: signal.Signals, ready: Callable[[], None]
) -> tuple[str, float]:
    """Once `ready` returns, send `signum` to the run: its stderr and how long it took to
    stop (it is killed if it does not)."""
    try:
        ready()
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        return err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def _interrupted_then_converges(
    cli: SweepCLI, workdir: Path, args: Sequence[str], err: str, mend: Callable[[], None]
) -> None:
    """The stopped run recorded its attempt interrupted and ended `interrupted`, the ledger
    checks clean, and once `mend` lifts the cause the same command converges."""
    assert "phase=CURSOR_SKIP" in err and "reason:interrupted" in err
    assert "Traceback" not in err and "Exception in thread" not in err
    db = workdir / "sweep.db"
    ends = cli.query(db, "SELECT json_extract(data, '$.status') FROM events WHERE kind='RUN_END'")
    assert ends == [("interrupted",)]
    assert cli.run("check", cwd=workdir).returncode == 0
    mend()
    again = cli.run(*args, cwd=workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_a_quota_pacing_wait_at_once(
    workdir: Path, cli: SweepCLI, emulators: EmulatorFactory, signum: signal.Signals, code: int
) -> None:
    """A `google://` run paced to a tiny quota spends its time waiting for its turn. A signal
    ends the wait itself, not the page after it: the run exits 143/130 within 2 s with the
    interrupted attempt recorded (it used to wait out the page, over a minute), the ledger
    checks clean, and once the quota is lifted the same command converges."""
    emulator = emulators(PACED)
    args = ("run", "--exhaust", "--source", emulator.source)

    def pacing() -> None:
        _wait_for(
            cli, workdir / "sweep.db", "SELECT COUNT(*) FROM events WHERE kind = 'SWEEP_OPEN'"
        )
        deadline = time.monotonic() + 30
        while emulator.quota()["refused_total"] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # the limiter has met the quota: from now on it paces to it

    proc = cli.start(*args, cwd=workdir)
    err, took = _signal_when(proc, signum, pacing)
    assert proc.returncode == code
    assert took < 2, f"the run took {took:.1f} s to stop"
    _interrupted_then_converges(
        cli, workdir, args, err, lambda: emulator.set_quota(quota_user=None)
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_does_not_wait_for_a_hung_request(
    workdir: Path, cli: SweepCLI, emulators: EmulatorFactory, signum: signal.Signals, code: int
) -> None:
    """Google calls that hang (the emulator now answering after a minute) do not hold a
    stop: the run leaves them in flight and exits 143/130 within 3 s (it used to wait out the
    client's 30 s read timeout), each open attempt recorded interrupted; the ledger checks
    clean, and once the API answers again the same command converges."""
    workspace = "sim://?subjects=2&seed=21&latency_ms=100"
    emulator = emulators(workspace)
    args = ("run", "--exhaust", "--source", emulator.source)

    def hanging() -> None:
        _wait_for(cli, workdir / "sweep.db", "SELECT COUNT(*) FROM events WHERE kind = 'START'")
        emulator.serve(workspace.replace("latency_ms=100", "latency_ms=60000"))
        time.sleep(1)  # the calls made before are answered; every call since hangs

    proc = cli.start(*args, cwd=workdir)
    err, took = _signal_when(proc, signum, hanging)
    assert proc.returncode == code
    assert took < 3, f"the run took {took:.1f} s to stop"
    open_attempts = cli.query(
        workdir / "sweep.db",
        "SELECT COUNT(*) FROM events WHERE kind = 'START' AND seq > (SELECT COALESCE(MAX(seq), 0) "
        "FROM events e WHERE e.kind = 'END' AND e.service = events.service "
        "AND e.subject = events.subject)",
    )
    assert open_attempts == [(0,)]
    _interrupted_then_converges(cli, workdir, args, err, lambda: emulator.serve(workspace))


def test_a_signal_ends_the_demo_sources_latency_at_once(workdir: Path, cli: SweepCLI) -> None:
    """The demo workspace's `latency_ms` stands for a slow service, and a stop does not wait it
    out (a minute per page here): exit 143 within 3 s, the attempt recorded interrupted, the
    ledger checks clean."""
    db = workdir / "sweep.db"
    proc = cli.start("run", "--source", "sim://?subjects=2&latency_ms=60000", cwd=workdir)

    def fetching() -> None:
        _wait_for(cli, db, "SELECT COUNT(*) FROM events WHERE kind = 'SWEEP_OPEN'")
        time.sleep(0.5)  # the first page's fetch is waiting out its latency

    err, took = _signal_when(proc, signal.SIGTERM, fetching)
    assert proc.returncode == 143
    assert took < 3, f"the run took {took:.1f} s to stop"
    assert "phase=CURSOR_SKIP" in err and "reason:interrupted" in err
    ends = cli.query(db, "SELECT json_extract(data, '$.status') FROM events WHERE kind='RUN_END'")
    assert ends == [("interrupted",)]
    assert cli.run("check", cwd=workdir).returncode == 0


def test_second_run_exits_4_naming_the_holder(workdir: Path, cli: SweepCLI) -> None:
    """While a run holds the ledger, a second `sweep run` exits 4 within a second, naming the
    holding run's id, pid and host, and changes nothing."""
    db = workdir / "sweep.db"
    proc = cli.start("run", "--exhaust", "--source", SLOW, cwd=workdir)
    try:
        _wait_for(cli, db, "SELECT COUNT(*) FROM events WHERE kind = 'PAGE'")
        started = time.monotonic()
        second = cli.run("run", "--exhaust", "--source", SLOW, cwd=workdir)
        elapsed = time.monotonic() - started
        assert second.returncode == 4
        assert elapsed < 3  # process start-up included; the lock itself waits 0.5 s
        holder = cli.query(db, "SELECT run_id FROM events WHERE kind = 'RUN_START'")[0][0]
        assert f"sweep.db is held by run {holder} (pid {proc.pid}" in second.stderr
        assert "last event" in second.stderr
        assert "Traceback" not in second.stderr
        status = cli.run("status", "--json", cwd=workdir)
        assert '"verdict": "RUNNING"' in status.stdout
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    runs = cli.query(db, "SELECT COUNT(*) FROM events WHERE kind = 'RUN_START'")
    assert runs == [(1,)]


def test_stale_run_is_closed_as_aborted_by_the_next_run(workdir: Path, cli: SweepCLI) -> None:
    """A run killed without RUN_END shows as INTERRUPTED, fails check, and the next run closes it
    with RUN_END status=aborted reason=stale before it starts its own work."""
    db = workdir / "sweep.db"
    proc = cli.start("run", "--exhaust", "--source", SLOW, cwd=workdir)
    _wait_for(cli, db, "SELECT COUNT(*) FROM events WHERE kind = 'PAGE'")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    status = cli.run("status", cwd=workdir)
    assert status.stdout.startswith("INTERRUPTED")
    check = cli.run("check", cwd=workdir)
    assert check.returncode == 1 and "never ended" in check.stdout
    rerun = cli.run("run", "--exhaust", "--source", SLOW, cwd=workdir)
    assert rerun.returncode == 0
    rows = cli.query(
        db,
        "SELECT run_id, json_extract(data, '$.status'), "
        "json_extract(data, '$.reason') FROM events WHERE kind = 'RUN_END' "
        "ORDER BY seq",
    )
    first_run = cli.query(db, "SELECT run_id FROM events WHERE kind = 'RUN_START' ORDER BY seq")
    assert rows[0] == (first_run[0][0], "aborted", "stale")
    assert rows[1][1] == "completed"
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0


def test_time_budget_pauses_and_the_next_run_continues(workdir: Path, cli: SweepCLI) -> None:
    """--max-seconds ends the attempt at a page boundary with CURSOR_SKIP reason=budget, the run
    paused (exit 75); the next run continues from the page checkpoint, not from page 1."""
    args = ("run", "--exhaust", "--source", "sim://?subjects=2&latency_ms=30&page_size=5")
    paused = cli.run(*args, "--max-seconds", "0.4", cwd=workdir)
    assert paused.returncode == 75, paused.stdout + paused.stderr[-500:]
    assert "reason:budget" in paused.stderr
    db = workdir / "sweep.db"
    pair = cli.query(db, "SELECT service, subject FROM events WHERE kind = 'CURSOR_SKIP'")[0]
    pages_before = cli.query(
        db,
        "SELECT MAX(json_extract(data, '$.page')) FROM events WHERE "
        "kind = 'PAGE' AND service = ? AND subject = ?",
        pair,
    )[0][0]
    env = cli.env(MAX_SECONDS_PER_RUN="0.01", RUN_TO_COMPLETION="true")
    resumed = cli.run(*args, cwd=workdir, env=env)
    assert resumed.returncode == 0
    first = next(
        line
        for line in resumed.stderr.splitlines()
        if f"service={pair[0]} subject={pair[1]} phase=PAGE" in line
    )
    assert isinstance(pages_before, int) and pages_before >= 1
    assert f"page:{pages_before + 1} " in first
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0


class Budgeted(NamedTuple):
    returncode: int
    stderr: str
    took: float


def _with_budget(
    cli: SweepCLI, workdir: Path, args: Sequence[str], *, seconds: int, give_up: float
) -> Budgeted:
    """`sweep run ARGS --max-seconds SECONDS`, and how long it took (killed after `give_up`)."""
    started = time.monotonic()
    done = cli.run(*args, "--max-seconds", str(seconds), cwd=workdir, timeout=give_up)
    return Budgeted(done.returncode, done.stderr, time.monotonic() - started)


def test_time_budget_cuts_a_pacing_wait_short(
    workdir: Path, cli: SweepCLI, emulators: EmulatorFactory
) -> None:
    """--max-seconds ends a run that is waiting for the quota at the budget, not after the
    wait (a page at one unit a second takes minutes): exit 75 within seconds, the attempt
    skipped with reason budget, the run paused; once the quota is lifted the same command
    converges."""
    emulator = emulators(PACED)
    args = ("run", "--exhaust", "--source", emulator.source)
    paused = _with_budget(cli, workdir, args, seconds=2, give_up=120)
    assert paused.returncode == 75, paused.stderr[-2000:]
    assert paused.took < 15, f"the run went on {paused.took:.1f} s past a 2 s budget"
    assert emulator.quota()["refused_total"] >= 1  # it did wait for the quota
    assert "phase=CURSOR_SKIP" in paused.stderr and "reason:budget" in paused.stderr
    assert "reason:interrupted" not in paused.stderr
    db = workdir / "sweep.db"
    ends = cli.query(
        db,
        "SELECT json_extract(data, '$.status'), json_extract(data, '$.reason') FROM events "
        "WHERE kind = 'RUN_END'",
    )
    assert ends == [("paused", "budget")]
    assert cli.run("check", cwd=workdir).returncode == 0
    emulator.set_quota(quota_user=None)
    again = cli.run(*args, cwd=workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0


def test_time_budget_counts_while_a_hung_source_lists_its_subjects(
    workdir: Path, cli: SweepCLI, emulators: EmulatorFactory
) -> None:
    """The budget counts from the run's start: against an API that has stopped answering (the
    emulator answering after a minute) a new ledger's listing of the subjects ends at the
    budget, exit 75 with nothing recorded, instead of waiting out read timeouts and retries;
    once the API answers the same command converges."""
    answering = "sim://?subjects=2&seed=21"
    emulator = emulators(answering + "&latency_ms=60000")
    args = ("run", "--exhaust", "--source", emulator.source)
    paused = _with_budget(cli, workdir, args, seconds=2, give_up=180)
    assert paused.returncode == 75, paused.stderr[-2000:]
    assert paused.took < 10, f"the run went on {paused.took:.1f} s past a 2 s budget"
    assert paused.stderr.strip().splitlines() == [
        "Error: the time budget (--max-seconds) ran out while listing the subjects; nothing "
        "recorded: rerun the same command to continue"
    ]
    assert not (workdir / "sweep.db").exists()
    emulator.serve(answering)
    again = cli.run(*args, "--max-seconds", "60", cwd=workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0


def test_max_seconds_env_applies_unless_run_to_completion(workdir: Path, cli: SweepCLI) -> None:
    """$MAX_SECONDS_PER_RUN pauses a run (exit 75) unless $RUN_TO_COMPLETION is true."""
    args = ("run", "--exhaust", "--source", "sim://?subjects=2&latency_ms=30&page_size=5")
    paused = cli.run(*args, cwd=workdir, env=cli.env(MAX_SECONDS_PER_RUN="0.3"))
    assert paused.returncode == 75
