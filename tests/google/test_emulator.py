"""The emulator as a Google peer, over real HTTP: what its token endpoint refuses, what its APIs
enforce (scopes, admin-only Directory, impersonation) and the codes it answers with."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from google.auth import crypt, jwt

from sweepledger.collectors.emulator.control import EmulatorProcess
from sweepledger.collectors.emulator.tokens import JWT_BEARER, ServiceAccount
from sweepledger.collectors.google import batch
from sweepledger.collectors.sim.workspace import Workspace

if TYPE_CHECKING:
    from conftest import EmulatorFactory

WORKSPACE = "sim://?subjects=3&seed=4&page_size=5"
SCOPE = "https://www.googleapis.com/auth/"
ALICE, BOB = "user1@example.com", "user2@example.com"


@pytest.fixture(scope="module")
def emulator(module_emulators: EmulatorFactory) -> EmulatorProcess:
    return module_emulators(WORKSPACE)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def _grant(emulator: EmulatorProcess, *, key: dict[str, Any] | None = None, **claims: Any) -> str:
    """A signed JWT bearer grant, by default valid for user1 with gmail.readonly."""
    info = key or json.loads(emulator.key.read_text())
    now = int(time.time())
    payload = {
        "iss": info["client_email"],
        "aud": info["token_uri"],
        "iat": now,
        "exp": now + 3600,
        "sub": ALICE,
        "scope": SCOPE + "gmail.readonly",
    }
    payload.update(claims)
    signer = crypt.RSASigner.from_service_account_info(info)
    return jwt.encode(signer, {k: v for k, v in payload.items() if v is not None}).decode()


def _token(emulator: EmulatorProcess, http: httpx.Client, subject: str, *scopes: str) -> str:
    answer = http.post(
        emulator.url + "/token",
        data={
            "grant_type": JWT_BEARER,
            "assertion": _grant(emulator, sub=subject, scope=" ".join(SCOPE + s for s in scopes)),
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _get(
    emulator: EmulatorProcess, http: httpx.Client, token: str | None, path: str, **params: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.get(emulator.url + path, params=params, headers=headers)


def _reason(response: httpx.Response) -> str:
    return str(response.json()["error"]["errors"][0].get("reason"))


def test_a_valid_grant_gets_a_bearer_token(emulator: EmulatorProcess, http: httpx.Client) -> None:
    """A grant signed with the key file's key, for a user, with a delegated scope: a token."""
    answer = http.post(
        emulator.url + "/token", data={"grant_type": JWT_BEARER, "assertion": _grant(emulator)}
    )
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer" and answer.json()["expires_in"] > 3000


@pytest.mark.parametrize(
    ("claims", "status", "error"),
    [
        ({"key": "other"}, 400, "invalid_grant"),
        ({"iss": "someone@else.iam.gserviceaccount.com"}, 400, "invalid_grant"),
        ({"aud": "https://example.com/token"}, 400, "invalid_grant"),
        ({"iat": int(time.time()) - 7300, "exp": int(time.time()) - 3700}, 400, "invalid_grant"),
        ({"exp": int(time.time()) + 7200}, 400, "invalid_grant"),
        ({"sub": "stranger@example.com"}, 400, "invalid_grant"),
        ({"sub": None}, 400, "invalid_grant"),
        ({"scope": "https://mail.google.com/"}, 401, "unauthorized_client"),
        ({"scope": SCOPE + "gmail.readonly " + SCOPE + "drive"}, 401, "unauthorized_client"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
    ],
)
def test_the_token_endpoint_refuses_what_google_refuses(
    emulator: EmulatorProcess, http: httpx.Client, claims: dict[str, Any], status: int, error: str
) -> None:
    """Another key's signature, a foreign iss or aud, an expired or too long-lived grant, an
    unknown or missing subject, an undelegated scope, another grant type: all refused."""
    claims = dict(claims)
    grant_type = claims.pop("grant_type", JWT_BEARER)
    key = None
    if claims.pop("key", None):
        key = ServiceAccount.create().key_file(emulator.url + "/token")
        key["client_email"] = json.loads(emulator.key.read_text())["client_email"]
    answer = http.post(
        emulator.url + "/token",
        data={"grant_type": grant_type, "assertion": _grant(emulator, key=key, **claims)},
    )
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert "access_token" not in answer.json()


def test_a_user_token_reads_only_its_own_data(
    emulator: EmulatorProcess, http: httpx.Client
) -> None:
    """A token for user1 reading user2's mail, calendar or chat space is 403; the Directory is
    403 for anyone but the admin; no token is 401; a token without the API's scope is 403."""
    mail = _token(emulator, http, ALICE, "gmail.readonly")
    assert _get(emulator, http, mail, f"/gmail/v1/users/{ALICE}/profile").status_code == 200
    assert _get(emulator, http, mail, "/gmail/v1/users/me/profile").status_code == 200
    assert _get(emulator, http, mail, f"/gmail/v1/users/{BOB}/profile").status_code == 403
    calendar = _token(emulator, http, ALICE, "calendar.readonly")
    assert _get(emulator, http, calendar, f"/calendar/v3/calendars/{BOB}/events").status_code == 403
    chat = _token(emulator, http, ALICE, "chat.messages.readonly")
    bobs_space = Workspace(3, 4, 1).chat_spaces(BOB)[0]
    assert _get(emulator, http, chat, f"/v1/{bobs_space}/messages").status_code == 403
    directory = _token(emulator, http, ALICE, "admin.directory.user.readonly")
    assert (
        _get(
            emulator, http, directory, "/admin/directory/v1/users", customer="my_customer"
        ).status_code
        == 403
    )
    admin = _token(emulator, http, "admin@example.com", "admin.directory.user.readonly")
    users = _get(emulator, http, admin, "/admin/directory/v1/users", customer="my_customer")
    assert [u["primaryEmail"] for u in users.json()["users"]] == Workspace(3, 4, 1).roster()
    assert _get(emulator, http, admin, "/gmail/v1/users/me/profile").status_code == 403
    assert _get(emulator, http, None, "/gmail/v1/users/me/profile").status_code == 401
    assert _reason(_get(emulator, http, mail, "/drive/v3/files")) == "insufficientPermissions"


def test_pagination_and_cursor_errors_use_googles_codes(
    emulator: EmulatorProcess, http: httpx.Client
) -> None:
    """A foreign page token is 400 on pageToken; a history id the mailbox cannot continue from
    is 404; a foreign sync token is 410 fullSyncRequired; Drive's changes need a token."""
    mail = _token(emulator, http, ALICE, "gmail.readonly")
    page = _get(emulator, http, mail, "/gmail/v1/users/me/messages", maxResults=2)
    assert len(page.json()["messages"]) == 2 and page.json()["nextPageToken"]
    foreign = _get(emulator, http, mail, "/gmail/v1/users/me/messages", pageToken="5~abc")
    assert (foreign.status_code, _reason(foreign)) == (400, "invalid")
    assert foreign.json()["error"]["errors"][0]["location"] == "pageToken"
    expired = _get(emulator, http, mail, "/gmail/v1/users/me/history", startHistoryId=str(10**15))
    assert expired.status_code == 404
    calendar = _token(emulator, http, ALICE, "calendar.readonly")
    gone = _get(
        emulator, http, calendar, "/calendar/v3/calendars/primary/events", syncToken="1~nope"
    )
    assert (gone.status_code, _reason(gone)) == (410, "fullSyncRequired")
    drive = _token(emulator, http, ALICE, "drive.metadata.readonly")
    assert _get(emulator, http, drive, "/drive/v3/changes").status_code == 400
    files = _get(emulator, http, drive, "/drive/v3/files", pageSize=3).json()
    assert {key for file in files["files"] for key in file} == {"kind", "id", "name", "mimeType"}


def test_gmail_batch_answers_each_part_and_counts_it(
    emulator: EmulatorProcess, http: httpx.Client
) -> None:
    """A multipart batch of gets is one exchange whose parts have their own statuses (404 for a
    message that does not exist), and each part is counted as a messages.get call."""
    mail = _token(emulator, http, ALICE, "gmail.readonly")
    ids = [m.id for m in Workspace(3, 4, 1).gmail_messages(ALICE)[:2]] + ["0000000000000000"]
    before = emulator.stats()["routes"]
    parts = [batch.Part(i, f"GET /gmail/v1/users/me/messages/{i}?format=minimal", {}) for i in ids]
    content_type, body = batch.encode(parts)
    answer = http.post(
        emulator.url + "/batch/gmail/v1",
        content=body,
        headers={"Authorization": f"Bearer {mail}", "Content-Type": content_type},
    )
    assert answer.status_code == 200
    replies = {
        p.content_id: p for p in batch.decode(answer.headers["content-type"], answer.content)
    }
    assert [replies[i].status for i in ids] == [200, 200, 404]
    assert json.loads(replies[ids[0]].body)["id"] == ids[0]
    after = emulator.stats()["routes"]
    get = "gmail.users.messages.get"
    assert after[get] - before.get(get, 0) == 3
    assert after["gmail.batch"] - before.get("gmail.batch", 0) == 1
