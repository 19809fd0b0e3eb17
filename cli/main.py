"""The `sweep` command: a thin click shell over the runner and the read-side API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from .daemon_cmd import daemon_command
from .emulate_cmd import emulate_command
from .operator_cmds import COMMANDS as OPERATOR_COMMANDS
from .params import UserError
from .read_cmds import check_command, log_command, replay_command, status_command
from .run_cmd import run_command
from .runs_cmd import runs_command
from .serve_cmd import serve_command

SHOWS_HELP: type[Exception] | tuple[()] = getattr(click.exceptions, "NoArgsIsHelpError", ())
"""`sweep` alone prints the help, not an error (click 8.2 on raises this for it; 8.1 does not)."""


@contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """A usage mistake is one line, as every other refusal: click would print the synopsis, a
    hint and a blank line before it. The line names the help to read instead."""
    try:
        yield
    except click.UsageError as error:
        if isinstance(error, SHOWS_HELP):
            raise
        where = error.ctx.command_path if error.ctx is not None else "sweep"
        raise UserError(
            f"{error.format_message().rstrip('.')} (see '{where} --help')", error.exit_code
        ) from None


def refuse_undecodable(args: list[str]) -> None:
    """An argument with bytes that are not UTF-8 (Python hands them over as lone surrogates)
    would reach the ledger, a log file or SQLite, which refuse them half way through: refuse
    it first, as bad input."""
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise UserError(f"argument '{shown}' is not valid UTF-8", 2) from None


class SweepGroup(click.Group):
    """The command group, with usage mistakes reported in one line."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if parent is None:
            refuse_undecodable(args)
        with one_line_usage_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_usage_errors():
            return super().invoke(ctx)


@click.group(cls=SweepGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweepledger")
def main() -> None:
    """Sweeps over accounts x services that converge to COMPLETE.

    Every step is an event in an append-only SQLite ledger; state is derived from it, so a
    killed, rate-limited or restarted sweep continues when the same command is run again.
    """


for command in (
    run_command,
    status_command,
    check_command,
    log_command,
    replay_command,
    *OPERATOR_COMMANDS,
    daemon_command,
    runs_command,
    serve_command,
    emulate_command,
):
    main.add_command(command)
