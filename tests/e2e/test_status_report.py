"""What `sweep status` and `sweep replay` print, with the installed command on real ledgers: the
problem list and its length, the order of pairs and blocks, the run summary's figures, and a
status from before the sweep opened."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sweepledger.collectors.errors import Forbidden
from sweepledger.collectors.protocol import FetchRequest, Page
from sweepledger.collectors.runner import RunOptions, SweepRunner
from sweepledger.ledger.events import Event, EventKind
from sweepledger.projections.model import pair_order, since_text

if TYPE_CHECKING:
    from conftest import SweepCLI

ONE_PAGE = ("run", "--quiet", "--max-pages", "1", "--source", "sim://?subjects=20")
"""A first run that leaves most of the 80 pairs PARTIAL (one page each)."""


def _pair_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("not complete: "))
    return [line for line in lines[start + 1 :] if line.startswith("  ") and "@" in line]


def test_a_cut_problem_list_says_how_many_more_and_all_lists_them(
    workdir: Path, cli: SweepCLI
) -> None:
    """`status` lists the first 20 problem pairs and then `... and N more (--all lists every
    one)`; `--all` lists every one (text and JSON, `status` and `replay`) with no such line, and
    the JSON's `problems_more` is N."""
    assert cli.run(*ONE_PAGE, cwd=workdir).returncode == 3
    every = cli.run_json("status", "--all", cwd=workdir)
    total = len(every["problems"])
    assert total > 20 and every["problems_more"] == 0
    cut = cli.run_json("status", cwd=workdir)
    assert len(cut["problems"]) == 20 and cut["problems_more"] == total - 20
    assert cut["problems"] == every["problems"][:20]
    for command in ("status", "replay"):
        text = cli.run(command, cwd=workdir).stdout
        assert f"  ... and {total - 20} more (--all lists every one)" in text.splitlines()
        assert len(_pair_lines(text)) == 20
        full = cli.run(command, "--all", cwd=workdir).stdout
        assert len(_pair_lines(full)) == total and " more (--all" not in full
    assert cli.without_clock(cli.run_json("replay", "--all", cwd=workdir)) == cli.without_clock(
        every
    )


def test_status_and_replay_list_pairs_and_blocks_in_one_order(workdir: Path, cli: SweepCLI) -> None:
    """With pairs blocked in several services (blocked in no particular order, one subject
    named in another letter case), `status --json` and `replay --json` are equal, and both list
    problem pairs and blocks subject-major (case-folded), services in the order gmail,
    calendar, chat, drive, a whole-subject block before its subject's services."""
    assert cli.run(*ONE_PAGE, cwd=workdir).returncode == 3
    for args in (
        ("user05@example.com", "--service", "drive"),
        ("user05@example.com", "--service", "gmail"),
        ("user03@example.com", "--service", "chat"),
        ("USER02@example.com",),
        ("user02@example.com", "--service", "calendar"),
        ("user01@example.com", "--service", "calendar"),
        ("user05@example.com", "--service", "calendar"),
    ):
        done = cli.run("block", *args, "--reason", "test", cwd=workdir)
        assert done.returncode == 0, done.stderr
    status = cli.run_json("status", cwd=workdir)
    assert cli.without_clock(status) == cli.without_clock(cli.run_json("replay", cwd=workdir))
    blocked = [(b["subject"], b["service"]) for b in status["blocked"]]
    assert blocked == [
        ("user01@example.com", "calendar"),
        ("user02@example.com", None),
        ("user02@example.com", "calendar"),
        ("user03@example.com", "chat"),
        ("user05@example.com", "gmail"),
        ("user05@example.com", "calendar"),
        ("user05@example.com", "drive"),
    ]
    pairs = [(p["subject"], p["service"]) for p in status["problems"]]
    assert pairs == sorted(pairs, key=lambda p: pair_order(*p))
    # a subject's gmail pair comes before its others (alphabetically it would come last)
    assert any(a[0] == b[0] and a[1] == "gmail" for a, b in pairwise(pairs))
    text = cli.run("status", cwd=workdir).stdout.splitlines()
    assert [line for line in text if line.startswith("BLOCKED ")] == [
        f"BLOCKED {b['subject']} {b['service'] or '(all services)'} "
        f"since {since_text(b['since'], b['since_seq'])}: test"
        for b in status["blocked"]
    ]


def test_the_run_summary_gives_the_ledgers_figures(workdir: Path, cli: SweepCLI) -> None:
    """The closing summary of `sweep run` gives the items, seconds and rate `sweep runs` and
    `sweep status` give for the run: the ledger's (RUN_START to RUN_END, its PAGE counts)."""
    done = cli.run("run", "--quiet", "--source", "sim://?subjects=3", cwd=workdir)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(
        r"run (\S+) completed: .* (\d+) items in ([\d.]+)s \((\d+) items/s\)", done.stdout
    )
    assert found is not None, done.stdout
    run_id, items, seconds, rate = found.groups()
    [run] = cli.run_json("runs", cwd=workdir)
    assert run["run_id"] == run_id
    assert (items, seconds, rate) == (
        str(run["counters"]["items_fetched"]),
        f"{run['duration_s']:.2f}",
        f"{run['items_per_s']:.0f}",
    )
    [shown] = cli.run_json("status", cwd=workdir)["runs"]
    assert (shown["duration_s"], shown["items_per_s"]) == (run["duration_s"], run["items_per_s"])


def test_status_and_runs_give_one_run_object(workdir: Path, cli: SweepCLI) -> None:
    """`status --json` listed runs under other names than `runs --json` (`ended` for
    `finished`, the fold's `fetched` for `items_fetched`, counters missing when never bumped):
    both now give the same object, and a run's per-service counters carry its totals' names."""
    source = ("--quiet", "--source", "sim://?subjects=3", "--services", "gmail,drive")
    assert cli.run("run", *source, "--max-pages", "1", cwd=workdir).returncode == 3
    assert cli.run("run", *source, "--exhaust", cwd=workdir).returncode == 0
    clockless = ("last_event_age_s",)
    listed = [
        {k: v for k, v in r.items() if k not in clockless}
        for r in cli.run_json("runs", cwd=workdir)
    ]
    shown = [
        {k: v for k, v in r.items() if k not in clockless}
        for r in cli.run_json("status", cwd=workdir)["runs"]
    ]
    assert shown == listed and len(listed) == 2
    for run in listed:
        assert set(run["by_service"]) == {"gmail", "drive"}
        for per in run["by_service"].values():
            assert per.keys() == run["counters"].keys()
        for name, total in run["counters"].items():
            assert sum(per[name] for per in run["by_service"].values()) == total, name
    text = cli.run("status", cwd=workdir).stdout
    newest = listed[0]
    assert (
        f"{newest['counters']['pairs_completed']} pairs complete, "
        f"{newest['counters']['items_fetched']} items"
    ) in text


def test_status_before_the_sweep_opened_names_the_run(workdir: Path, cli: SweepCLI) -> None:
    """`status --as-of 1` (only the first RUN_START folded) says which run is running and lists
    it, as its JSON does, instead of a bare `RUNNING`; replay says the same."""
    assert cli.run("run", "--quiet", "--source", "sim://?subjects=2", cwd=workdir).returncode == 0
    report = cli.run_json("status", "--as-of", "1", cwd=workdir)
    [run] = report["runs"]
    assert report["sweep"] is None and run["status"] == "running"
    for command in ("status", "replay"):
        lines = cli.run(command, "--as-of", "1", cwd=workdir).stdout.splitlines()
        assert lines[0] == report["headline"]
        assert lines[0].startswith(f"RUNNING: run {run['run_id']} (pid {run['pid']}), last event")
        assert lines[0].endswith("; no sweep opened yet")
        assert "recent runs:" in lines
        assert any(line.startswith(f"  {run['run_id']}  running ") for line in lines)


class _GarblingSource:
    """A source whose error messages hold a newline, a terminal escape and a direction override
    (a service's text reaches `status` and `runs` as it came)."""

    url = "test://garbling"

    def roster(self) -> list[str]:
        return ["a@example.com", "b@example.com"]

    def units(self, service: str, subject: str) -> list[str] | None:
        return None

    def fetch(self, request: FetchRequest) -> Page:
        if request.subject == "a@example.com":
            raise Forbidden("no\nSWEEP service=gmail phase=END ok=1\x1b[2K \u202eforged")
        return Page([], next_page_token=None, exhausted=True)

    def close(self) -> None:
        pass


def test_status_and_runs_escape_what_sources_said(workdir: Path, cli: SweepCLI) -> None:
    """A pair's last error (a service's message) and a failed run's reason (an exception's) are
    shown with their control characters escaped: each stays on its own line of `status` and
    `runs`, and no escape sequence or direction override reaches the terminal."""
    db = workdir / "sweep.db"
    source = _GarblingSource()
    options = RunOptions(source.url, ("gmail",), max_pages=None, workers=1)
    assert SweepRunner(db, source, options).run().exit_code == 3  # type: ignore[arg-type]

    def explode(events: Sequence[Event]) -> None:
        if any(e.kind is EventKind.RUN_START for e in events):
            raise RuntimeError("broke\n\x1b[31mred")

    with pytest.raises(RuntimeError):
        SweepRunner(db, source, options, on_commit=explode).run()  # type: ignore[arg-type]
    status = cli.run("status", cwd=workdir).stdout
    runs = cli.run("runs", cwd=workdir).stdout
    for text in (status, runs):
        assert "\x1b" not in text and "\u202e" not in text
        assert not any(line.startswith("SWEEP") for line in text.splitlines())
    assert (
        "last error Forbidden: no\\nSWEEP service=gmail phase=END ok=1\\x1b[2K \\u202eforged"
        in status
    )
    assert "(RuntimeError: broke\\n\\x1b[31mred)" in status
    assert "failed: RuntimeError: broke\\n\\x1b[31mred" in runs
