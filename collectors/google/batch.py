"""Google's HTTP batch format (multipart/mixed of application/http parts), both directions.

A batch carries up to 50 inner calls in one HTTP exchange; each inner call still counts as a call
against the API's quota and gets its own status. The outer request holds the Authorization header
and the inner ones inherit it, so no inner part carries a credential. The emulator uses the same
encoder and decoder for the other side of the exchange.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_CALLS = 50
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Part:
    """One inner request or response: `start` is its request line or status line."""

    content_id: str
    start: str
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def status(self) -> int:
        """The status of an inner response (`HTTP/1.1 404 Not Found` -> 404)."""
        fields = self.start.split()
        return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0


def encode(parts: Sequence[Part], *, response: bool = False) -> tuple[str, bytes]:
    """The Content-Type (with a fresh boundary) and the body of a batch of `parts`."""
    boundary = ("batch_" if response else "sweep_") + secrets.token_hex(12)
    chunks: list[bytes] = []
    for part in parts:
        content_id = f"<response-{part.content_id}>" if response else f"<{part.content_id}>"
        inner = [part.start, *(f"{k}: {v}" for k, v in part.headers.items())]
        chunks.append(
            f"--{boundary}\r\nContent-Type: application/http\r\n".encode()
            + f"Content-ID: {content_id}\r\n\r\n".encode()
            + "\r\n".join(inner).encode()
            + b"\r\n\r\n"
            + part.body
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/mixed; boundary={boundary}", b"".join(chunks)


def decode(content_type: str, body: bytes) -> list[Part]:
    """The parts of a batch body; ValueError if it is not a well-formed batch."""
    found = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/mixed") or found is None:
        raise ValueError(f"not a multipart/mixed batch: {content_type!r}")
    delimiter = b"--" + found.group(1).encode()
    parts: list[Part] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        outer_head, _, inner = chunk.strip(b"\r\n").partition(b"\r\n\r\n")
        outer = _headers(outer_head.decode("latin-1").split("\r\n"))
        inner_head, _, inner_body = inner.partition(b"\r\n\r\n")
        lines = inner_head.decode("latin-1").split("\r\n")
        content_id = outer.get("content-id", "").strip("<>").removeprefix("response-")
        if not lines or not lines[0]:
            raise ValueError("a batch part has no request or status line")
        parts.append(Part(content_id, lines[0], _headers(lines[1:]), inner_body.rstrip(b"\r\n")))
    return parts


def _headers(lines: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers
