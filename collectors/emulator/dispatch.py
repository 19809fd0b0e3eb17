"""How the emulator answers one API call: route, authenticate, scope, admit, count, serve.

Every call goes through `Dispatcher.dispatch` in this order, whatever its route:

1. match the route (Google's method id, e.g. `gmail.users.messages.get`) and count it;
2. authenticate the bearer token (401) and check the token's scopes against the route's (403);
3. ask the `Admission` policy whether the call may run now: the hook the quota model
   (`quota.QuotaModel`: units per method id, per-user and per-project windows) plugs into. A call
   it admitted and the handler then answers with a rate-limit fault is refunded;
4. wait the workspace's latency, then run the handler, which enforces impersonation (a token for
   one user reading another's data is 403) and draws the workspace's faults.

`Stats` counts arrivals per route and answers per (route, status), so tests can count requests.
Batch parts are dispatched one by one through the same steps, so each is counted and admitted.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from sweepledger.collectors.emulator.tokens import Grant, TokenIssuer

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    410: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """An error answer in Google's envelope: status, message, reason and optional location."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str = "",
        *,
        location: str = "",
        domain: str = "global",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason
        self.location, self.domain = location, domain
        self.headers = dict(headers or {})

    def reply(self) -> Reply:
        detail: dict[str, Any] = {"message": self.message, "domain": self.domain}
        if self.reason:
            detail["reason"] = self.reason
        if self.location:
            detail.update(location=self.location, locationType="parameter")
        body = {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [detail],
                "status": GOOGLE_STATUS.get(self.status, "UNKNOWN"),
            }
        }
        return Reply.json(body, self.status, headers=self.headers)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    @classmethod
    def json(
        cls, value: Any, status: int = 200, *, headers: Mapping[str, str] | None = None
    ) -> Reply:
        return cls(
            status,
            orjson.dumps(value),
            {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
        )


@dataclass(frozen=True, slots=True)
class Call:
    """One API call as a handler sees it."""

    route: Route
    path: Mapping[str, str]
    query: Mapping[str, Sequence[str]]
    headers: Mapping[str, str]
    body: bytes
    grant: Grant | None

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        return list(self.query.get(name) or ())

    def flag(self, name: str) -> bool:
        return (self.param(name) or "").lower() == "true"

    @property
    def subject(self) -> str:
        assert self.grant is not None
        return self.grant.subject


Handler = Callable[[Call], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    """A Google method: its id, HTTP method, path pattern and the scopes that may call it."""

    name: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    scopes: frozenset[str] = frozenset()
    """Any one of these on the token is enough; empty means no token (the token endpoint)."""


RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


class Admission(Protocol):
    """Decides whether a call may run now; an ApiError (429, 403 rateLimitExceeded) if not."""

    def admit(self, call: Call, now: float) -> ApiError | None: ...

    def refund(self, call: Call, now: float) -> None:
        """An admitted call was answered with a rate-limit refusal after all (a fault)."""
        ...


class AdmitAll:
    """No quota: every call runs (the default until a quota model is installed)."""

    def admit(self, call: Call, now: float) -> ApiError | None:
        return None

    def refund(self, call: Call, now: float) -> None:
        return None


@dataclass
class Stats:
    """Calls per route id, and answers per (route id, status)."""

    routes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arrived(self, name: str) -> None:
        with self.lock:
            self.routes[name] += 1

    def answered(self, name: str, status: int) -> None:
        with self.lock:
            self.statuses[(name, status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            by_status: dict[str, dict[str, int]] = {}
            for (name, status), count in sorted(self.statuses.items()):
                by_status.setdefault(name, {})[str(status)] = count
            return {
                "routes": dict(sorted(self.routes.items())),
                "statuses": by_status,
                "total": sum(self.routes.values()),
            }

    def reset(self) -> None:
        with self.lock:
            self.routes.clear()
            self.statuses.clear()


class Dispatcher:
    """Runs the steps of the module docstring for every API call."""

    def __init__(
        self, routes: Sequence[Route], tokens: TokenIssuer, latency: Callable[[], float]
    ) -> None:
        self.routes = list(routes)
        self.tokens = tokens
        self.latency = latency
        self.admission: Admission = AdmitAll()
        self.stats = Stats()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    def dispatch(
        self,
        method: str,
        path: str,
        query: Mapping[str, Sequence[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        matched = self.match(method, path)
        if matched is None:
            return ApiError(
                404, f"The requested URL {path} was not found on this server.", "notFound"
            ).reply()
        route, params = matched
        self.stats.arrived(route.name)
        reply = self._serve(route, params, query, headers, body)
        self.stats.answered(route.name, reply.status)
        return reply

    def _serve(
        self,
        route: Route,
        params: dict[str, str],
        query: Mapping[str, Sequence[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        try:
            grant = self._authenticate(route, headers)
            call = Call(route, params, query, headers, body, grant)
            refusal = self.admission.admit(call, time.time())
            if refusal is not None:
                raise refusal
        except ApiError as error:
            return error.reply()
        try:
            delay = self.latency()
            if delay:
                time.sleep(delay)
            return route.handler(call)
        except ApiError as error:
            if error.status == 429 or (error.status == 403 and error.reason in RATE_LIMIT_REASONS):
                self.admission.refund(call, time.time())
            return error.reply()

    def _authenticate(self, route: Route, headers: Mapping[str, str]) -> Grant | None:
        if not route.scopes:
            return None
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = auth.partition(" ")
        grant = self.tokens.lookup(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None:
            raise ApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth "
                "2 access token, login cookie or other valid authentication "
                "credential.",
                "authError",
                location="Authorization",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        if not route.scopes.intersection(grant.scopes):
            raise ApiError(
                403, "Request had insufficient authentication scopes.", "insufficientPermissions"
            )
        return grant
