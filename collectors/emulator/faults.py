"""The `sim://` fault plan, answered as Google answers: status codes and error bodies.

Each HTTP call is described to the sim's `FaultPlan` as a FetchRequest (its service, subject,
space, cursor, page token, and the route and parameters as `carry`, so distinct calls are distinct
draws and a retry of the same call is a new draw). The plan's decision is then rendered:

- suspended subject: 403 `forbidden` on every call of that user;
- `rate_limit`: 429 RESOURCE_EXHAUSTED or 403 `userRateLimitExceeded` (one in three), both with
  "Retry after <instant>" in the message (the wait the sim would ask) and a Retry-After header;
- `errors`: 503 `backendError`; `item_errors`: 500 `backendError` on a `messages.get` (the only
  per-item call: the other APIs return whole items in their lists, which cannot fail one by one);
- `expire_tokens`: 400 `invalid` on the `pageToken` parameter;
- `expire_cursors`: the route's own expiry answer (Gmail history 404, Calendar 410
  `fullSyncRequired`, Drive 400 on the start page token). Chat has no server-side cursor (its
  cursor is a `create_time` filter, which cannot expire), so it never draws this fault.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

from sweepledger.collectors.emulator.dispatch import ApiError
from sweepledger.collectors.errors import (
    CursorExpired,
    Forbidden,
    InvalidPageToken,
    RateLimited,
    Transient,
)
from sweepledger.collectors.protocol import FetchRequest
from sweepledger.collectors.sim.common import rfc3339, unit_interval
from sweepledger.collectors.sim.faults import FaultPlan, request_identity

SECOND_US = 1_000_000


def inject(
    plan: FaultPlan,
    seed: int,
    *,
    route: str,
    service: str,
    subject: str,
    query: Mapping[str, Sequence[str]],
    unit: str | None = None,
    cursor: Mapping[str, str] | None = None,
    page_token: str | None = None,
    item_id: str | None = None,
    expired: ApiError | None = None,
) -> None:
    """Raise the ApiError this occurrence of the call draws, if any."""
    carry = {"route": route}
    carry.update({k: ",".join(v) for k, v in query.items() if k != "pageToken"})
    request = FetchRequest(
        service,
        subject,
        unit,
        dict(cursor or {}),
        page_token,
        carry,
        retry_ids=(item_id,) if item_id else (),
    )
    identity = request_identity(request)
    occurrence = plan.occurrence(identity)
    try:
        plan.raise_fault(request, identity, occurrence)
    except Forbidden:
        raise ApiError(
            403, f"{subject} is suspended: access to this account is disabled.", "forbidden"
        ) from None
    except RateLimited as limited:
        raise rate_limited(seed, identity, occurrence, limited.retry_after or 0.0) from None
    except Transient:
        raise ApiError(503, "The service is currently unavailable.", "backendError") from None
    except InvalidPageToken:
        raise invalid_page_token() from None
    except CursorExpired:
        if expired is None:
            raise ApiError(
                500, "Internal error: expiry without an answer", "backendError"
            ) from None
        raise expired from None
    if item_id and plan.item_fails(identity, occurrence, item_id):
        raise ApiError(500, "Internal error encountered.", "backendError")


def rate_limited(seed: int, identity: str, occurrence: int, wait: float) -> ApiError:
    """Google's two rate-limit answers, both saying when to come back."""
    until = rfc3339(int((time.time() + wait) * SECOND_US), 3)
    headers = {"Retry-After": str(max(1, math.ceil(wait)))}
    if unit_interval(seed, "rate-limit-shape", identity, occurrence) < 1 / 3:
        return ApiError(
            403,
            f"User-rate limit exceeded.  Retry after {until}",
            "userRateLimitExceeded",
            domain="usageLimits",
            headers=headers,
        )
    return ApiError(
        429,
        f"Too many concurrent requests for user. Retry after {until}",
        "rateLimitExceeded",
        headers=headers,
    )


def invalid_page_token() -> ApiError:
    return ApiError(400, "Invalid pageToken", "invalid", location="pageToken")
