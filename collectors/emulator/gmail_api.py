"""Gmail v1 on the emulator: getProfile, messages.list, messages.get, history.list.

Shapes, parameters and codes from Gmail's discovery document: `messages.list` gives ids and
thread ids only (newest first, `resultSizeEstimate`), `messages.get` honours `format`
(minimal, metadata with `metadataHeaders`, full) and answers 404 for a deleted message,
`history.list` needs `startHistoryId` and answers 404 when it is not in the mailbox's history,
and its records carry `messagesAdded` / `messagesDeleted` / `labelsAdded` / `labelsRemoved`.
`q` understands `after:` and `before:` with epoch seconds (what the source sends for a window).
"""

from __future__ import annotations

import re
from typing import Any

from sweepledger.collectors.emulator.dispatch import ApiError, Call, Reply, Route
from sweepledger.collectors.emulator.paging import binding, cut, offset_of, page_size, token_for
from sweepledger.collectors.emulator.state import EmulatorState, View, display_name
from sweepledger.collectors.errors import CursorExpired
from sweepledger.collectors.sim.gmail_data import GmailMessage, HistoryRecord

SCOPES = frozenset(
    {
        "https://mail.google.com/",
        "https://www.googleapis.com/auth/gmail.readonly",
        "https://www.googleapis.com/auth/gmail.modify",
    }
)
USER = r"/gmail/v1/users/(?P<user>[^/]+)"
RECORD_FIELDS = {
    "messageAdded": "messagesAdded",
    "messageDeleted": "messagesDeleted",
    "labelAdded": "labelsAdded",
    "labelRemoved": "labelsRemoved",
}
SECOND_US = 1_000_000


def routes(state: EmulatorState) -> list[Route]:
    api = GmailApi(state)
    return [
        Route("gmail.users.getProfile", "GET", re.compile(USER + "/profile"), api.profile, SCOPES),
        Route("gmail.users.messages.list", "GET", re.compile(USER + "/messages"), api.list, SCOPES),
        Route(
            "gmail.users.messages.get",
            "GET",
            re.compile(USER + "/messages/(?P<id>[^/]+)"),
            api.get,
            SCOPES,
        ),
        Route(
            "gmail.users.history.list", "GET", re.compile(USER + "/history"), api.history, SCOPES
        ),
    ]


class GmailApi:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def _user(self, call: Call) -> tuple[View, str]:
        view = self.state.view()
        return view, self.state.own_data(call, call.path["user"], view)

    def profile(self, call: Call) -> Reply:
        view, user = self._user(call)
        view.inject(call, "gmail")
        mailbox = view.workspace.mailbox(user)
        return Reply.json(
            {
                "emailAddress": user,
                "messagesTotal": len(mailbox.messages),
                "threadsTotal": len({m.thread_id for m in mailbox.messages}),
                "historyId": str(mailbox.history_id),
            }
        )

    def list(self, call: Call) -> Reply:
        view, user = self._user(call)
        token = call.param("pageToken")
        view.inject(call, "gmail", page_token=token)
        after, before = _time_query(call.param("q") or "")
        listed = [
            m for m in view.workspace.gmail_messages(user) if after <= m.internal_date < before
        ]
        context = binding(call, view.config.generation, view.config.seed)
        offset = offset_of(context, token, len(listed))
        size = page_size(call, "maxResults", 100, 500, view.config.page_size)
        chunk, following = cut(listed, offset, size)
        body: dict[str, Any] = {"resultSizeEstimate": len(listed)}
        if chunk:
            body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in chunk]
        if following is not None:
            body["nextPageToken"] = token_for(context, following)
        return Reply.json(body)

    def get(self, call: Call) -> Reply:
        view, user = self._user(call)
        message_id = call.path["id"]
        view.inject(call, "gmail", item_id=message_id)
        message = view.workspace.gmail_message(user, message_id)
        if message is None:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        return Reply.json(
            _message(
                message, call.param("format", "full") or "full", call.params("metadataHeaders")
            )
        )

    def history(self, call: Call) -> Reply:
        view, user = self._user(call)
        start = call.param("startHistoryId") or ""
        token = call.param("pageToken")
        not_found = ApiError(404, "Requested entity was not found.", "notFound")
        view.inject(call, "gmail", cursor={"historyId": start}, page_token=token, expired=not_found)
        if not start.isdigit():
            raise ApiError(
                400, "Invalid startHistoryId", "invalidArgument", location="startHistoryId"
            )
        try:
            records = view.workspace.gmail_history(user, int(start))
        except CursorExpired:
            raise not_found from None
        types = set(call.params("historyTypes")) or set(RECORD_FIELDS)
        records = tuple(r for r in records if r.type in types)
        context = binding(call, view.config.generation, view.config.seed)
        offset = offset_of(context, token, len(records))
        size = page_size(call, "maxResults", 100, 500, view.config.page_size)
        chunk, following = cut(records, offset, size)
        body: dict[str, Any] = {"historyId": str(view.workspace.gmail_profile_history_id(user))}
        if chunk:
            body["history"] = [_record(r) for r in chunk]
        if following is not None:
            body["nextPageToken"] = token_for(context, following)
        return Reply.json(body)


def _time_query(q: str) -> tuple[int, int]:
    """[after, before) in microseconds from `after:<epoch s> before:<epoch s>`; a 400 for any
    other search term (the emulator does not search text)."""
    after, before = 0, 2**63
    for term in q.split():
        name, _, value = term.partition(":")
        if name in {"after", "before"} and value.isdigit():
            if name == "after":
                after = int(value) * SECOND_US
            else:
                before = int(value) * SECOND_US
        else:
            raise ApiError(
                400,
                f"Invalid query: the emulator understands only after: and "
                f"before: with epoch seconds, not {term!r}",
                "invalidArgument",
                location="q",
            )
    return after, before


def _message(message: GmailMessage, form: str, wanted: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": message.id,
        "threadId": message.thread_id,
        "labelIds": list(message.labels),
        "snippet": message.snippet,
        "historyId": str(message.history_id),
        "internalDate": str(message.internal_date // 1000),
        "sizeEstimate": message.size_estimate,
    }
    if form == "minimal":
        return body
    headers = [
        {"name": "From", "value": f"{display_name(message.sender)} <{message.sender}>"},
        {"name": "To", "value": ", ".join(message.recipients)},
        {"name": "Subject", "value": message.subject},
        {"name": "Message-ID", "value": f"<{message.id}@mail.example.com>"},
    ]
    if form == "metadata" and wanted:
        names = {w.lower() for w in wanted}
        headers = [h for h in headers if h["name"].lower() in names]
    body["payload"] = {
        "partId": "",
        "mimeType": "text/plain",
        "filename": "",
        "headers": headers,
        "body": {"size": message.size_estimate},
    }
    return body


def _record(record: HistoryRecord) -> dict[str, Any]:
    ref = {"id": record.message_id, "threadId": record.thread_id}
    change: dict[str, Any] = {"message": ref}
    if record.labels:
        change["labelIds"] = list(record.labels)
    return {"id": str(record.id), "messages": [ref], RECORD_FIELDS[record.type]: [change]}
