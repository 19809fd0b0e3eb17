"""Access tokens for delegated subjects: google-auth signs and exchanges, we cache and log.

google-auth's service-account credentials build and sign the JWT grant (RS256, `sub` = the
subject, the service's read-only scopes) and post it to the key file's `token_uri`; we only give
them a transport over the source's one pooled httpx client. We call `refresh()` ourselves and set
the Authorization header ourselves, rather than `before_request()`/AuthorizedSession, because
those also start google-auth's background regional-access-boundary lookups, requests to a Google
host an emulator run (or a sandbox) must never make.

Tokens are cached per (subject, scopes) until google-auth's refresh threshold before expiry; one
lock per key makes concurrent fetchers for a subject wait for one exchange instead of racing.
An `unauthorized_client` refusal (the client is not authorised for those scopes or that subject)
is remembered: it is permanent for the subject, so the exchange is not repeated in this process.

`AUTH_DEBUG=1` writes one line per exchange to stderr: subject, scopes, expiry, outcome and time.
Never the assertion, the token or the key: the line is built from those four facts only.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import httpx
from google.auth import exceptions as auth_errors
from google.auth import transport
from google.oauth2 import service_account

from sweepledger.collectors.errors import Auth, CollectorError, Transient
from sweepledger.collectors.google.inflight import StoppableHttp

SCOPE_PREFIX = "https://www.googleapis.com/auth/"


class _Response(transport.Response):
    """An httpx response as google-auth's transport interface wants it."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class HttpxTransport(transport.Request):
    """google-auth's transport over the source's pooled httpx client (token exchanges only); a
    stop ends an exchange in flight with `Stopped`, which google-auth lets through."""

    def __init__(self, client: StoppableHttp) -> None:
        self._client = client

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> transport.Response:
        try:
            response = self._client.request(
                method,
                url,
                content=body,
                headers=dict(headers or {}),
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as error:
            raise auth_errors.TransportError(f"token endpoint unreachable: {error}") from None
        return _Response(response)


@dataclass(slots=True)
class _Entry:
    """One (subject, scopes) key: its credentials, lock, and a permanent refusal if any."""

    credentials: service_account.Credentials
    lock: threading.Lock = field(default_factory=threading.Lock)
    refused: str | None = None


class TokenCache:
    """Delegated access tokens per (subject, scopes), exchanged through `transport`."""

    def __init__(
        self,
        base: service_account.Credentials,
        transport_: transport.Request,
        *,
        debug: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self._base = base
        self._transport = transport_
        self._debug = os.environ.get("AUTH_DEBUG", "") == "1" if debug is None else debug
        self._stream = stream
        self._entries: dict[tuple[str, tuple[str, ...]], _Entry] = {}
        self._lock = threading.Lock()
        self.exchanges = 0

    def token(self, subject: str, scopes: Sequence[str]) -> str:
        """A valid access token for `subject` with `scopes`; Auth or Transient if none."""
        entry = self._entry(subject, scopes)
        with entry.lock:
            if entry.refused is not None:
                raise Auth(entry.refused)
            if not entry.credentials.valid:
                self._exchange(subject, entry)
            return str(entry.credentials.token)

    def invalidate(self, subject: str, scopes: Sequence[str], token: str) -> None:
        """Forget `token` (the API answered 401) so the next `token()` exchanges again."""
        entry = self._entry(subject, scopes)
        with entry.lock:
            if entry.credentials.token == token:
                entry.credentials.token = None
                entry.credentials.expiry = None

    def _entry(self, subject: str, scopes: Sequence[str]) -> _Entry:
        key = (subject.casefold(), tuple(sorted(scopes)))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                delegated = self._base.with_subject(key[0]).with_scopes(list(key[1]))
                entry = self._entries[key] = _Entry(delegated)
            return entry

    def _exchange(self, subject: str, entry: _Entry) -> None:
        """One token exchange, logged with AUTH_DEBUG; errors mapped to the taxonomy."""
        scopes = ",".join(s.removeprefix(SCOPE_PREFIX) for s in entry.credentials.scopes or ())
        started = time.monotonic()
        self.exchanges += 1
        try:
            entry.credentials.refresh(self._transport)
        except auth_errors.RefreshError as error:
            failure = _refresh_failure(subject, error)
            if _oauth_error(error) == "unauthorized_client":
                entry.refused = str(failure)
            self._log(subject, scopes, started, outcome="refused", detail=str(failure))
            raise failure from None
        except auth_errors.TransportError as error:
            self._log(subject, scopes, started, outcome="unreachable", detail=str(error))
            raise Transient(f"token exchange for {subject}: {error}") from None
        expiry = entry.credentials.expiry
        self._log(
            subject,
            scopes,
            started,
            outcome="ok",
            expiry=expiry.strftime("%Y-%m-%dT%H:%M:%SZ") if expiry else "none",
        )

    def _log(self, subject: str, scopes: str, started: float, **facts: str) -> None:
        if not self._debug:
            return
        elapsed = f"{(time.monotonic() - started) * 1000:.0f}ms"
        parts = [f"subject={subject}", f"scopes={scopes}", *_logfmt(facts), f"took={elapsed}"]
        stream = self._stream or sys.stderr
        stream.write("AUTH token_exchange " + " ".join(parts) + "\n")
        stream.flush()


def _logfmt(facts: Mapping[str, str]) -> list[str]:
    out = []
    for key, value in facts.items():
        quoted = value
        if any(c in value for c in ' "='):
            quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(f"{key}={quoted}")
    return out


def _oauth_error(error: auth_errors.RefreshError) -> str:
    """The OAuth `error` code of a refused exchange ('' if the response had none)."""
    data = error.args[1] if len(error.args) > 1 else None
    if isinstance(data, Mapping):
        return str(data.get("error") or "")
    return ""


def _refresh_failure(subject: str, error: auth_errors.RefreshError) -> CollectorError:
    """A refused exchange: retryable ones (5xx, 429) are Transient, the others Auth. The
    message holds the OAuth error and its description, never the assertion."""
    data = error.args[1] if len(error.args) > 1 else None
    if isinstance(data, Mapping):
        reason = f"{data.get('error', 'error')}: {data.get('error_description', '')}".strip()
    else:
        reason = str(error.args[0]) if error.args else "refused"
    message = f"token exchange for {subject} refused ({reason})"
    return Transient(message) if error.retryable else Auth(message)


def load_credentials(info: Mapping[str, Any]) -> service_account.Credentials:
    """Service-account credentials from a parsed key file (its `token_uri` is kept)."""
    credentials: service_account.Credentials = (
        service_account.Credentials.from_service_account_info(dict(info))
    )
    return credentials
