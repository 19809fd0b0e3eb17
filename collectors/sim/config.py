"""The `sim://` URL: which demo workspace to serve, how to page it, and which faults to inject.

`sim://?subjects=20&seed=1&generation=1&page_size=25&latency_ms=0&rate_limit=0&errors=0
&expire_tokens=0&expire_cursors=0&item_errors=0&suspended=a@x,b@y&quota_user=U&quota_project=P`;
every parameter is optional and `sim://` alone is the default workspace. The canonical form omits
defaults and sorts the rest, so two spellings of the same workspace give the same `url` (recorded
in SWEEP_OPEN, compared on resume).

`quota_user` and `quota_project` are the quota model of the Google emulator (`sweep emulate`), in
quota units per second per user and per project (absent: no quota). The `sim://` source itself
validates them and keeps them in its URL but does not enforce them: a quota is a function of the
clock, and the demo workspace promises the same pages and faults for the same requests in every
process (a `--workers 1` ledger is deterministic). Its pages still report the quota units Google
would charge, so a sim sweep tells what a quota would have to allow.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from urllib.parse import quote, unquote, urlsplit

from sweepledger.collectors.errors import SourceConfigError
from sweepledger.collectors.sim.common import (
    MAX_GENERATION,
    MAX_SUBJECTS,
    subject_email,
    subject_index,
)

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "generation": (1, MAX_GENERATION),
    "latency_ms": (0, 60_000),
    "page_size": (1, 1_000),
    "seed": (0, 2**63 - 1),
    "subjects": (1, MAX_SUBJECTS),
}
PROBABILITIES = ("errors", "expire_cursors", "expire_tokens", "item_errors", "rate_limit")
QUOTAS = ("quota_project", "quota_user")
MAX_QUOTA = 1e9
"""Units per second; Gmail's real per-project default is 20 000 (1 200 000 a minute)."""
EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """The parameters of a `sim://` URL, validated; defaults are the plain demo workspace."""

    subjects: int = 20
    seed: int = 1
    generation: int = 1
    page_size: int = 25
    latency_ms: int = 0
    rate_limit: float = 0.0
    errors: float = 0.0
    expire_tokens: float = 0.0
    expire_cursors: float = 0.0
    item_errors: float = 0.0
    suspended: tuple[str, ...] = ()
    """Case-folded emails of subjects whose every fetch raises Forbidden, sorted."""
    quota_user: float | None = None
    """Quota units per second each user may spend (the emulator's per-user window); None: none."""
    quota_project: float | None = None
    """Quota units per second the whole project may spend (the per-project window)."""
    auto_generation: bool = False
    """`generation=auto`: whoever opens the source picks the generation (the daemon: its cycle
    number), and the URL stays `generation=auto`, so every cycle keeps the same sweep scope."""

    @classmethod
    def from_url(cls, url: str) -> SimConfig:
        """Parse and validate a `sim://` URL; SourceConfigError names the first bad parameter."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "sim":
            raise SourceConfigError(f"not a sim:// URL: {url!r}")
        if parts.netloc or parts.path not in {"", "/"} or parts.fragment:
            raise SourceConfigError(
                f"a sim:// URL takes only query parameters (e.g. sim://?subjects=20&seed=1), "
                f"not {url!r}"
            )
        values: dict[str, object] = {}
        for pair in filter(None, parts.query.split("&")):
            key, _, raw = pair.partition("=")
            key, raw = unquote(key), unquote(raw)
            if key in values or (key == "generation" and "auto_generation" in values):
                raise SourceConfigError(f"sim:// parameter {key} is given more than once")
            if key == "generation" and raw == "auto":
                values["auto_generation"] = True
                continue
            values[key] = _parse_value(key, raw)
        config = cls(**values)  # type: ignore[arg-type]
        for email in config.suspended:
            if subject_index(email, config.subjects) is None:
                raise SourceConfigError(
                    f"sim:// parameter suspended names {email}, which is not a subject of this "
                    f"workspace ({subject_email(1, config.subjects)} .. "
                    f"{subject_email(config.subjects, config.subjects)})"
                )
        return config

    @property
    def url(self) -> str:
        """The canonical URL: parameters that differ from the defaults, sorted by name."""
        default = SimConfig()
        query = []
        for field in sorted(fields(self), key=lambda f: f.name):
            value = getattr(self, field.name)
            if field.name == "auto_generation":
                continue
            if field.name == "generation" and self.auto_generation:
                query.append("generation=auto")
                continue
            if value == getattr(default, field.name):
                continue
            if field.name == "suspended":
                text = ",".join(quote(email, safe="@.+") for email in value)
            elif isinstance(value, float):
                text = repr(value).removesuffix(".0")
            else:
                text = str(value)
            query.append(f"{field.name}={text}")
        return "sim://" + ("?" + "&".join(query) if query else "")


def _parse_value(key: str, raw: str) -> object:
    """One parameter's value, or SourceConfigError saying what the parameter allows."""
    if key in INTEGER_RANGES:
        low, high = INTEGER_RANGES[key]
        if not re.fullmatch(r"-?\d+", raw) or not low <= int(raw) <= high:
            raise SourceConfigError(
                f"sim:// parameter {key} must be an integer from {low} to {high}, not {raw!r}"
            )
        return int(raw)
    if key in PROBABILITIES:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not 0.0 <= value <= 1.0:
            raise SourceConfigError(
                f"sim:// parameter {key} must be a probability from 0 to 1, not {raw!r}"
            )
        return value
    if key == "suspended":
        emails = [email.strip().casefold() for email in raw.split(",") if email.strip()]
        for email in emails:
            if not EMAIL.fullmatch(email):
                raise SourceConfigError(
                    f"sim:// parameter suspended must be a comma-separated list of emails, "
                    f"and {email!r} is not an email"
                )
        return tuple(sorted(set(emails)))
    if key in QUOTAS:
        return parse_quota(f"sim:// parameter {key}", raw)
    allowed = ", ".join(sorted([*INTEGER_RANGES, *PROBABILITIES, *QUOTAS, "suspended"]))
    raise SourceConfigError(f"unknown sim:// parameter {key!r}; allowed: {allowed}")


def parse_quota(what: str, raw: str) -> float:
    """A rate in quota units per second: a positive number up to MAX_QUOTA (decimals allowed, so
    a test can ask for 0.5 units a second); SourceConfigError names `what` otherwise."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 < value <= MAX_QUOTA:
        raise SourceConfigError(
            f"{what} must be a number of quota units per second above 0 and at most "
            f"{MAX_QUOTA:.0f}, not {raw!r}"
        )
    return value
