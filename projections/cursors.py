"""Cursor keys, comparators and the monotonicity rule (DESIGN 4).

A cursor never moves backwards. Each key has a comparator: Gmail's historyId is an integer, the
times are RFC 3339 instants, and opaque tokens (Calendar's syncToken, Drive's start page token)
have no order, so only the gating rule applies to them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison


def _as_int(value: str) -> int:
    return int(value)


def _as_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


ORDERED_KEYS: dict[str, Callable[[str], SupportsRichComparison]] = {
    "historyId": _as_int,
    "last_create_time": _as_instant,
    "last_modified_time": _as_instant,
}
"""Keys with an order; any other key is opaque."""


def base_key(key: str) -> str:
    """The cursor key without its unit: `last_create_time@spaces/AAA` -> `last_create_time`."""
    return key.split("@", 1)[0]


def unit_key(key: str, unit: str | None) -> str:
    """The key under which a unit's cursor is stored in `sync_cursor`."""
    return key if unit is None else f"{key}@{unit}"


def regresses(key: str, previous: str | None, value: str) -> bool:
    """Whether writing `value` over `previous` would move an ordered cursor backwards."""
    if previous is None or previous == "":
        return False
    to_order = ORDERED_KEYS.get(base_key(key))
    if to_order is None:
        return False
    try:
        return bool(to_order(value) < to_order(previous))  # type: ignore[operator]
    except (ValueError, TypeError):  # unparseable, or an instant without offset vs one with
        return True
