"""`sweep log --subject`: one subject's lines on a big ledger, through the pair index.

With the projection tables current, `log --subject` looks the subject's stored spellings up in
`pair_state` and reads each of its pairs through the `events_by_pair` index. Its baseline is
what the command did before, and still does when the tables are behind the events: every event
read and its subject compared by `subject_key` (a Python function per row).
"""

from __future__ import annotations

import sqlite3
from functools import partial

from click.testing import CliRunner
from harness import Table, count, median, repeat_ms
from ledgers import ensure_ledger, label, sizes

from sweepledger.cli.read_cmds import _sql_subject_key, log_command
from sweepledger.ledger.events import PAIR_PHASES
from sweepledger.projections.model import subject_key

CALLS = 5


def main(quick: bool) -> None:
    """Median wall time of `log --subject` per ledger size, beside the full scan."""
    table = Table(
        f"log --subject: one subject's lines, in-process, median of {CALLS} calls",
        ["size", "events", "lines", "ours ms", "scan ms", "scan / ours"],
    )
    for size in sizes(quick):
        info = ensure_ledger(size)
        path = str(info.path)
        subject = _a_subject(path)
        args = ["--db", path, "--subject", subject.upper()]
        lines = CliRunner().invoke(log_command, args)
        assert lines.exit_code == 0, lines.output
        ours = median(repeat_ms(partial(CliRunner().invoke, log_command, args), CALLS))
        scan = median(repeat_ms(partial(_scan, path, subject), CALLS))
        table.add(
            label(size),
            count(info.events),
            count(len(lines.output.splitlines())),
            f"{ours:.1f}",
            f"{scan:.1f}",
            f"{scan / ours:.1f}x",
        )
    table.note("scan = every pair event read, its subject compared by subject_key (the fallback)")
    table.print()


def _a_subject(path: str) -> str:
    """A subject in the middle of the ledger's roster."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        subjects = [r[0] for r in conn.execute("SELECT DISTINCT subject FROM pair_state")]
    finally:
        conn.close()
    return sorted(subjects)[len(subjects) // 2]


def _scan(path: str, subject: str) -> int:
    """The rows of the fallback's query (decoded as the command decodes them: not at all)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.create_function("subject_key", 1, _sql_subject_key, deterministic=True)
    kinds = ",".join(repr(str(k)) for k in sorted(PAIR_PHASES))
    try:
        cursor = conn.execute(
            f"SELECT * FROM events WHERE kind IN ({kinds}) AND subject_key(subject) = ? "
            "ORDER BY seq",
            (subject_key(subject),),
        )
        return len(cursor.fetchall())
    finally:
        conn.close()


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
