"""The `google://` URL: which key file, which admin, which endpoint, which customer.

`google://?credentials=PATH&admin=EMAIL[&endpoint=URL][&customer=my_customer][&quota_user=U]
[&quota_project=P]`. The canonical form (recorded in SWEEP_OPEN and compared on resume) sorts the
parameters, omits the default customer and makes the key path absolute, so the same sweep resumes
from any working directory.

`quota_user` / `quota_project` tell the pacing limiter the project's quotas in units per second
(see `pacing`): where they are known, it starts there and never probes above them. They are part
of the canonical URL, so the ledger records which hint a sweep ran with, and so a daemon's every
cycle opens its source with the same hint; changing one is a new scope (`--no-resume`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from sweepledger.collectors.errors import SourceConfigError
from sweepledger.collectors.sim.config import parse_quota

DEFAULT_CUSTOMER = "my_customer"
EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")
ALLOWED = ("admin", "credentials", "customer", "endpoint", "quota_project", "quota_user")

GOOGLE_BASES = {
    "gmail": "https://gmail.googleapis.com",
    "calendar": "https://www.googleapis.com",
    "chat": "https://chat.googleapis.com",
    "drive": "https://www.googleapis.com",
    "directory": "https://admin.googleapis.com",
}
"""Google's own hosts per API; `endpoint` replaces all of them (the paths are the same)."""


@dataclass(frozen=True, slots=True)
class GoogleConfig:
    """The parameters of a `google://` URL, validated."""

    credentials: Path
    admin: str
    endpoint: str | None = None
    customer: str = DEFAULT_CUSTOMER
    quota_user: float | None = None
    """The per-user quota in units per second, if the operator knows it (a pacing hint)."""
    quota_project: float | None = None
    """The per-project quota in units per second, if known (a pacing hint)."""

    @classmethod
    def from_url(cls, url: str) -> GoogleConfig:
        """Parse and validate; SourceConfigError names the first bad parameter."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "google":
            raise SourceConfigError(f"not a google:// URL: {url!r}")
        if parts.netloc or parts.path not in {"", "/"} or parts.fragment:
            raise SourceConfigError(
                "a google:// URL takes only query parameters "
                f"(google://?credentials=KEY.json&admin=admin@your.domain), not {url!r}"
            )
        values: dict[str, str] = {}
        for pair in filter(None, parts.query.split("&")):
            key, _, raw = pair.partition("=")
            key, raw = unquote(key), unquote(raw)
            if key not in ALLOWED:
                raise SourceConfigError(
                    f"unknown google:// parameter {key!r}; allowed: {', '.join(ALLOWED)}"
                )
            if key in values:
                raise SourceConfigError(f"google:// parameter {key} is given more than once")
            values[key] = raw.strip()
        for required in ("credentials", "admin"):
            if not values.get(required):
                raise SourceConfigError(
                    f"google:// needs {required}=...: the service account key file and the "
                    f"admin email the Directory API is read as"
                )
        if not EMAIL.fullmatch(values["admin"]):
            raise SourceConfigError(f"google:// admin {values['admin']!r} is not an email")
        endpoint = values.get("endpoint") or None
        if endpoint is not None:
            endpoint = _checked_endpoint(endpoint)
        customer = values.get("customer") or DEFAULT_CUSTOMER
        path = Path(values["credentials"]).expanduser().absolute()
        hints = {
            key: parse_quota(f"google:// parameter {key}", values[key])
            for key in ("quota_user", "quota_project")
            if key in values
        }
        return cls(path, values["admin"].casefold(), endpoint, customer, **hints)

    @property
    def url(self) -> str:
        """The canonical URL: parameters sorted, the default customer omitted."""
        query = {"admin": self.admin, "credentials": str(self.credentials)}
        if self.customer != DEFAULT_CUSTOMER:
            query["customer"] = self.customer
        if self.endpoint is not None:
            query["endpoint"] = self.endpoint
        for key, rate in (("quota_user", self.quota_user), ("quota_project", self.quota_project)):
            if rate is not None:
                query[key] = repr(rate).removesuffix(".0")
        return "google://?" + "&".join(
            f"{key}={quote(value, safe='@/:.+_-~')}" for key, value in sorted(query.items())
        )

    def base(self, api: str) -> str:
        """The scheme and host an API is reached at (Google's, or the endpoint for all)."""
        return self.endpoint or GOOGLE_BASES[api]


def _checked_endpoint(raw: str) -> str:
    """The `endpoint` parameter without its trailing slash, if it is an http(s) URL with a
    host and a port from 1 to 65535; a malformed one would only fail at the first request,
    as a traceback or as an outage to retry."""
    refusal = SourceConfigError(
        f"google:// endpoint must be an http(s) URL such as http://127.0.0.1:8080, not {raw!r}"
    )
    try:
        target = urlsplit(raw)
        port = target.port  # a port that is not a number from 0 to 65535 raises ValueError
    except ValueError:
        raise refusal from None
    if target.scheme not in {"http", "https"} or not target.hostname or port == 0:
        raise refusal
    if target.query or target.fragment:
        raise refusal
    return raw.rstrip("/")
