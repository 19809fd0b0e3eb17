"""Canonical encoding of events and the hash chain over them.

The `data` column stores the exact bytes that are hashed (orjson, sorted keys), so verifying the
chain never re-encodes JSON: it hashes the stored text as it is.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS_HASH = "0" * 64


def encode_data(data: dict[str, Any]) -> str:
    """The canonical text of an event's fields."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def decode_data(text: str) -> dict[str, Any]:
    """The fields of a stored event."""
    value = orjson.loads(text)
    if not isinstance(value, dict):
        raise ValueError("event data is not a JSON object")
    return value


def chain_hash(
    previous: str,
    seq: int,
    ts: str,
    sweep_id: str | None,
    run_id: str | None,
    kind: str,
    service: str | None,
    subject: str | None,
    data_text: str,
) -> str:
    """sha256 over the previous hash and every column of the event."""
    header = orjson.dumps([previous, seq, ts, sweep_id, run_id, kind, service, subject])
    return hashlib.sha256(header + b"\n" + data_text.encode()).hexdigest()


def utc_now() -> str:
    """The append timestamp: UTC, microseconds, `Z`."""
    # isoformat is the same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ") in a third less time
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
