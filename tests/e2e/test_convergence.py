"""Acceptance 3-5: page-limited runs converge, incremental sweeps, deterministic ledgers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import SweepCLI


SMALL_PAGES = "sim://?subjects=4&page_size=5"


def test_page_limited_runs_converge_with_exit_3_until_the_last(
    workdir: Path, cli: SweepCLI
) -> None:
    """Without --exhaust, each run ends 3 until the last ends 0, and no cursor is written for a
    pair before its pagination is exhausted."""
    codes = []
    for _ in range(30):
        run = cli.run("run", "--source", SMALL_PAGES, "--max-pages", "3", cwd=workdir)
        codes.append(run.returncode)
        if run.returncode == 0:
            break
        assert run.returncode == 3, run.stderr[-1500:]
    assert codes[-1] == 0 and len(codes) >= 3 and set(codes[:-1]) == {3}
    db = workdir / "sweep.db"
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0
    # every pair-level cursor write follows an exhausted page of the same attempt
    writes = cli.query(
        db,
        "SELECT seq, service, subject FROM events WHERE kind = 'CURSOR_WRITE' "
        "AND json_extract(data, '$.unit') IS NULL",
    )
    for seq, service, subject in writes:
        last_page = cli.query(
            db,
            "SELECT json_extract(data, '$.exhausted') FROM events WHERE "
            "kind = 'PAGE' AND service = ? AND subject = ? AND seq < ? "
            "ORDER BY seq DESC LIMIT 1",
            (service, subject, seq),
        )
        assert last_page == [(1,)], (seq, service, subject)


def test_incremental_sweep_fetches_only_new_and_changed_items(
    tmp_path: Path, cli: SweepCLI
) -> None:
    """After COMPLETE, the same command on generation 2 opens a new sweep, fetches exactly the
    items that differ between the generations, and moves every cursor forward."""
    inc, ref = tmp_path / "inc", tmp_path / "ref"
    inc.mkdir()
    ref.mkdir()
    gen1 = "sim://?subjects=5&seed=3"
    gen2 = "sim://?subjects=5&seed=3&generation=2"
    assert cli.run("run", "--exhaust", "--source", gen1, cwd=inc).returncode == 0
    before = {t: cli.items(inc / "sweep.db", t) for t in cli.ITEM_TABLES}
    cursors1 = dict(
        ((s, e, k), v)
        for s, e, k, v in cli.query(
            inc / "sweep.db", "SELECT service, subject, key, value FROM sync_cursor"
        )
    )
    run2 = cli.run("run", "--exhaust", "--source", gen2, "--no-resume", cwd=inc)
    assert run2.returncode == 0, run2.stderr[-1500:]
    assert cli.run("check", "--require-complete", cwd=inc).returncode == 0
    assert cli.run("run", "--exhaust", "--source", gen2, cwd=ref).returncode == 0
    db = inc / "sweep.db"
    last_sweep = "(SELECT sweep_id FROM events WHERE kind = 'SWEEP_OPEN' ORDER BY seq DESC LIMIT 1)"
    totals = cli.query(
        db,
        "SELECT service, SUM(json_extract(data, '$.count')), "
        "SUM(json_extract(data, '$.inserted') + json_extract(data, '$.updated')"
        " + json_extract(data, '$.deleted')), "
        "SUM(json_extract(data, '$.unchanged')) FROM events WHERE kind = 'PAGE' "
        f"AND sweep_id = {last_sweep} GROUP BY service",
    )
    changed_rows = 0
    for table in cli.ITEM_TABLES:
        after = cli.items(db, table)
        changed_rows += len(after - before[table])
        live = {r for r in after if r[2] == 0}
        assert live == {r for r in cli.items(ref / "sweep.db", table) if r[2] == 0}, table
    by_service = {svc: (fetched, changed, unchanged) for svc, fetched, changed, unchanged in totals}
    assert set(by_service) == {"gmail", "calendar", "chat", "drive"}
    assert sum(v[1] for v in by_service.values()) == changed_rows > 0
    for service, (fetched, changed, unchanged) in by_service.items():
        assert fetched == changed + unchanged
        if service != "chat":
            assert unchanged == 0, service
    opens = cli.query(inc / "sweep.db", "SELECT COUNT(*) FROM events WHERE kind = 'SWEEP_OPEN'")
    assert opens == [(2,)]
    cursors2 = dict(
        ((s, e, k), v)
        for s, e, k, v in cli.query(
            inc / "sweep.db", "SELECT service, subject, key, value FROM sync_cursor"
        )
    )
    assert cursors1.keys() <= cursors2.keys()
    moved = [k for k in cursors1 if cursors2[k] != cursors1[k]]
    assert any(k[0] == "gmail" for k in moved) and any(k[0] == "drive" for k in moved)
    for (service, _subject, key), value in cursors1.items():
        if key == "historyId":
            assert int(str(cursors2[(service, _subject, key)])) > int(str(value))


def test_workers_1_ledgers_are_identical_but_for_ids_and_times(
    tmp_path: Path, cli: SweepCLI
) -> None:
    """Two `--workers 1` runs on fresh databases give the same events, data and items."""
    ledgers = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        run = cli.run(
            "run", "--exhaust", "--workers", "1", "--source", "sim://?subjects=4", cwd=folder
        )
        assert run.returncode == 0
        ledgers.append(
            cli.query(
                folder / "sweep.db",
                "SELECT seq, kind, service, subject, data FROM events "
                "WHERE kind NOT IN ('RUN_START') ORDER BY seq",
            )
        )
    assert ledgers[0] == ledgers[1]
    assert len(ledgers[0]) > 50
    a = {t: cli.items(tmp_path / "a" / "sweep.db", t) for t in cli.ITEM_TABLES}
    b = {t: cli.items(tmp_path / "b" / "sweep.db", t) for t in cli.ITEM_TABLES}
    assert a == b


def test_a_rerun_meets_new_faults_so_reruns_converge_without_retries(
    workdir: Path, cli: SweepCLI
) -> None:
    """With no retries inside a run, every fault ends its attempt as an error; the next run is
    the pair's next attempt and draws anew, so rerunning the same command converges instead of
    meeting the very faults the last process met."""
    source = "sim://?subjects=3&seed=5&errors=0.3&item_errors=0.05"
    codes = []
    for _ in range(25):
        run = cli.run("run", "--source", source, "--exhaust", "--max-retries", "0", cwd=workdir)
        codes.append(run.returncode)
        if run.returncode == 0:
            break
        assert run.returncode == 3, run.stderr[-1500:]
    assert codes[0] == 3 and codes[-1] == 0, codes
    assert cli.run("check", "--require-complete", cwd=workdir).returncode == 0
