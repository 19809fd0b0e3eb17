"""A stop ends a Google call in flight: the request is left behind, not waited out.

The peer is a real loopback socket that accepts connections and never answers (a hung API or
token endpoint), and the client's read timeout is a minute, so a call that waited for its answer
would take that minute.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from sweepledger.collectors.emulator.tokens import ServiceAccount
from sweepledger.collectors.errors import Stopped
from sweepledger.collectors.google.auth import HttpxTransport, TokenCache, load_credentials
from sweepledger.collectors.google.client import ApiClient, CallTally
from sweepledger.collectors.google.config import GoogleConfig
from sweepledger.collectors.google.inflight import StoppableHttp, StoppedInFlight

GMAIL = ("https://www.googleapis.com/auth/gmail.readonly",)
USER = "user1@example.com"
READ_TIMEOUT = 60.0
STOP_AFTER = 0.3


class SilentPeer:
    """Accepts every connection on a loopback port and never sends a byte."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.closing.set()
        self.thread.join(timeout=5)
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def peer() -> Iterator[SilentPeer]:
    silent = SilentPeer()
    try:
        yield silent
    finally:
        silent.close()


def _stop_soon() -> threading.Event:
    stop = threading.Event()
    threading.Timer(STOP_AFTER, stop.set).start()
    return stop


def _http(stop: threading.Event) -> StoppableHttp:
    http = StoppableHttp(httpx.Client(timeout=READ_TIMEOUT))
    http.stop_on(stop)
    return http


def test_a_stop_ends_a_request_in_flight(peer: SilentPeer) -> None:
    """The request is sent, the peer never answers: once the stop is set the caller gets
    StoppedInFlight within a second or two, not after the minute's read timeout."""
    http = _http(_stop_soon())
    started = time.monotonic()
    try:
        with pytest.raises(StoppedInFlight, match="in flight"):
            http.request("GET", peer.url + "/gmail/v1/users/me/profile")
    finally:
        http.close()
    took = time.monotonic() - started
    assert took < 10, f"the stop took {took:.1f} s"
    assert len(peer.held) == 1  # it had been sent


def test_a_stop_already_set_sends_nothing(peer: SilentPeer) -> None:
    """A request asked for after the stop is not sent at all: plain Stopped, no connection."""
    stop = threading.Event()
    stop.set()
    http = _http(stop)
    try:
        with pytest.raises(Stopped) as raised:
            http.request("GET", peer.url + "/gmail/v1/users/me/profile")
    finally:
        http.close()
    assert not isinstance(raised.value, StoppedInFlight)
    time.sleep(0.2)  # a connection made would have been accepted by now
    assert peer.held == []


def test_answers_and_the_clients_errors_pass_through() -> None:
    """Without a stop the request is the client's: its answer, or its own error."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/refused":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"path": request.url.path})

    http = StoppableHttp(httpx.Client(transport=httpx.MockTransport(answer)))
    try:
        assert http.request("GET", "http://peer.test/a").json() == {"path": "/a"}
        with pytest.raises(httpx.ConnectError, match="refused"):
            http.request("GET", "http://peer.test/refused")
    finally:
        http.close()


def _client(peer: SilentPeer, tmp_path: Path) -> ApiClient:
    key = ServiceAccount.create().key_file(peer.url + "/token")
    key_path = tmp_path / "key.json"
    key_path.write_bytes(orjson.dumps(key))
    config = GoogleConfig.from_url(
        f"google://?credentials={key_path}&admin=admin@example.com&endpoint={peer.url}"
    )
    return ApiClient(config, key, timeout=READ_TIMEOUT, auth_debug=False)


def test_a_hung_token_exchange_is_stopped(peer: SilentPeer) -> None:
    """The token endpoint never answers: the stop goes through google-auth's exchange."""
    key = ServiceAccount.create().key_file(peer.url + "/token")
    http = _http(_stop_soon())
    started = time.monotonic()
    try:
        with pytest.raises(Stopped):
            TokenCache(load_credentials(key), HttpxTransport(http), debug=False).token(USER, GMAIL)
    finally:
        http.close()
    assert time.monotonic() - started < 10


def test_a_hung_api_call_is_stopped_and_counted(
    peer: SilentPeer, tmp_path: Path, fixed_tokens: object
) -> None:
    """An API call that never gets its answer ends with the stop and is counted as a request
    made (Google may have answered and metered it), so the attempt's cost keeps it."""
    client = _client(peer, tmp_path)
    client.tokens = fixed_tokens  # type: ignore[assignment]
    client.http.stop_on(_stop_soon())
    tally = CallTally()
    try:
        with pytest.raises(StoppedInFlight):
            client.get_json(
                "gmail",
                f"/gmail/v1/users/{USER}/profile",
                {},
                subject=USER,
                scopes=GMAIL,
                tally=tally,
            )
    finally:
        client.close()
    assert tally.requests == 1 and tally.rate_limited == 0
