"""Drive v3 on the emulator: `changes.getStartPageToken`, `changes.list`, `files.list`.

`files.list` lists what the user can see, trashed files included unless `q` says
`trashed = false` (the emulator's `q` understands `trashed` and `modifiedTime` comparisons joined
by `and`); shared-drive files only with `includeItemsFromAllDrives` (which needs
`supportsAllDrives`). `changes.list` takes either a start page token or one of its own
continuation tokens; the last page carries `newStartPageToken`, the others `nextPageToken`; a
token it did not issue is a 400 on `pageToken`. Responses honour the `fields` mask, and without
one hold Drive's defaults: only `kind`, `id`, `name` and `mimeType` of each file.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from sweepledger.collectors.emulator.dispatch import ApiError, Call, Reply, Route
from sweepledger.collectors.emulator.faults import invalid_page_token
from sweepledger.collectors.emulator.paging import (
    binding,
    cut,
    offset_of,
    page_size,
    parse_mask,
    project,
    token_for,
)
from sweepledger.collectors.emulator.state import EmulatorState, View, display_name, user_id
from sweepledger.collectors.errors import CursorExpired
from sweepledger.collectors.sim.common import parse_rfc3339, rfc3339
from sweepledger.collectors.sim.drive_data import FOLDER, DriveFile

SCOPES = frozenset(
    "https://www.googleapis.com/auth/" + s
    for s in (
        "drive",
        "drive.readonly",
        "drive.metadata",
        "drive.metadata.readonly",
    )
)
FILE_DEFAULT = "kind,id,name,mimeType"
LIST_DEFAULT = f"kind,incompleteSearch,nextPageToken,files({FILE_DEFAULT})"
CHANGES_DEFAULT = (
    "kind,nextPageToken,newStartPageToken,"
    f"changes(kind,changeType,time,removed,fileId,file({FILE_DEFAULT}))"
)
COMPARE: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
Q_TERM = re.compile(r"(trashed)\s*=\s*(true|false)|(modifiedTime)\s*(>=|<=|>|<|=)\s*'([^']+)'")


def routes(state: EmulatorState) -> list[Route]:
    api = DriveApi(state)
    return [
        Route(
            "drive.changes.getStartPageToken",
            "GET",
            re.compile(r"/drive/v3/changes/startPageToken"),
            api.start_token,
            SCOPES,
        ),
        Route("drive.changes.list", "GET", re.compile(r"/drive/v3/changes"), api.changes, SCOPES),
        Route("drive.files.list", "GET", re.compile(r"/drive/v3/files"), api.files, SCOPES),
    ]


class DriveApi:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def _user(self, call: Call) -> tuple[View, str]:
        view = self.state.view()
        return view, self.state.own_data(call, "me", view)

    def start_token(self, call: Call) -> Reply:
        view, user = self._user(call)
        view.inject(call, "drive")
        return Reply.json(
            {
                "kind": "drive#startPageToken",
                "startPageToken": view.workspace.drive_start_page_token(user),
            }
        )

    def files(self, call: Call) -> Reply:
        view, user = self._user(call)
        token = call.param("pageToken")
        view.inject(call, "drive", page_token=token)
        shared = _all_drives(call)
        keep = _query(call.param("q") or "")
        listed = [
            f
            for f in view.workspace.drive(user).files
            if not f.removed and (shared or f.drive_id is None) and keep(f)
        ]
        context = binding(call, view.config.generation, view.config.seed)
        offset = offset_of(context, token, len(listed))
        chunk, following = cut(
            listed, offset, page_size(call, "pageSize", 100, 1000, view.config.page_size)
        )
        body: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": [_file(f, user, view.config.seed) for f in chunk],
        }
        if following is not None:
            body["nextPageToken"] = token_for(context, following)
        return Reply.json(project(body, parse_mask(call.param("fields") or LIST_DEFAULT)))

    def changes(self, call: Call) -> Reply:
        view, user = self._user(call)
        token = call.param("pageToken") or ""
        if not token:
            raise ApiError(400, "Required parameter: pageToken", "required", location="pageToken")
        start, offset_token = _split(token)
        view.inject(
            call,
            "drive",
            cursor={"start_page_token": start} if not offset_token else None,
            page_token=offset_token,
            expired=invalid_page_token(),
        )
        try:
            changed = view.workspace.drive_changes(user, start)
        except CursorExpired:
            raise invalid_page_token() from None
        shared = _all_drives(call)
        removals = (call.param("includeRemoved") or "true").lower() == "true"
        changed = [
            f for f in changed if (shared or f.drive_id is None) and (removals or not f.removed)
        ]
        context = binding(call, view.config.generation, view.config.seed, start)
        offset = offset_of(context, offset_token, len(changed))
        chunk, following = cut(
            changed, offset, page_size(call, "pageSize", 100, 1000, view.config.page_size)
        )
        body: dict[str, Any] = {
            "kind": "drive#changeList",
            "changes": [
                {
                    "kind": "drive#change",
                    "changeType": "file",
                    "time": rfc3339(f.changed_at),
                    "removed": f.removed,
                    "fileId": f.id,
                    **({} if f.removed else {"file": _file(f, user, view.config.seed)}),
                }
                for f in chunk
            ],
        }
        if following is not None:
            body["nextPageToken"] = f"{token_for(context, following)}.{start}"
        else:
            body["newStartPageToken"] = view.workspace.drive_start_page_token(user)
        return Reply.json(project(body, parse_mask(call.param("fields") or CHANGES_DEFAULT)))


def _split(token: str) -> tuple[str, str | None]:
    """(start page token, continuation) of a changes token: `<offset>~<mac>.<start>` continues
    the feed from `<start>`; anything else is taken as a start page token."""
    head, dot, start = token.partition(".")
    if dot and "~" in head:
        return start, head
    return token, None


def _all_drives(call: Call) -> bool:
    if call.flag("includeItemsFromAllDrives") and not call.flag("supportsAllDrives"):
        raise ApiError(
            400,
            "The includeItemsFromAllDrives parameter can only be set to true "
            "when supportsAllDrives is also set to true.",
            "invalid",
            location="includeItemsFromAllDrives",
        )
    return call.flag("includeItemsFromAllDrives")


def _query(q: str) -> Callable[[DriveFile], bool]:
    """A predicate on files for `trashed = false and modifiedTime >= '...'`-style queries."""
    tests: list[Callable[[DriveFile], bool]] = []
    for term in (t.strip() for t in re.split(r"\s+and\s+", q.strip()) if t.strip()):
        found = Q_TERM.fullmatch(term)
        if found is None:
            raise ApiError(
                400,
                f"Invalid Value: the emulator's q understands trashed and "
                f"modifiedTime, not {term!r}",
                "invalid",
                location="q",
            )
        if found.group(1):
            tests.append(partial(_trashed_is, found.group(2) == "true"))
            continue
        try:
            bound = parse_rfc3339(found.group(5))
        except ValueError:
            raise ApiError(
                400, f"Invalid Value: {found.group(5)!r}", "invalid", location="q"
            ) from None
        tests.append(partial(_modified, COMPARE[found.group(4)], bound))
    return lambda file: all(test(file) for test in tests)


def _trashed_is(wanted: bool, file: DriveFile) -> bool:
    return file.trashed == wanted


def _modified(compare: Callable[[int, int], bool], bound: int, file: DriveFile) -> bool:
    return compare(file.modified_time, bound)


def _file(file: DriveFile, user: str, seed: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "drive#file",
        "id": file.id,
        "name": file.name,
        "mimeType": file.mime_type,
        "modifiedTime": rfc3339(file.modified_time),
        "parents": list(file.parents),
        "trashed": file.trashed,
    }
    if file.mime_type != FOLDER:
        body["size"] = str(file.size)
    if file.drive_id is not None:
        body["driveId"] = file.drive_id
    else:
        body["owners"] = [
            {
                "kind": "drive#user",
                "displayName": display_name(o),
                "emailAddress": o,
                "me": o == user,
                "permissionId": user_id(seed, o)[-20:],
            }
            for o in file.owners
        ]
    return body
