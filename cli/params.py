"""Shared options and the validation of operator input: one clear line for each mistake."""

from __future__ import annotations

import functools
import math
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from sweepledger.collectors.errors import SourceConfigError
from sweepledger.collectors.protocol import SERVICES
from sweepledger.ledger.errors import LedgerError
from sweepledger.ledger.logline import CONTROL_RANGES

from .signals import EXIT_CODES

F = TypeVar("F", bound=Callable[..., Any])

_EMAIL_PART = rf"[^@\s,{CONTROL_RANGES}]+"
EMAIL = re.compile(rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$")
"""An address as `--subjects` and SUBJECT take it: no blank, comma or `logline.CONTROL`
character (an escape sequence or a direction override in a subject would reach the ledger, or a
refusal's line, as it was typed)."""


LONGEST_WAIT = 366 * 24 * 3600.0
"""The most seconds any duration option takes (a year): a timer cannot wait for ever, and a
larger figure is a typo, not a plan."""
LARGEST_COUNT = 2**31 - 1
"""The most any count option takes; SQLite and the timers need a bounded integer."""


class Seconds(click.FloatRange):
    """A duration in seconds: finite, from 0 (excluded when `positive`) to `LONGEST_WAIT`.

    click's FloatRange lets `nan` through (it compares false with both bounds), which would
    make a budget that is never reached or already spent, and a sleep that crashes."""

    name = "seconds"

    def __init__(self, *, positive: bool = False) -> None:
        super().__init__(min=0, max=LONGEST_WAIT, min_open=positive)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


def count_range(minimum: int) -> click.IntRange:
    """A count option's type: from `minimum` to `LARGEST_COUNT`."""
    return click.IntRange(minimum, LARGEST_COUNT)


class UserError(click.ClickException):
    """A refusal with its own exit code (click prints `Error: <message>`)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        # click exits with the instance's `exit_code` but types it as a class variable (from
        # 8.5 on): set on the instance without re-declaring it
        vars(self)["exit_code"] = exit_code


def db_option(func: F) -> F:
    return click.option(
        "--db",
        "db",
        envvar="SWEEP_DB",
        default="sweep.db",
        show_default=True,
        type=click.Path(dir_okay=False),
        help="The ledger file (also $SWEEP_DB).",
    )(func)


def translate_errors(func: F) -> F:
    """Known errors become one line and their exit code; anything else is a bug and shows its
    traceback. Ctrl-C in a command that does not handle it itself (a long `check`, `serve`)
    exits 130 quietly, as `sweep run` does, instead of click's "Aborted!" and 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LedgerError as e:
            raise UserError(str(e), e.exit_code) from None
        except SourceConfigError as e:
            raise UserError(f"bad source: {e}", 2) from None
        except BrokenPipeError:
            sys.stderr.close()
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            raise SystemExit(EXIT_CODES[signal.SIGINT]) from None

    return wrapper  # type: ignore[return-value]


def open_log(path: str) -> IO[str]:
    """`--log-file`, opened for appending before the run starts, so a path that cannot be
    written is refused as bad input (exit 2) before the ledger is touched."""
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write the log file {path}: {error.strerror or error}", 2) from None


def parse_services(value: str | None, hint: str = "--services") -> tuple[str, ...]:
    """`gmail,drive` -> canonical order; None (the flag not given) -> all four. Unknown names,
    `docs` and an empty value are refused (`hint`: the flag the value came from): an empty
    `--services ''` is more likely an unset variable than a wish for every service, as with
    `--subjects ''`."""
    if value is None:
        return SERVICES
    names = [v.strip().lower() for v in value.split(",") if v.strip()]
    if not names:
        raise click.BadParameter("no service given", param_hint=hint)
    for name in names:
        if name == "docs":
            raise click.BadParameter(
                "docs is out of scope: Sweepledger sweeps gmail, calendar, chat and drive",
                param_hint=hint,
            )
        if name not in SERVICES:
            raise click.BadParameter(
                f"unknown service {name!r}; choose from {', '.join(SERVICES)}",
                param_hint=hint,
            )
    return tuple(s for s in SERVICES if s in names)


def parse_subjects(value: str | None, hint: str = "--subjects") -> tuple[str, ...] | None:
    """`a@x,b@y` -> emails; a malformed one is refused by name (`hint`: the flag or argument
    the value came from)."""
    if value is None:
        return None
    emails = [v.strip() for v in value.split(",") if v.strip()]
    if not emails:
        raise click.BadParameter("no subject given", param_hint=hint)
    for email in emails:
        if not EMAIL.match(email):
            raise click.BadParameter(f"{email!r} is not an email address", param_hint=hint)
    return tuple(dict.fromkeys(emails))


def env_max_seconds() -> float | None:
    """$MAX_SECONDS_PER_RUN, unless $RUN_TO_COMPLETION is `true`."""
    if os.environ.get("RUN_TO_COMPLETION", "").strip().lower() == "true":
        return None
    raw = os.environ.get("MAX_SECONDS_PER_RUN", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"MAX_SECONDS_PER_RUN={raw!r} is not a number of seconds", 2) from None
    if not 0 < value <= LONGEST_WAIT:  # nan fails every comparison
        raise UserError(
            f"MAX_SECONDS_PER_RUN={raw!r} must be a number of seconds above 0 and at most "
            f"{LONGEST_WAIT:.0f} (a year)",
            2,
        )
    return value
