"""The SWEEP log line: fixed keys, logfmt values, one line, parsed back exactly."""

from __future__ import annotations

import re
import shlex

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sweepledger.ledger.events import Event, EventKind
from sweepledger.ledger.logline import KEYS, format_line, parse_line, quote, render

TRAPS = [
    "",
    " ",
    "partial=1",
    "err=x",
    "x partial=1 err=Transient",
    'say "hi"',
    "back\\slash",
    "ends with \\",
    "\\=",
    "line\nbreak",
    "tab\there",
    "\r\n",
    "\x00\x1b[31mred\x7f",
    "o'brien@corp.example",
    "it's",
    "ünïcödé ✓ 日本",
    "\x85next\u2028line\u2029para",
    "\x9bcsi",
    "k=v=w",
    '"',
    "=",
]

values = st.one_of(st.sampled_from(TRAPS), st.text(), st.text(alphabet="a=\\\" '\n\tp1"))


def fields_with(detail: str, **others: str) -> dict[str, str]:
    fields = {
        "service": "gmail",
        "subject": "ana@corp.example",
        "phase": "END",
        "ok": "1",
        "count": "3",
        "partial": "0",
        "err": "none",
        "detail": detail,
    }
    fields.update(others)
    return fields


def key_starts(fields: dict[str, str]) -> dict[str, int]:
    """Where each of the line's own `key=` begins (pieces joined by single spaces)."""
    starts, at = {}, len("SWEEP ")
    for key in KEYS:
        starts[key] = at
        at += len(f"{key}={quote(fields[key])}") + 1
    return starts


@settings(max_examples=200, deadline=None, database=None)
@given(values=st.fixed_dictionaries({key: values for key in KEYS}))
@example(values=fields_with("partial=1"))
@example(values=fields_with("o'brien", subject="o'brien@corp.example"))
def test_any_fields_render_and_parse_back(values: dict[str, str]) -> None:
    """Any text in any field renders to one line that `parse_line` turns back into it."""
    line = format_line(values)
    assert line.startswith("SWEEP service=")
    assert len(line.splitlines()) == 1
    assert parse_line(line) == values


@settings(max_examples=200, deadline=None, database=None)
@given(detail=values, subject=values)
def test_shlex_splits_into_the_eight_keys_in_order(detail: str, subject: str) -> None:
    """`shlex.split` yields SWEEP and exactly the 8 `key=` tokens, in the fixed order."""
    line = format_line(fields_with(detail, subject=subject))
    tokens = shlex.split(line)
    assert tokens[0] == "SWEEP"
    assert [t.split("=", 1)[0] for t in tokens[1:]] == list(KEYS)
    plain = re.compile(
        r"[^\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]*"
    )
    for key, token, value in zip(
        KEYS, tokens[1:], fields_with(detail, subject=subject).values(), strict=True
    ):
        if plain.fullmatch(value) and "=" not in value:
            assert token == f"{key}={value}"


@settings(max_examples=200, deadline=None, database=None)
@given(detail=values, subject=values, partial=st.sampled_from(["0", "1"]))
@example(detail="partial=1 err=Internal", subject="err=x", partial="0")
@example(detail="xpartial=1", subject="a partial=1", partial="0")
def test_key_texts_appear_only_as_the_lines_own_keys(
    detail: str, subject: str, partial: str
) -> None:
    """`partial=1` and `err=` are found, as a grep finds them, only where the line's keys are."""
    fields = fields_with(detail, subject=subject, partial=partial)
    line = format_line(fields)
    starts = key_starts(fields)
    assert [m.start() for m in re.finditer("partial=1", line)] == (
        [starts["partial"]] if partial == "1" else []
    )
    assert [m.start() for m in re.finditer("err=", line)] == [starts["err"]]
    assert len(re.findall(r"(?<!\\)=", line)) == len(KEYS)
    assert re.findall(r"(?<= )([a-z]+)=", line) == list(KEYS)


@pytest.mark.parametrize(
    "value", ["gmail", "ana@corp.example", "none", "0", "last_create_time:2025"]
)
def test_plain_values_stay_bare(value: str) -> None:
    """Values without space, quote, `=`, backslash or control characters are not quoted."""
    assert quote(value) == value


@pytest.mark.parametrize("mark", ["\u202e", "\u2066", "\u200f", "\u061c"])
def test_direction_overrides_are_escaped(mark: str) -> None:
    """A bidirectional override, isolate or mark in a value (a subject, an error's detail) is
    shown as its escape: a terminal would otherwise display the line's text in another order
    than the ledger holds it. The line still parses back to the value."""
    value = f"invoice{mark}fdp.exe"
    quoted = quote(value)
    assert mark not in quoted
    assert quoted == f'"invoice\\u{ord(mark):04x}fdp.exe"'
    fields = fields_with(value, subject=value)
    assert parse_line(format_line(fields)) == fields


def event(kind: EventKind, **data: object) -> Event:
    return Event(7, "2025-01-01T00:00:00Z", "s", "r", kind, "chat", "Ana@corp.example", data, "h")


@pytest.mark.parametrize(
    ("ev", "expected"),
    [
        (
            event(EventKind.START, attempt=2, resume_token="t"),
            "SWEEP service=chat subject=Ana@corp.example phase=START ok=1 count=0 partial=0 "
            'err=none detail="attempt:2 from:checkpoint"',
        ),
        (
            event(EventKind.PAGE, unit="spaces/A", page=3, count=25, exhausted=False),
            "SWEEP service=chat subject=Ana@corp.example phase=PAGE ok=1 count=25 partial=0 "
            'err=none detail="unit:spaces/A page:3 exhausted:0"',
        ),
        (
            event(EventKind.CURSOR_WRITE, key="last_create_time", value="2025-01-01T00:00:00Z"),
            "SWEEP service=chat subject=Ana@corp.example phase=CURSOR_WRITE ok=1 count=0 "
            'partial=0 err=none detail="key:last_create_time value:2025-01-01T00:00:00Z"',
        ),
        (
            event(EventKind.CURSOR_SKIP, reason="partial"),
            "SWEEP service=chat subject=Ana@corp.example phase=CURSOR_SKIP ok=0 count=0 "
            "partial=1 err=none detail=reason:partial",
        ),
        (
            event(EventKind.CURSOR_SKIP, reason="error", err="RateLimited"),
            "SWEEP service=chat subject=Ana@corp.example phase=CURSOR_SKIP ok=0 count=0 "
            "partial=0 err=RateLimited detail=reason:error",
        ),
        (
            event(EventKind.END, ok=True, count=40, partial=False, exhausted=True),
            "SWEEP service=chat subject=Ana@corp.example phase=END ok=1 count=40 partial=0 "
            'err=none detail=""',
        ),
        (
            event(EventKind.END, ok=False, count=0, err="Forbidden", detail="403 partial=1"),
            "SWEEP service=chat subject=Ana@corp.example phase=END ok=0 count=0 partial=0 "
            'err=Forbidden detail="403 partial\\=1"',
        ),
    ],
)
def test_render_pair_events(ev: Event, expected: str) -> None:
    """Each pair event renders to its documented line (CURSOR_SKIP partial=1, errors err=Class)."""
    assert render(ev) == expected


@pytest.mark.parametrize("kind", [EventKind.RUN_START, EventKind.SWEEP_OPEN, EventKind.BLOCK])
def test_render_refuses_events_that_are_not_pair_phases(kind: EventKind) -> None:
    """Only START, PAGE, CURSOR_WRITE, CURSOR_SKIP and END are SWEEP lines."""
    with pytest.raises(ValueError, match="not a pair event"):
        render(event(kind))


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("service=gmail", "not a SWEEP line"),
        ("SWEEP service=gmail subject=a", "are not"),
        ('SWEEP service=gmail subject="a phase=END', "unterminated quote in subject"),
        (
            "SWEEP subject=a service=gmail phase=END ok=1 count=0 partial=0 err=none detail=x",
            "are not",
        ),
        ("SWEEP service=gmail subject", "no '='"),
    ],
)
def test_parse_line_refuses_what_is_not_a_sweep_line(line: str, why: str) -> None:
    """Lines without the prefix, with missing or reordered keys, or an open quote are refused."""
    with pytest.raises(ValueError, match=why):
        parse_line(line)
