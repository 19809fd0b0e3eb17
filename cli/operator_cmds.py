"""Operator commands: each appends one event; a refused one changes nothing."""

from __future__ import annotations

import click

from sweepledger.collectors import operations
from sweepledger.ledger.events import Event

from .params import UserError, db_option, parse_services, parse_subjects, translate_errors


def _one_subject(value: str, hint: str = "SUBJECT") -> str:
    subjects = parse_subjects(value, hint)
    if subjects is None or len(subjects) != 1:
        raise UserError("name exactly one subject", 2)
    return subjects[0]


def _one_service(value: str | None) -> str | None:
    if value is None:
        return None
    services = parse_services(value, "--service")
    if len(services) != 1:
        raise UserError("name exactly one service", 2)
    return services[0]


def _done(outcome: Event | operations.Unchanged) -> None:
    """The event's seq, or why nothing was recorded (an exit 0 all the same: what the operator
    asked for holds, so a rerun script goes on)."""
    if isinstance(outcome, operations.Unchanged):
        click.echo(f"{outcome.why}; nothing recorded")
        return
    target = operations.scope_name(str(outcome.subject), outcome.service)
    click.echo(f"{outcome.kind} {target} recorded as seq {outcome.seq}")


RULES = (
    "The subject must be in the roster of the latest sweep (any letter case) or be blocked or "
    "paused already; the ledger must exist (the first `sweep run` creates it with its first "
    "sweep). A command whose effect "
    "already holds (a scope blocked already, a subject paused already, an unblock or unpause "
    "of one that is not, a reset of a pair without a cursor) records nothing, says so and "
    "exits 0. Bad input (an unknown subject, an empty --reason where one is required, a "
    "control character such as a newline, or a direction override, in --reason) is refused "
    "with exit 2 and changes nothing."
)
"""The operator commands' shared `--help` epilog."""


@click.command("block", epilog=RULES)
@db_option
@click.argument("subject")
@click.option("--service", default=None, help="Block one pair only (default: every service).")
@click.option("--reason", required=True, help="Why: kept in the ledger and shown by status.")
@translate_errors
def block_command(db: str, subject: str, service: str | None, reason: str) -> None:
    """Leave SUBJECT (or one of its pairs) out of every sweep until unblocked."""
    _done(operations.block(db, _one_subject(subject), _one_service(service), reason))


@click.command("unblock", epilog=RULES)
@db_option
@click.argument("subject")
@click.option("--service", default=None, help="Unblock one pair only.")
@click.option("--reason", default="", help="Why (kept in the ledger).")
@translate_errors
def unblock_command(db: str, subject: str, service: str | None, reason: str) -> None:
    """Make a blocked SUBJECT (or pair) part of the sweeps again."""
    _done(operations.unblock(db, _one_subject(subject), _one_service(service), reason))


@click.command("pause", epilog=RULES)
@db_option
@click.argument("subject")
@click.option("--reason", default="", help="Why (kept in the ledger and shown by status).")
@translate_errors
def pause_command(db: str, subject: str, reason: str) -> None:
    """Skip SUBJECT's pairs (listed as PAUSED) until unpaused."""
    _done(operations.pause(db, _one_subject(subject), reason))


@click.command("unpause", epilog=RULES)
@db_option
@click.argument("subject")
@click.option("--reason", default="", help="Why (kept in the ledger).")
@translate_errors
def unpause_command(db: str, subject: str, reason: str) -> None:
    """Resume sweeping a paused SUBJECT."""
    _done(operations.unpause(db, _one_subject(subject), reason))


@click.command("reset-cursor", epilog=RULES)
@db_option
@click.option("--service", required=True, help="The pair's service.")
@click.option("--subject", required=True, help="The pair's subject.")
@click.option("--reason", required=True, help="Why (kept in the ledger).")
@translate_errors
def reset_cursor_command(db: str, service: str, subject: str, reason: str) -> None:
    """Forget a pair's cursors so its next attempt is a full resync."""
    chosen = _one_service(service)
    assert chosen is not None
    _done(operations.reset_cursor(db, chosen, _one_subject(subject, "--subject"), reason))


COMMANDS = (block_command, unblock_command, pause_command, unpause_command, reset_cursor_command)
