"""`check_store` split by subject names exactly the violations of one pass, in the same order.

Each part reports only the events it owns (its subjects' events; shared events without a
subject go to the primary part), and closing a sweep complete is judged on the parts' summed
counters. Broken ledgers (events dropped, repeated, swapped, changed, foreign ones inserted)
must give the same report split or not.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
import sqlite3
from pathlib import Path

import orjson
import pytest

from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections import check
from sweepledger.projections.check import check_part, check_store
from sweepledger.projections.tables import state_rows

from .builder import valid_ledger
from .test_fold_tables import open_writer


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts other than the primary run here instead of in worker processes (fast), their
    results still going through pickle as a worker's do."""

    def spawn(module: str, path: str, args: str) -> tuple[str, str]:
        return path, args

    def collect(procs: list[tuple[str, str]]) -> list[bytes | None]:
        answers: list[bytes | None] = []
        for path, args in procs:
            head, low, high = orjson.loads(args)
            conn = sqlite3.connect(path)
            try:
                result = check_part(conn, head, (low, high), primary=False)
            finally:
                conn.close()
            answers.append(pickle.dumps(result))
        return answers

    monkeypatch.setattr(check, "spawn", spawn)
    monkeypatch.setattr(check, "collect", collect)
    monkeypatch.setattr(check, "stop", lambda procs: None)


def broken(seed: int) -> list[NewEvent]:
    """A generated valid ledger with one to three random breakages."""
    news, _ = valid_ledger(seed)
    rng = random.Random(seed)
    pairs = [n for n in news if n.service and n.subject]
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(1, len(news))
        match rng.randrange(7):
            case 0:
                del news[at]
            case 1:
                news.insert(at, news[at])
            case 2:
                news[at - 1], news[at] = news[at], news[at - 1]
            case 3:
                data = {**news[at].data, "count": 99}
                news[at] = dataclasses.replace(news[at], data=data)
            case 4:
                pair = rng.choice(pairs)
                news.insert(at, dataclasses.replace(pair, kind=EventKind.HEARTBEAT))
            case 5:
                closing = NewEvent(EventKind.SWEEP_CLOSE, news[at].sweep_id, news[at].run_id)
                news.insert(at, dataclasses.replace(closing, data={"status": "complete"}))
            case 6:
                news[at] = dataclasses.replace(news[at], run_id="run-unknown")
    return news


def report(store: SqliteStore, parts: int) -> tuple[list[str], dict[str, object]]:
    result = check_store(store, parts=parts)
    return [str(v) for v in result.violations], state_rows(result.state)


@pytest.mark.usefixtures("in_process")
@pytest.mark.parametrize("parts", [2, 3])
def test_broken_ledgers_report_the_same_split_or_not(tmp_path: Path, parts: int) -> None:
    """Forty broken ledgers: the same violations (text and order) and the same fold."""
    rules: set[str] = set()
    for seed in range(40):
        with SqliteStore.open(tmp_path / f"{seed}.db", create=True, synchronous="OFF") as store:
            store.append(broken(seed))
            whole = report(store, 1)
            assert report(store, parts) == whole, f"seed {seed}"
            rules |= {line.split(": ")[1] for line in whole[0]}
    assert {"grammar", "count", "run", "complete", "overlap"} <= rules  # the cases were met


@pytest.mark.usefixtures("in_process")
def test_valid_ledger_with_tables_checks_clean_split(tmp_path: Path) -> None:
    """A ledger written through the projector: no violation, split in three; a tampered
    projection row is named as by one pass."""
    news, live = valid_ledger(24)
    store = open_writer(tmp_path / "ledger.db", create=True)
    try:
        store.append(news)
        assert check_store(store, live, parts=3).violations == []
        store.conn.execute(
            "UPDATE pair_state SET items = items + 1 "
            "WHERE (service, subject) IN (SELECT service, subject FROM pair_state LIMIT 1)"
        )
        split = [str(v) for v in check_store(store, live, parts=3).violations]
        assert split == [str(v) for v in check_store(store, live, parts=1).violations]
        assert len(split) == 1 and "pair_state" in split[0]
    finally:
        store.close()


def test_worker_processes_give_the_same_report(tmp_path: Path) -> None:
    """Through real worker processes too (a broken ledger, two parts and a chain worker)."""
    with SqliteStore.open(tmp_path / "ledger.db", create=True) as store:
        store.append(broken(12))
        whole = report(store, 1)
        assert whole[0]
        result = check_store(store, parts=2, chain_workers=1, chain_range=10)
        assert ([str(v) for v in result.violations], state_rows(result.state)) == whole


@pytest.mark.usefixtures("in_process")
def test_a_row_stored_below_seq_one_is_checked_split_or_not(tmp_path: Path) -> None:
    """A row slipped in at seq 0 (triggers dropped) is seen by the chain and the rules alike,
    whether the check is split or not."""
    news, _ = valid_ledger(12)
    with SqliteStore.open(tmp_path / "ledger.db", create=True) as store:
        store.append(news)
        for name in ("events_no_update", "events_no_delete", "events_no_overwrite"):
            store.conn.execute(f"DROP TRIGGER {name}")
        store.conn.execute(  # a pair's PAGE: folded and checked by its subject's part
            "INSERT INTO events SELECT 0, ts, sweep_id, run_id, kind, service, subject, data, "
            "hash FROM events WHERE kind = 'PAGE' ORDER BY subject DESC LIMIT 1"
        )
        whole = report(store, 1)
        assert report(store, 3) == whole
        assert [line for line in whole[0] if line.startswith("seq 0: ")]
