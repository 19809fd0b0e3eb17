"""Short ids that sort by creation time, so `ORDER BY run_id` is chronological."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    """`<prefix>-<9 chars of milliseconds><4 random chars>`, e.g. `run-0mh3x9k2qa7z1`.

    Milliseconds in base 36 fill 9 characters until the year 5188; 4 random characters keep two
    ids made in the same millisecond apart.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(3), "big") % 36**4
    return f"{prefix}-{_base36(millis, 9)}{_base36(rand, 4)}"
