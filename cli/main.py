"""The `sweep` command: a thin click shell over the runner and the read-side API."""

from __future__ import annotations

import click

from .daemon_cmd import daemon_command
from .emulate_cmd import emulate_command
from .operator_cmds import COMMANDS as OPERATOR_COMMANDS
from .read_cmds import check_command, log_command, replay_command, status_command
from .run_cmd import run_command
from .runs_cmd import runs_command
from .serve_cmd import serve_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
