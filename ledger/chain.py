"""Integrity of the stored rows themselves: the hash chain and gapless seq."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .codec import GENESIS_HASH, chain_hash


class ChainVerifier:
    """Checks rows one at a time, in seq order.

    Each row is checked against the hash its predecessor *stores*, so one changed row is named
    alone, and a row whose hash was recomputed to hide a change breaks the next row instead.
    """

    def __init__(self) -> None:
        self.previous = GENESIS_HASH
        self.expected_seq = 1

    def feed(self, row: tuple[Any, ...]) -> list[str]:
        """What is wrong with this row (usually nothing)."""
        seq, ts, sweep_id, run_id, kind, service, subject, data, stored = row
        problems = []
        if seq != self.expected_seq:
            problems.append(f"seq gap: expected seq {self.expected_seq}, found {seq}")
        self.expected_seq = seq + 1
        digest = chain_hash(self.previous, seq, ts, sweep_id, run_id, kind, service, subject, data)
        if digest != stored:
            problems.append("hash chain broken: the row differs from what was appended")
        self.previous = stored
        return problems


def verify_rows(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[int, str]]:
    """(seq, explanation) for every row that breaks the chain or the seq order."""
    verifier = ChainVerifier()
    for row in rows:
        for problem in verifier.feed(row):
            yield int(row[0]), problem
