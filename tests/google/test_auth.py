"""Token caching and the client's auth rules, against an in-process emulator (fast)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from sweepledger.collectors.emulator.server import EmulatorServer
from sweepledger.collectors.errors import Auth, RateLimited, Transient
from sweepledger.collectors.google.auth import HttpxTransport, TokenCache, load_credentials
from sweepledger.collectors.google.client import ApiClient, CallTally
from sweepledger.collectors.google.config import GoogleConfig
from sweepledger.collectors.google.inflight import StoppableHttp

GMAIL = ("https://www.googleapis.com/auth/gmail.readonly",)
USER = "user1@example.com"


@pytest.fixture(scope="module")
def server(inproc_emulator: Callable[[str], EmulatorServer]) -> EmulatorServer:
    return inproc_emulator("sim://?subjects=2&seed=3")


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[ApiClient]:
    key: Path = server.key_path  # type: ignore[attr-defined]
    config = GoogleConfig.from_url(
        f"google://?credentials={key}&admin=admin@example.com&endpoint={server.url}"
    )
    api = ApiClient(config, orjson.loads(key.read_bytes()), auth_debug=False)
    try:
        yield api
    finally:
        api.close()


def _profile(api: ApiClient, tally: CallTally | None = None) -> dict[str, object]:
    return api.get_json(
        "gmail",
        f"/gmail/v1/users/{USER}/profile",
        {},
        subject=USER,
        scopes=GMAIL,
        tally=tally or CallTally(),
    )


def test_tokens_are_cached_per_subject_and_scopes(server: EmulatorServer) -> None:
    """One exchange per (subject, scopes) until expiry; AUTH_DEBUG logs each exchange with
    subject, scopes, expiry and outcome, and never the token."""
    key = orjson.loads(server.key_path.read_bytes())  # type: ignore[attr-defined]
    log = io.StringIO()
    with httpx.Client() as http:
        cache = TokenCache(
            load_credentials(key), HttpxTransport(StoppableHttp(http)), debug=True, stream=log
        )
        first = cache.token(USER, GMAIL)
        assert cache.token(USER.upper(), GMAIL) == first
        assert cache.exchanges == 1
        cache.token("user2@example.com", GMAIL)
        cache.token(USER, ("https://www.googleapis.com/auth/calendar.readonly",))
        assert cache.exchanges == 3
        cache.invalidate(USER, GMAIL, first)
        assert cache.token(USER, GMAIL) != first and cache.exchanges == 4
    lines = log.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(
        f"AUTH token_exchange subject={USER} scopes=gmail.readonly outcome=ok expiry="
    )
    assert first not in log.getvalue() and "ya29" not in log.getvalue()


def test_unauthorized_client_is_auth_and_permanent_for_the_subject(server: EmulatorServer) -> None:
    """A scope the delegation does not cover: Auth, and the refusal is remembered (no second
    exchange for that subject and scopes)."""
    key = orjson.loads(server.key_path.read_bytes())  # type: ignore[attr-defined]
    with httpx.Client() as http:
        cache = TokenCache(load_credentials(key), HttpxTransport(StoppableHttp(http)), debug=False)
        for _ in range(2):
            with pytest.raises(Auth, match="unauthorized_client"):
                cache.token(USER, ("https://mail.google.com/",))
        assert cache.exchanges == 1


def test_a_401_refreshes_the_token_once(server: EmulatorServer, client: ApiClient) -> None:
    """After the emulator forgets every token, the next call is answered 401, the client
    exchanges a fresh token and the same call succeeds."""
    _profile(client)
    assert client.tokens.exchanges == 1
    server.emulator.tokens.revoke_all()
    tally = CallTally()
    assert _profile(client, tally)["emailAddress"] == USER
    assert client.tokens.exchanges == 2 and tally.requests == 2


def test_a_second_401_is_auth_and_rate_limits_are_counted(
    client: ApiClient, fixed_tokens: object
) -> None:
    """A service that keeps answering 401 gives Auth after one refresh; a 429 is RateLimited
    with the service's wait, counted in the tally; a dead endpoint is Transient."""
    answers = iter(
        [
            httpx.Response(401),
            httpx.Response(401),
            httpx.Response(
                429, headers={"Retry-After": "3"}, json={"error": {"code": 429, "message": "slow"}}
            ),
        ]
    )
    client.http.close()
    client.http = StoppableHttp(
        httpx.Client(transport=httpx.MockTransport(lambda request: next(answers)))
    )
    client.tokens = fixed_tokens  # type: ignore[assignment]
    with pytest.raises(Auth, match="after one token refresh"):
        _profile(client)
    tally = CallTally()
    with pytest.raises(RateLimited) as limited:
        _profile(client, tally)
    assert limited.value.retry_after == 3.0 and tally.rate_limited == 1
    client.http.close()
    client.http = StoppableHttp(httpx.Client(transport=httpx.MockTransport(_refuse)))
    with pytest.raises(Transient, match="connection failed"):
        _profile(client)


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)
