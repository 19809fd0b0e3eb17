"""Opening a ledger: what is refused, with which error, and that a refused file is untouched."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sweepledger.ledger.errors import (
    LedgerError,
    MissingFolder,
    NoLedger,
    NotALedger,
    SchemaTooNew,
)
from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.schema import SCHEMA_VERSION
from sweepledger.ledger.store import SqliteStore

MODES: list[dict[str, Any]] = [{}, {"create": True}, {"readonly": True}]
MODE_IDS = ["read-write", "create", "read-only"]


def not_sqlite(path: Path) -> None:
    path.write_bytes(b"name,email\nana,ana@corp.example\n" * 200)


def other_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE contacts (email TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO contacts VALUES ('ana@corp.example')")
    conn.close()


def empty_sqlite(path: Path) -> None:
    """An SQLite database with no table at all (but a header: the file is not empty)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()


def ledger_with_meta(**meta: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with SqliteStore.open(path, create=True) as store:
            store.append([NewEvent(EventKind.HEARTBEAT, data={"n": 1})])
        conn = sqlite3.connect(path)
        with conn:
            for key, value in meta.items():
                conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
        conn.close()

    return make


REFUSED: list[tuple[str, Callable[[Path], None], type[LedgerError], str]] = [
    ("not SQLite", not_sqlite, NotALedger, "not an SQLite database"),
    ("other tables", other_sqlite, NotALedger, "without Sweepledger's tables"),
    ("newer schema", ledger_with_meta(schema_version="99"), SchemaTooNew, "version 99"),
    ("other application", ledger_with_meta(app="otherapp"), NotALedger, "'otherapp'"),
    ("malformed version", ledger_with_meta(schema_version="one"), NotALedger, "malformed"),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_untouched(path: Path, digest: str, others: set[str]) -> None:
    """The file's bytes are as before; new files are at most SQLite's empty WAL and its index.

    (A read-only connection to a WAL database may leave `-wal`/`-shm` behind: it cannot
    checkpoint, so it does not delete them. They hold nothing.)
    """
    assert sha256(path) == digest
    new = {p.name for p in path.parent.iterdir()} - others - {path.name}
    assert new <= {f"{path.name}-wal", f"{path.name}-shm"}
    wal = path.parent / f"{path.name}-wal"
    assert wal.name not in new or wal.stat().st_size == 0


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize(
    ("make", "error", "says"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused_file_gets_its_error_and_stays_unchanged(
    db_path: Path,
    mode: dict[str, Any],
    make: Callable[[Path], None],
    error: type[LedgerError],
    says: str,
) -> None:
    """A foreign or newer file is refused with its own one-line error; no byte or file changes."""
    make(db_path)
    digest, others = sha256(db_path), listing(db_path.parent)
    with pytest.raises(error) as refused:
        SqliteStore.open(db_path, **mode)
    message = str(refused.value)
    assert "\n" not in message
    assert str(db_path) in message
    assert says in message
    assert_untouched(db_path, digest, others)


def test_schema_too_new_names_both_versions(db_path: Path) -> None:
    """The newer-schema error says which version was found and which this build reads."""
    ledger_with_meta(schema_version="99")(db_path)
    with pytest.raises(
        SchemaTooNew, match=f"version 99; this Sweepledger reads up to {SCHEMA_VERSION}"
    ):
        SqliteStore.open(db_path, readonly=True)


def test_empty_file_is_accepted_as_new_with_create(db_path: Path) -> None:
    """A 0-byte file (e.g. from `touch`) becomes a new ledger when `create` is given."""
    db_path.touch()
    with SqliteStore.open(db_path, create=True) as store:
        assert store.head() == 0
        assert store.get_meta("app") == "sweepledger"
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)


@pytest.mark.parametrize("mode", [{}, {"readonly": True}], ids=["read-write", "read-only"])
@pytest.mark.parametrize("exists", [False, True], ids=["missing", "0-byte"])
def test_no_ledger_without_create(db_path: Path, mode: dict[str, Any], exists: bool) -> None:
    """Without `create`, a missing or 0-byte file is `NoLedger`, and nothing is created."""
    if exists:
        db_path.touch()
    with pytest.raises(NoLedger, match="no ledger at"):
        SqliteStore.open(db_path, **mode)
    assert sorted(p.name for p in db_path.parent.iterdir()) == (["ledger.db"] if exists else [])
    assert not exists or db_path.stat().st_size == 0


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_missing_folder(tmp_path: Path, mode: dict[str, Any]) -> None:
    """A path in a folder that does not exist is `MissingFolder` (exit 2); no folder is made."""
    path = tmp_path / "nowhere" / "ledger.db"
    with pytest.raises(MissingFolder) as refused:
        SqliteStore.open(path, **mode)
    assert refused.value.exit_code == 2
    assert str(tmp_path / "nowhere") in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("mode", [{}, {"readonly": True}], ids=["read-write", "read-only"])
def test_sqlite_file_without_tables_is_refused_without_create(
    db_path: Path, mode: dict[str, Any]
) -> None:
    """A table-less SQLite file is refused by readers (no traceback, no change), not laid out."""
    empty_sqlite(db_path)
    digest, others = sha256(db_path), listing(db_path.parent)
    with pytest.raises(NotALedger, match="without any table"):
        SqliteStore.open(db_path, **mode)
    assert_untouched(db_path, digest, others)


def test_folder_as_ledger_path_is_refused(tmp_path: Path) -> None:
    """A folder given as the ledger path is `NotALedger`, not an sqlite3 error."""
    folder = tmp_path / "ledger.db"
    folder.mkdir()
    for mode in MODES:
        with pytest.raises(NotALedger, match="folder"):
            SqliteStore.open(folder, **mode)


def test_sqlite_file_without_tables_is_laid_out_with_create(db_path: Path) -> None:
    """A writer asked to create lays out its ledger in a table-less SQLite file."""
    empty_sqlite(db_path)
    with SqliteStore.open(db_path, create=True) as store:
        assert store.get_meta("app") == "sweepledger"
        assert store.head() == 0


def test_a_reader_never_finds_a_new_ledger_half_laid_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader opening the file while a writer lays out a new ledger (a second daemon checks
    its flags before it is refused the lock) finds no ledger or a whole one: never an SQLite
    file without tables, which it would refuse as not a ledger. The reader looks before every
    statement the writer runs."""
    path = tmp_path / "new.db"
    seen: list[str] = []
    writers: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def look(statement: str) -> None:
        try:
            SqliteStore.open(path, readonly=True).close()
            seen.append("ledger")
        except NoLedger:
            seen.append("none")
        except NotALedger:
            seen.append(f"half, before {statement}")

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        if not writers:  # the writer's connection; the reader's own opens are not traced
            writers.append(conn)
            conn.set_trace_callback(look)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    SqliteStore.open(path, create=True).close()
    monkeypatch.undo()
    look("(opened)")
    assert [s for s in seen if s.startswith("half")] == []
    assert seen[0] == "none" and seen[-1] == "ledger"
