"""Pages, page tokens and partial responses (`fields`), the way Google's APIs do them.

A page token is `<offset>~<mac>`: the mac binds the offset to the route, the user, the listing's
parameters and the workspace's generation, so a token of another listing (or from before the
workspace moved on, whose offsets would no longer mean the same items) is a 400, as Google answers
a foreign page token. Pages are never larger than the workspace's `page_size`, whatever the client
asks (Google too returns fewer items than `maxResults` when it likes), so a `sim://` workspace is
paged the same way by both sources.

`fields` is Google's partial-response mask (`nextPageToken,files(id,owners(emailAddress))`):
only the named fields are returned, and a route may have a default mask (Drive returns only
`id`, `name` and `mimeType` of a file unless asked for more).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sweepledger.collectors.emulator.dispatch import ApiError, Call
from sweepledger.collectors.emulator.faults import invalid_page_token
from sweepledger.collectors.sim.common import digest

T = TypeVar("T")
Mask = dict[str, "Mask | None"]


def page_size(call: Call, param: str, default: int, maximum: int, cap: int) -> int:
    """The page size: the client's (or the API's default), at most the API's maximum and the
    workspace's page size; a negative or non-numeric value is a 400."""
    raw = call.param(param)
    if raw is None:
        asked = default
    elif raw.isdigit():
        asked = int(raw) or default
    else:
        raise ApiError(400, f"Invalid value for {param}: {raw}", "invalid", location=param)
    return max(1, min(asked, maximum, cap))


def binding(call: Call, generation: int, seed: int, *extra: object) -> str:
    """What this listing's tokens are bound to: every parameter but the token and the size."""
    params = sorted(
        (k, tuple(v))
        for k, v in call.query.items()
        if k not in {"pageToken", "maxResults", "pageSize", "fields"}
    )
    return digest(call.route.name, seed, generation, call.subject, params, *extra, size=32)


def token_for(context: str, offset: int) -> str:
    return f"{offset}~{digest(context, offset, size=20)}"


def offset_of(context: str, token: str | None, total: int) -> int:
    """Where a page token points (0 without one); a 400 for a token not issued for this listing."""
    if token is None or token == "":
        return 0
    head, _, _ = token.partition("~")
    if head.isdigit() and int(head) <= total and token == token_for(context, int(head)):
        return int(head)
    raise invalid_page_token()


def cut(entries: Sequence[T], offset: int, size: int) -> tuple[Sequence[T], int | None]:
    """The page at `offset` and the offset of the next one (None on the last page)."""
    end = offset + size
    return entries[offset:end], (end if end < len(entries) else None)


def parse_mask(text: str) -> Mask:
    """`a,b(c,d(e)),f` -> {"a": None, "b": {"c": None, "d": {"e": None}}, "f": None}."""
    mask, _ = _parse(text.replace(" ", ""), 0)
    return mask


def _parse(text: str, at: int) -> tuple[Mask, int]:
    mask: Mask = {}
    name = ""
    while at < len(text):
        char = text[at]
        if char == "(":
            mask[name], at = _parse(text, at + 1)
            name = ""
        elif char == ")":
            break
        elif char == ",":
            if name:
                mask[name] = None
            name = ""
        else:
            name += char
        at += 1
    if name:
        mask[name] = None
    return mask, at


def project(value: Any, mask: Mask | None) -> Any:
    """The value with only the masked fields (`*` keeps all); lists are masked item by item."""
    if mask is None or "*" in mask:
        return value
    if isinstance(value, list):
        return [project(item, mask) for item in value]
    if isinstance(value, dict):
        return {k: project(v, mask[k]) for k, v in value.items() if k in mask}
    return value
