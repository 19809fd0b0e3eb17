"""Operator commands on input a demanding operator expects refused, and on repeats.

A subject outside the ledger's roster, a blank reason where one is required and a reason with a
control character are refused: one line on stderr, exit 2, the ledger's bytes unchanged. A
command whose effect already holds records nothing, says so and exits 0, so a rerun script goes
on and the ledger holds no repeats. What `status` shows of an operator's text stays one line per
flag, whatever the ledger holds.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.attach import open_for_writing

if TYPE_CHECKING:
    from conftest import SweepCLI

SOURCE = "sim://?subjects=2"
FORGED = "left\nBLOCKED forged@example.com gmail: never blocked"
"""A reason that, printed as it is, adds a BLOCKED line of its own to `sweep status`."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ledger(workdir: Path, cli: SweepCLI) -> Path:
    """A COMPLETE sweep of user1 and user2 (gmail only), so each pair has a cursor."""
    run = cli.run("run", "--exhaust", "--source", SOURCE, "--services", "gmail", cwd=workdir)
    assert run.returncode == 0, run.stderr
    return workdir / "sweep.db"


def _outcome(cli: SweepCLI, ledger: Path, args: list[str]) -> tuple[int, str, list[str], bool]:
    """`sweep ARGS`: its exit code, stdout, stderr lines and whether the ledger's bytes stayed
    the same. A refusal is `(2, "", [the one line], True)`."""
    before = _digest(ledger)
    result = cli.run(*args, cwd=ledger.parent)
    return result.returncode, result.stdout, result.stderr.splitlines(), _digest(ledger) == before


def _kinds(cli: SweepCLI, ledger: Path) -> list[str]:
    return [str(kind) for (kind,) in cli.query(ledger, "SELECT kind FROM events ORDER BY seq")]


@pytest.mark.parametrize(
    "args",
    [
        ["block", "nobody@example.com", "--reason", "left"],
        ["block", "nobody@example.com", "--service", "gmail", "--reason", "left"],
        ["unblock", "nobody@example.com"],
        ["pause", "nobody@example.com", "--reason", "legal hold"],
        ["unpause", "nobody@example.com"],
        ["reset-cursor", "--service", "gmail", "--subject", "nobody@example.com", "--reason", "x"],
    ],
    ids=["block", "block-pair", "unblock", "pause", "unpause", "reset-cursor"],
)
def test_a_subject_in_no_roster_is_refused(ledger: Path, cli: SweepCLI, args: list[str]) -> None:
    """Every operator command refuses a subject the latest sweep's roster does not list (and
    no block or pause names): a typo would otherwise stay in the ledger and in `status`."""
    [(sweep_id,)] = cli.query(ledger, "SELECT sweep_id FROM events WHERE kind = 'SWEEP_OPEN'")
    refusal = (
        f"Error: nobody@example.com is not in the roster of the last sweep {sweep_id} "
        "(2 subjects), nor blocked or paused"
    )
    assert _outcome(cli, ledger, args) == (2, "", [refusal], True)


def test_before_the_first_sweep_any_address_is_taken_once(db_path: Path, cli: SweepCLI) -> None:
    """A ledger without a sweep has no roster to hold a subject to: a block or pause of any
    address is recorded (it may well come before the first sweep), and a repeat of either
    records nothing."""
    SqliteStore.open(db_path, create=True).close()
    for args, recorded in (
        (["block", "Early@Example.com", "--reason", "left"], "BLOCK Early@Example.com"),
        (["pause", "early@example.com"], "PAUSE Early@Example.com"),
    ):
        first = cli.run(*args, "--db", str(db_path), cwd=db_path.parent)
        assert first.returncode == 0 and first.stdout.startswith(f"{recorded} recorded as seq")
        again = cli.run(*args, "--db", str(db_path), cwd=db_path.parent)
        assert again.returncode == 0, again.stderr
        assert "; nothing recorded" in again.stdout
    assert _kinds(cli, db_path) == ["BLOCK", "PAUSE"]


UNDONE = {
    "unblock": ["block", "user1@example.com", "--reason", "left"],
    "unpause": ["pause", "user1@example.com"],
}
"""The flag an undoing command's first run lifts."""


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (
            ["block", "USER1@example.com", "--reason", "left"],
            "user1@example.com is already blocked (left); nothing recorded",
        ),
        (
            ["block", "user1@example.com", "--service", "gmail", "--reason", "moved"],
            "gmail/user1@example.com is already blocked (moved); nothing recorded",
        ),
        (
            ["pause", "user1@example.com", "--reason", "legal hold"],
            "user1@example.com is already paused (legal hold); nothing recorded",
        ),
        (["unblock", "user1@example.com"], "user1@example.com is not blocked; nothing recorded"),
        (["unpause", "user1@example.com"], "user1@example.com is not paused; nothing recorded"),
        (
            [
                "reset-cursor",
                "--service",
                "gmail",
                "--subject",
                "user1@example.com",
                "--reason",
                "x",
            ],
            "gmail/user1@example.com has no cursor to reset; nothing recorded",
        ),
    ],
    ids=["block", "block-pair", "pause", "unblock", "unpause", "reset-cursor"],
)
def test_a_command_run_twice_records_once(
    ledger: Path, cli: SweepCLI, args: list[str], answer: str
) -> None:
    """The second run of a command finds its effect in place: it exits 0, says so on stdout and
    appends nothing, so the ledger holds one event however often a script is rerun."""
    if args[0] in UNDONE:
        assert cli.run(*UNDONE[args[0]], cwd=ledger.parent).returncode == 0
    first = cli.run(*args, cwd=ledger.parent)
    assert first.returncode == 0 and "recorded as seq" in first.stdout, first.stderr
    before, kinds = _digest(ledger), _kinds(cli, ledger)
    again = cli.run(*args, cwd=ledger.parent)
    assert (again.returncode, again.stdout, again.stderr) == (0, answer + "\n", "")
    assert _digest(ledger) == before and _kinds(cli, ledger) == kinds


def test_an_unblock_no_block_covers_is_a_no_op_naming_the_blocks_there_are(
    ledger: Path, cli: SweepCLI
) -> None:
    """An unblock of a pair that is not blocked, of a subject blocked for another service only,
    changes nothing the sweeps see: it records nothing and says which block the subject has;
    unblocking every service of a subject blocked pair by pair is refused (its pair stays
    blocked), as `--service gmail` of a subject blocked for every service is."""
    blocked = cli.run(
        "block", "user1@example.com", "--service", "calendar", "--reason", "x", cwd=ledger.parent
    )
    assert blocked.returncode == 0, blocked.stderr
    before = _digest(ledger)
    other = cli.run("unblock", "user1@example.com", "--service", "gmail", cwd=ledger.parent)
    assert (other.returncode, other.stdout) == (
        0,
        "gmail/user1@example.com is not blocked (it is blocked for: --service calendar); "
        "nothing recorded\n",
    )
    assert _digest(ledger) == before
    refusal = (
        "Error: user1@example.com has no block for every service: its pairs stay blocked by "
        "--service calendar (unblock each with its --service)"
    )
    assert _outcome(cli, ledger, ["unblock", "user1@example.com"]) == (2, "", [refusal], True)


@pytest.mark.parametrize("reason", ["", "   ", "\t \n"], ids=["empty", "spaces", "blanks"])
@pytest.mark.parametrize(
    "command",
    [
        ["block", "user1@example.com"],
        ["reset-cursor", "--service", "gmail", "--subject", "user1@example.com"],
    ],
    ids=["block", "reset-cursor"],
)
def test_a_blank_reason_is_refused_where_one_is_required(
    ledger: Path, cli: SweepCLI, command: list[str], reason: str
) -> None:
    """`block` and `reset-cursor` need a reason: an empty or blank one explains nothing."""
    refusal = "Error: --reason is empty: say why (the ledger keeps it and status shows it)"
    assert _outcome(cli, ledger, [*command, "--reason", reason]) == (2, "", [refusal], True)


@pytest.mark.parametrize(
    ("command", "reason", "shown"),
    [
        (["block", "user1@example.com"], FORGED, "\\n"),
        (["block", "user1@example.com", "--service", "gmail"], "a\rb", "\\r"),
        (["unblock", "user1@example.com"], "\x1b[2Kcleared", "\\x1b"),
        (["pause", "user1@example.com"], "one\u2028two", "\\u2028"),
        (["unpause", "user1@example.com"], "bell\x07", "\\x07"),
        (["pause", "user2@example.com"], "see \u202etxt.exe", "\\u202e"),
        (
            ["reset-cursor", "--service", "gmail", "--subject", "user1@example.com"],
            "c1\x9bcsi",
            "\\x9b",
        ),
    ],
    ids=["block", "block-pair", "unblock", "pause", "unpause", "pause-bidi", "reset-cursor"],
)
def test_a_control_character_in_a_reason_is_refused(
    ledger: Path, cli: SweepCLI, command: list[str], reason: str, shown: str
) -> None:
    """A reason is one line of text: a newline, carriage return, terminal escape or line
    separator could pass for another line of `status`, and a direction override would show its
    text in another order, so each is refused, named escaped."""
    refusal = (
        f"Error: --reason holds a control character ({shown}): give the reason as one line of text"
    )
    assert _outcome(cli, ledger, [*command, "--reason", reason]) == (2, "", [refusal], True)


def test_status_escapes_control_characters_a_ledger_already_holds(
    ledger: Path, cli: SweepCLI
) -> None:
    """A reason recorded before the commands refused control characters is shown escaped:
    `status` has one BLOCKED line for the one block, and no terminal escape reaches it."""
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
    flags = [
        re.sub(r" since \S+ \S+ \(seq \d+\)", "", line)
        for line in text.splitlines()
        if line.startswith(("BLOCKED", "PAUSED"))
    ]
    assert flags == [
        "BLOCKED user1@example.com (all services): left\\nBLOCKED forged@example.com gmail: "
        "never blocked",
        "PAUSED  user2@example.com: \\x1b[31mred",
    ]
    assert "\x1b" not in text


@pytest.mark.parametrize(
    ("first", "second", "answer"),
    [
        (
            ["block", "user1@example.com", "--reason", "left"],
            ["block", "user1@example.com", "--reason", "on leave"],
            "user1@example.com is already blocked (left); to record another reason, unblock it "
            "first; nothing recorded",
        ),
        (
            ["pause", "user1@example.com", "--reason", "legal hold"],
            ["pause", "user1@example.com", "--reason", "audit"],
            "user1@example.com is already paused (legal hold); to record another reason, "
            "unpause it first; nothing recorded",
        ),
    ],
    ids=["block", "pause"],
)
def test_a_repeat_with_another_reason_says_how_to_change_it(
    ledger: Path, cli: SweepCLI, first: list[str], second: list[str], answer: str
) -> None:
    """A repeat with another reason records nothing (the flag holds) and says that the first
    reason stays and how to replace it, rather than leaving the operator to think it changed."""
    assert cli.run(*first, cwd=ledger.parent).returncode == 0
    before = _digest(ledger)
    again = cli.run(*second, cwd=ledger.parent)
    assert (again.returncode, again.stdout, again.stderr) == (0, answer + "\n", "")
    assert _digest(ledger) == before


def test_a_flag_says_since_when_and_by_which_event(ledger: Path, cli: SweepCLI) -> None:
    """`status` gives each flag the time and seq of the BLOCK or PAUSE that set it (text and
    JSON, and `replay --as-of` the same); lifted and set again, it is the new event's."""
    run = ledger.parent
    assert cli.run("block", "user1@example.com", "--reason", "left", cwd=run).returncode == 0
    assert cli.run("pause", "user2@example.com", cwd=run).returncode == 0
    events = {
        kind: (seq, ts)
        for seq, kind, ts in cli.query(ledger, "SELECT seq, kind, ts FROM events ORDER BY seq")
    }
    status = cli.run_json("status", cwd=run)
    [blocked], [paused] = status["blocked"], status["paused"]
    assert (blocked["since_seq"], blocked["since"]) == events["BLOCK"]
    assert (paused["since_seq"], paused["since"]) == events["PAUSE"]
    seq, ts = events["BLOCK"]
    shown = (
        f"BLOCKED user1@example.com (all services) since {ts[:10]} {ts[11:19]} (seq {seq}): left"
    )
    assert shown in cli.run("status", cwd=run).stdout.splitlines()
    assert shown in cli.run("replay", "--as-of", str(seq), cwd=run).stdout.splitlines()

    assert cli.run("unblock", "user1@example.com", cwd=run).returncode == 0
    assert cli.run("block", "user1@example.com", "--reason", "gone", cwd=run).returncode == 0
    [again] = cli.run_json("status", cwd=run)["blocked"]
    [(last,)] = cli.query(ledger, "SELECT max(seq) FROM events WHERE kind = 'BLOCK'")
    assert again["since_seq"] == last > seq and again["reason"] == "gone"
