"""Errors the ledger raises; each carries its facts and reads as one line for an operator."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger reports to a user."""

    exit_code = 1


class NotALedger(LedgerError):
    """The file is not SQLite, or is SQLite but not a Sweepledger ledger."""

    exit_code = 2

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path} is not a Sweepledger ledger: {why}")
        self.path = path


class CannotOpen(LedgerError):
    """The ledger, or a file kept beside it (the writer lock, SQLite's -wal and -shm), cannot
    be opened or written by this process."""

    exit_code = 2

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"cannot open the ledger {path}: {why}")
        self.path = path


class NoLedger(LedgerError):
    """A read-only command was pointed at a path where no ledger exists: bad input, like a
    file that is not a ledger (`sweep check` must not answer 1, "violations found")."""

    exit_code = 2

    def __init__(self, path: str) -> None:
        super().__init__(f"no ledger at {path} (a `sweep run` creates one)")
        self.path = path


class MissingFolder(LedgerError):
    """The ledger's folder does not exist (a run never creates folders)."""

    exit_code = 2

    def __init__(self, path: str, folder: str) -> None:
        super().__init__(f"cannot use {path}: folder {folder} does not exist")


class SchemaTooNew(LedgerError):
    """The ledger was written by a newer Sweepledger: this build cannot read it (exit 2, not
    the 1 of `sweep check` finding violations in a ledger it did read)."""

    exit_code = 2

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path} has ledger schema version {found}; this Sweepledger reads up to "
            f"{supported}: upgrade Sweepledger"
        )


class ChainBroken(LedgerError):
    """An event's hash does not follow from its predecessor: a row was changed."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"hash chain broken at seq {seq}")
        self.seq = seq


class AlreadyRunning(LedgerError):
    """Another process holds the ledger's writer lock."""

    exit_code = 4

    def __init__(self, path: str, holder: str) -> None:
        super().__init__(f"the ledger {path} is held by {holder}")
        self.path = path
        self.holder = holder


class PastHead(LedgerError):
    """`--as-of` named an event the ledger does not have (yet)."""

    exit_code = 2

    def __init__(self, path: str, as_of: int, head: int) -> None:
        super().__init__(
            f"as of seq {as_of}: past the last event of {path} (seq {head}); "
            f"choose a seq from 0 to {head}"
        )
        self.as_of = as_of
        self.head = head
