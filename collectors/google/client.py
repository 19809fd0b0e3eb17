"""One pooled HTTP client for every Google call of a source: auth, counting, error mapping.

httpx rather than requests: one `httpx.Client` is a thread-safe keep-alive pool with per-phase
timeouts, shared by the token exchanges and every API call, and it never triggers google-auth's
side lookups (see `auth`). `bench/google.py` measures both clients against the emulator.

A 401 invalidates the cached token and the call is made once more with a fresh one; a second 401
is Auth. Every call first takes its quota units from the source's `QuotaLimiter` (see `pacing`);
a refusal for rate is reported to it and, when it paces, the call is made again once the limiter
lets it (up to PACED_RETRIES times, so a page is not refetched whole for one refused call; a
wait longer than `pacing.MAX_PAUSE` goes to the runner). Waits end at once on a stop request:
the limiter's raise `Stopped`, as the runner's do, and so does a request in flight (`inflight`:
a stop does not wait out a hung call's read timeout).

Every call is counted in the caller's `CallTally`, which becomes the PAGE event's `requests`,
`rate_limited` and `quota_units`: one request per API call (a Gmail batch counts its parts, as
Google's quota does, not its envelope), and the units of every answer Google meters, which is all
but a refusal for rate and a refusal before the call reached its API (401, 403
insufficientPermissions).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from sweepledger.collectors.errors import (
    Auth,
    CollectorError,
    Cost,
    RateLimited,
    SourceConfigError,
    Transient,
)
from sweepledger.collectors.google.auth import HttpxTransport, TokenCache, load_credentials
from sweepledger.collectors.google.config import GoogleConfig
from sweepledger.collectors.google.inflight import StoppableHttp, StoppedInFlight
from sweepledger.collectors.google.pacing import MAX_PAUSE, NoPacing, QuotaLimiter, scope_of
from sweepledger.collectors.google.responses import (
    RATE_LIMIT_REASONS,
    error_for,
    parse_error_body,
)
from sweepledger.collectors.protocol import Item, Page

KEY_FIELDS = ("type", "client_email", "private_key", "token_uri")
USER_AGENT = "sweepledger-google/0.1"
PACED_RETRIES = 8
"""Refusals for rate one call waits out under a pacing limiter before RateLimited escapes."""
UNMETERED_REASONS = frozenset({"insufficientPermissions"})


@dataclass(slots=True)
class CallTally:
    """What fetching one page cost; safe to add to from several threads."""

    requests: int = 0
    rate_limited: int = 0
    quota_units: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, requests: int = 0, rate_limited: int = 0, quota_units: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.rate_limited += rate_limited
            self.quota_units += quota_units

    def add(self, other: CallTally) -> None:
        self.count(
            requests=other.requests,
            rate_limited=other.rate_limited,
            quota_units=other.quota_units,
        )

    def cost(self) -> Cost:
        with self._lock:
            return Cost(self.requests, self.rate_limited, self.quota_units)

    def page(
        self,
        items: Sequence[Item],
        next_page_token: str | None,
        exhausted: bool,
        cursor: Mapping[str, str],
        carry: Mapping[str, str],
        failed_ids: Sequence[str] = (),
    ) -> Page:
        """The page fetched, carrying what fetching it cost."""
        cost = self.cost()
        return Page(
            items=items,
            next_page_token=next_page_token,
            exhausted=exhausted,
            cursor=cursor,
            carry=carry,
            failed_ids=failed_ids,
            requests=cost.requests,
            rate_limited=cost.rate_limited,
            quota_units=cost.quota_units,
        )


def metered(status: int, body: bytes) -> bool:
    """Whether Google charged quota for an answer: not for a refusal for rate, nor for one
    given before the call reached its API (a bad token, a token without the scope)."""
    if status < 400:
        return True
    if status in (401, 429):
        return False
    if status == 403:
        reasons = parse_error_body(body).reasons
        return not (UNMETERED_REASONS | RATE_LIMIT_REASONS).intersection(reasons)
    return True


def read_key_file(path: Path) -> dict[str, Any]:
    """The service account key, or SourceConfigError saying what is wrong (never its content)."""
    try:
        info = orjson.loads(path.read_bytes())
    except OSError as error:
        raise SourceConfigError(
            f"cannot read the google:// credentials file {path}: {error.strerror}"
        ) from None
    except orjson.JSONDecodeError:
        raise SourceConfigError(f"the credentials file {path} is not JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise SourceConfigError(f"the credentials file {path} is not a service account key")
    missing = [name for name in KEY_FIELDS if not info.get(name)]
    if missing:
        raise SourceConfigError(f"the credentials file {path} lacks {', '.join(missing)}")
    return info


class ApiClient:
    """Authenticated JSON calls to Google's APIs as a delegated subject."""

    def __init__(
        self,
        config: GoogleConfig,
        key: Mapping[str, Any],
        *,
        connections: int = 16,
        timeout: float = 30.0,
        auth_debug: bool | None = None,
        limiter: QuotaLimiter | None = None,
    ) -> None:
        self.config = config
        self.limiter: QuotaLimiter = limiter or NoPacing()
        self.http = StoppableHttp(
            httpx.Client(
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
                timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                headers={"User-Agent": USER_AGENT},
            )
        )
        try:
            credentials = load_credentials(key)
        except (ValueError, KeyError) as error:
            self.http.close()
            raise SourceConfigError(
                f"the credentials file {config.credentials} has an unusable key: "
                f"{type(error).__name__}"
            ) from None
        self.tokens = TokenCache(credentials, HttpxTransport(self.http), debug=auth_debug)

    def close(self) -> None:
        self.http.close()

    def get_json(
        self,
        api: str,
        path: str,
        params: Mapping[str, Any],
        *,
        subject: str,
        scopes: Sequence[str],
        tally: CallTally,
        units: int = 1,
        overrides: Mapping[int, type[CollectorError]] | None = None,
    ) -> dict[str, Any]:
        """GET `path` on `api` as `subject`; the decoded JSON body or a collector error."""
        response = self.send(
            "GET",
            api,
            path,
            params=params,
            subject=subject,
            scopes=scopes,
            tally=tally,
            units=units,
            overrides=overrides,
        )
        return decode_json(response.content, f"GET {path}")

    def send(
        self,
        method: str,
        api: str,
        path: str,
        *,
        subject: str,
        scopes: Sequence[str],
        tally: CallTally,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        units: int = 1,
        overrides: Mapping[int, type[CollectorError]] | None = None,
        envelope: bool = False,
    ) -> httpx.Response:
        """One call: made again once after a 401 with a fresh token, and after each refusal for
        rate while the limiter paces (up to PACED_RETRIES). `units` is what Google charges for
        it. An `envelope` (a batch) is neither paced nor counted here: its parts are, by the
        caller, from the answer."""
        url = self.config.base(api) + path
        name = f"{method} {path}"
        refreshed = False
        refusals = 0
        while True:
            token = self.tokens.token(subject, scopes)
            request_headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
            ticket = 0.0 if envelope else self.limiter.acquire(subject, units)
            try:
                response = self.http.request(
                    method, url, params=params, content=content, headers=request_headers
                )
            except StoppedInFlight:
                tally.count(requests=1)
                raise
            except httpx.TimeoutException as error:
                tally.count(requests=1)
                raise Transient(f"{name}: timed out ({type(error).__name__})") from None
            except httpx.TransportError as error:
                tally.count(requests=1)
                raise Transient(f"{name}: connection failed ({type(error).__name__})") from None
            status = response.status_code
            charged = metered(status, response.content)
            if not envelope:
                tally.count(requests=1, quota_units=units if charged else 0)
                if charged:
                    self.limiter.succeeded(subject, units, ticket)
            if status == 401 and not refreshed:
                refreshed = True
                self.tokens.invalidate(subject, scopes, token)
                continue
            if response.is_success:
                return response
            failure = error_for(
                status,
                response.content,
                response.headers,
                request=name,
                had_page_token=bool(params and params.get("pageToken")),
                overrides=overrides,
            )
            if isinstance(failure, RateLimited):
                tally.count(requests=1 if envelope else 0, rate_limited=1)
                if not envelope:
                    scope = scope_of(parse_error_body(response.content))
                    self.limiter.penalise(subject, scope, ticket, failure.retry_after)
                    wait = failure.retry_after or 0.0
                    if self.limiter.paces and refusals < PACED_RETRIES and wait <= MAX_PAUSE:
                        refusals += 1
                        continue
            if isinstance(failure, Auth):
                raise Auth(f"{failure} (after one token refresh)")
            raise failure


def decode_json(body: bytes, name: str) -> dict[str, Any]:
    """A JSON object body; Transient if it is cut or not JSON (a proxy's error page)."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Transient(f"{name}: the response is not JSON") from None
    if not isinstance(decoded, dict):
        raise Transient(f"{name}: the response is not a JSON object")
    return decoded
