"""Fixtures shared by every layer's tests: a ledger path and an opened ledger in a tmp folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sweepledger.ledger.store import SqliteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's ledger lives (the file does not exist yet)."""
    return tmp_path / "ledger.db"


@pytest.fixture
def fresh_db(db_path: Path) -> Iterator[SqliteStore]:
    """A new, empty ledger opened for appending; closed after the test."""
    store = SqliteStore.open(db_path, create=True)
    try:
        yield store
    finally:
        store.close()


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis imports libcst to print a patch for a failing example, and libcst warns on
    # import; with `filterwarnings = error` that turned every hypothesis failure into an
    # INTERNALERROR hiding the falsifying example.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )
