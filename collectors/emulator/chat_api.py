"""Chat v1 on the emulator: `spaces.list` and `spaces.messages.list` as the calling user.

A user sees only the spaces they are a member of (403 PERMISSION_DENIED for any other). The
messages filter accepts what Chat's does for time and thread (`create_time > "<RFC 3339>"`,
`<`, joined by AND, and `thread.name = ...`) and rejects anything else (no `>=`: the API has
none) with 400 INVALID_ARGUMENT. Senders are `users/{id}` with their email and display name, as
Chat returns them to a member of the space under user authentication.
"""

from __future__ import annotations

import re
from typing import Any

from sweepledger.collectors.emulator.dispatch import ApiError, Call, Reply, Route
from sweepledger.collectors.emulator.paging import binding, cut, offset_of, page_size, token_for
from sweepledger.collectors.emulator.state import EmulatorState, display_name, user_id
from sweepledger.collectors.sim.chat_data import ChatMessage
from sweepledger.collectors.sim.common import parse_rfc3339, rfc3339

SPACE_SCOPES = frozenset(
    "https://www.googleapis.com/auth/" + s
    for s in (
        "chat.spaces",
        "chat.spaces.readonly",
    )
)
MESSAGE_SCOPES = frozenset(
    "https://www.googleapis.com/auth/" + s
    for s in (
        "chat.messages",
        "chat.messages.readonly",
    )
)
TERM = re.compile(
    r'\s*(?:(create_time|createTime)\s*([<>])\s*"([^"]+)"|thread\.name\s*=\s*"?([\w/.-]+)"?)\s*'
)


def routes(state: EmulatorState) -> list[Route]:
    api = ChatApi(state)
    return [
        Route("chat.spaces.list", "GET", re.compile(r"/v1/spaces"), api.spaces, SPACE_SCOPES),
        Route(
            "chat.spaces.messages.list",
            "GET",
            re.compile(r"/v1/(?P<space>spaces/[^/]+)/messages"),
            api.messages,
            MESSAGE_SCOPES,
        ),
    ]


class ChatApi:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def spaces(self, call: Call) -> Reply:
        view = self.state.view()
        user = self.state.own_data(call, "me", view)
        token = call.param("pageToken")
        view.inject(call, "chat", page_token=token)
        spaces = view.workspace.chat(user).spaces
        context = binding(call, view.config.generation, view.config.seed)
        offset = offset_of(context, token, len(spaces))
        chunk, following = cut(
            spaces, offset, page_size(call, "pageSize", 100, 1000, view.config.page_size)
        )
        body: dict[str, Any] = {
            "spaces": [
                {
                    "name": s.name,
                    "type": "ROOM",
                    "spaceType": "SPACE",
                    "displayName": s.name[7:],
                    "spaceThreadingState": "THREADED_MESSAGES",
                    "membershipCount": {"joinedDirectHumanUserCount": len(s.members)},
                }
                for s in chunk
            ]
        }
        if following is not None:
            body["nextPageToken"] = token_for(context, following)
        return Reply.json(body)

    def messages(self, call: Call) -> Reply:
        view = self.state.view()
        user = self.state.own_data(call, "me", view)
        space_name = call.path["space"]
        if space_name not in view.workspace.chat_spaces(user):
            raise ApiError(
                403,
                f"The caller does not have permission: {user} is not a member of {space_name}",
                "forbidden",
            )
        token = call.param("pageToken")
        view.inject(call, "chat", unit=space_name, page_token=token)
        after, before, thread = _filter(call.param("filter") or "")
        messages = [
            m
            for m in view.workspace.chat_messages(user, space_name, after + 1)
            if m.create_time < before and (thread is None or m.thread == thread)
        ]
        order = (call.param("orderBy") or "ASC").split()[-1].upper()
        if order not in {"ASC", "DESC"}:
            raise ApiError(
                400, f"Invalid orderBy: {call.param('orderBy')}", "invalid", location="orderBy"
            )
        if order == "DESC":
            messages.reverse()
        context = binding(call, view.config.generation, view.config.seed)
        offset = offset_of(context, token, len(messages))
        chunk, following = cut(
            messages, offset, page_size(call, "pageSize", 25, 1000, view.config.page_size)
        )
        body: dict[str, Any] = {"messages": [_message(m, view.config.seed) for m in chunk]}
        if following is not None:
            body["nextPageToken"] = token_for(context, following)
        return Reply.json(body)


def _filter(text: str) -> tuple[int, int, str | None]:
    """(after, before, thread) of a Chat filter: strict bounds in microseconds."""
    after, before, thread = -1, 2**63, None
    if not text.strip():
        return after, before, thread
    for term in re.split(r"\s+AND\s+", text.strip()):
        found = TERM.fullmatch(term)
        if found is None:
            raise ApiError(400, f"Invalid filter: {text!r}", "invalid", location="filter")
        if found.group(4):
            thread = found.group(4)
            continue
        try:
            moment = parse_rfc3339(found.group(3))
        except ValueError:
            raise ApiError(
                400,
                f"Invalid timestamp in filter: {found.group(3)!r}",
                "invalid",
                location="filter",
            ) from None
        if found.group(2) == ">":
            after = max(after, moment)
        else:
            before = min(before, moment)
    return after, before, thread


def _message(message: ChatMessage, seed: int) -> dict[str, Any]:
    return {
        "name": message.name,
        "sender": {
            "name": f"users/{user_id(seed, message.sender)}",
            "type": "HUMAN",
            "email": message.sender,
            "displayName": display_name(message.sender),
        },
        "createTime": rfc3339(message.create_time, 6),
        "text": message.text,
        "formattedText": message.text,
        "argumentText": message.text,
        "thread": {"name": message.thread},
        "space": {"name": message.space},
    }
