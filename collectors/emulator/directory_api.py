"""Admin SDK Directory on the emulator: `users.list`, callable only as the admin.

The users are the workspace's subjects (the admin account that reads the Directory is not one of
them), by email, with `suspended` set for the `sim://` URL's suspended subjects. Any other
caller gets 403 "Not Authorized to access this resource/api", as a non-admin does from Google.
"""

from __future__ import annotations

import re
from typing import Any

from sweepledger.collectors.emulator.dispatch import ApiError, Call, Reply, Route
from sweepledger.collectors.emulator.paging import binding, cut, offset_of, page_size, token_for
from sweepledger.collectors.emulator.state import EmulatorState, display_name, user_id
from sweepledger.collectors.sim.common import DOMAIN, digest

SCOPES = frozenset(
    "https://www.googleapis.com/auth/" + s
    for s in (
        "admin.directory.user",
        "admin.directory.user.readonly",
    )
)


def routes(state: EmulatorState) -> list[Route]:
    path = re.compile(r"/admin/directory/v1/users")
    return [Route("directory.users.list", "GET", path, DirectoryApi(state).users, SCOPES)]


def customer_id(seed: int) -> str:
    return "C0" + digest("customer", seed, size=8)


class DirectoryApi:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def users(self, call: Call) -> Reply:
        view = self.state.view()
        if call.subject != self.state.admin:
            raise ApiError(403, "Not Authorized to access this resource/api", "forbidden")
        seed = view.config.seed
        customer, domain = call.param("customer"), call.param("domain")
        if customer is None and domain is None:
            raise ApiError(400, "Bad Request: either customer or domain is required", "badRequest")
        if customer not in (None, "my_customer", customer_id(seed)) or domain not in (
            None,
            DOMAIN,
        ):
            raise ApiError(404, "Resource Not Found: customer or domain", "notFound")
        emails = view.workspace.roster()
        if (call.param("sortOrder") or "").upper() == "DESCENDING":
            emails.reverse()
        token = call.param("pageToken")
        context = binding(call, view.config.generation, seed)
        offset = offset_of(context, token, len(emails))
        chunk, following = cut(
            emails, offset, page_size(call, "maxResults", 100, 500, view.config.page_size)
        )
        body: dict[str, Any] = {
            "kind": "admin#directory#users",
            "etag": f'"{digest(context, size=16)}"',
            "users": [_user(email, seed, email in view.config.suspended) for email in chunk],
        }
        if following is not None:
            body["nextPageToken"] = token_for(context, following)
        return Reply.json(body)


def _user(email: str, seed: int, suspended: bool) -> dict[str, Any]:
    given, _, family = display_name(email).partition(" ")
    return {
        "kind": "admin#directory#user",
        "id": user_id(seed, email),
        "primaryEmail": email,
        "name": {"givenName": given, "familyName": family, "fullName": display_name(email)},
        "isAdmin": False,
        "isDelegatedAdmin": False,
        "suspended": suspended,
        "orgUnitPath": "/",
        "customerId": customer_id(seed),
        "isMailboxSetup": True,
    }
