"""The SWEEP log line (DESIGN 8): rendered from a pair event, parsed back by `parse_line`.

Values are logfmt: bare when they hold no space, quote (`"` or `'`), `=`, backslash or control
character; otherwise double-quoted, with `\\`, `"`, `=`, control characters (C0, DEL, C1) and the
Unicode line separators escaped by a backslash, so a line is one line for any reader. Because
every `=` inside a value is escaped, the only bare `key=` texts on a line are its own keys: a grep
for `partial=1` or `err=` can never match text from a detail. `shlex.split` splits a line into the
same `key=value` tokens; `parse_line` also undoes the escapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .events import Event, EventKind

KEYS = ("service", "subject", "phase", "ok", "count", "partial", "err", "detail")
CONTROL_RANGES = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
"""`CONTROL`'s characters as a regular expression's class body, for patterns that exclude them."""
CONTROL = re.compile(f"[{CONTROL_RANGES}]")
"""Characters that can end or rewrite a line on a terminal or in a log: C0, DEL, C1, the
Unicode line and paragraph separators, and the bidirectional marks, embeddings, overrides and
isolates (an override makes a terminal show text in another order than it is stored)."""
_BARE = re.compile(f"[^\\s\"'=\\\\{CONTROL_RANGES}]+")
_QUOTED = re.compile(r'[\\"=]')
_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def _control_escape(ch: str) -> str:
    if ch in _CONTROL_ESCAPES:
        return _CONTROL_ESCAPES[ch]
    return f"\\u{ord(ch):04x}" if ord(ch) > 0xFF else f"\\x{ord(ch):02x}"


def printable(value: str) -> str:
    """`value` with every `CONTROL` character as its backslash escape (`\\n`, `\\x1b`,
    `\\u2028`): free text from the ledger (an operator's reason) shown outside a SWEEP line
    stays on its own line and cannot pass for another line of the output."""
    return CONTROL.sub(lambda match: _control_escape(match.group()), value)


def quote(value: str) -> str:
    """A logfmt value: bare if it can be, quoted and escaped otherwise."""
    if _BARE.fullmatch(value):
        return value
    return '"' + printable(_QUOTED.sub(lambda match: "\\" + match.group(), value)) + '"'


def format_line(fields: Mapping[str, str]) -> str:
    """`SWEEP k=v ...` with the keys in their fixed order."""
    return "SWEEP " + " ".join(f"{key}={quote(str(fields[key]))}" for key in KEYS)


def parse_line(line: str) -> dict[str, str]:
    """The fields of a SWEEP line; raises ValueError on anything else."""
    if not line.startswith("SWEEP "):
        raise ValueError("not a SWEEP line")
    fields: dict[str, str] = {}
    i, n = 6, len(line)
    while i < n:
        eq = line.find("=", i)
        if eq < 0:
            raise ValueError(f"no '=' after column {i}")
        key = line[i:eq]
        i = eq + 1
        if i < n and line[i] == '"':
            i += 1
            chars = []
            while True:
                if i >= n:
                    raise ValueError(f"unterminated quote in {key}")
                ch = line[i]
                if ch == '"':
                    i += 1
                    break
                if ch == "\\":
                    nxt = line[i + 1 : i + 2]
                    if nxt == "x":
                        chars.append(chr(int(line[i + 2 : i + 4], 16)))
                        i += 4
                        continue
                    if nxt == "u":
                        chars.append(chr(int(line[i + 2 : i + 6], 16)))
                        i += 6
                        continue
                    chars.append(_UNESCAPES.get(nxt, nxt))
                    i += 2
                    continue
                chars.append(ch)
                i += 1
            value = "".join(chars)
        else:
            end = line.find(" ", i)
            end = n if end < 0 else end
            value = line[i:end]
            i = end
        fields[key] = value
        if i < n:
            if line[i] != " ":
                raise ValueError(f"expected a space after {key}")
            i += 1
    if tuple(fields) != KEYS:
        raise ValueError(f"keys {tuple(fields)} are not {KEYS}")
    return fields


def _detail(pairs: Mapping[str, Any]) -> str:
    """`k:v k:v` for the fields worth a glance; None values are left out."""
    return " ".join(f"{k}:{v}" for k, v in pairs.items() if v is not None and v != "")


def line_fields(event: Event) -> dict[str, str]:
    """The SWEEP fields of a pair event; everything comes from the event, so `sweep log`
    re-renders exactly what the run printed."""
    data = event.data
    ok, count, partial, err = "1", 0, "0", "none"
    unit = data.get("unit")
    match event.kind:
        case EventKind.START:
            detail = _detail(
                {
                    "attempt": data.get("attempt"),
                    "from": "checkpoint"
                    if data.get("resume_token")
                    else ("cursor" if data.get("cursor_before") else "full"),
                }
            )
        case EventKind.PAGE:
            count = int(data.get("count", 0))
            failed = len(data.get("failed_ids") or ())
            detail = _detail(
                {
                    "unit": unit,
                    "page": data.get("page"),
                    "exhausted": int(bool(data.get("exhausted"))),
                    "failed": failed or None,
                }
            )
        case EventKind.CURSOR_WRITE:
            detail = _detail({"unit": unit, "key": data.get("key"), "value": data.get("value")})
        case EventKind.CURSOR_SKIP:
            ok = "0"
            reason = str(data.get("reason", ""))
            partial = "0" if reason == "error" else "1"
            err = str(data.get("err") or "none")
            detail = _detail({"reason": reason})
        case EventKind.END:
            ok = "1" if data.get("ok") else "0"
            count = int(data.get("count", 0))
            partial = "1" if data.get("partial") else "0"
            err = str(data.get("err") or "none")
            detail = str(data.get("detail") or "")
        case _:
            raise ValueError(f"{event.kind} is not a pair event")
    return {
        "service": event.service or "",
        "subject": event.subject or "",
        "phase": str(event.kind),
        "ok": ok,
        "count": str(count),
        "partial": partial,
        "err": err,
        "detail": detail,
    }


def render(event: Event) -> str:
    """The SWEEP line of a pair event."""
    return format_line(line_fields(event))
