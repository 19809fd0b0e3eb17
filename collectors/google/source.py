"""`GoogleSource`: Google Workspace behind the Source protocol (DESIGN 11).

The roster is the Admin SDK Directory `users.list` of the customer, read as the admin; every
service is then read as the subject itself (domain-wide delegation), with only the read-only
scope that service needs. One `ApiClient` (one pooled httpx client, one token cache) and one
pool for Gmail's per-message gets serve every worker thread of the run.

Nothing about a pass lives in the source between calls: what must travel from page to page (the
historyId or start page token captured before listing, the largest time persisted) goes out in
`Page.carry` and comes back in `FetchRequest.carry`, so any later process can continue.

Every call is paced by one `QuotaLimiter` shared by all workers (`pacing`; the URL's quota hints
seed it) and counted in the fetch's tally: a page reports its calls, refusals and units, and a
fetch that fails hands what it spent to the runner on the error (`CollectorError.cost`). The one
count kept between calls is for the ledger's counters, not for correctness: the Chat `spaces.list`
calls of `units()` are added to the pair's next page in this process (its START has no counters).

Every wait of the source (the default limiter's pacing, a message's retry, the roster's) is
`pause`, which the runner's stop event ends at once (`stop_on`), and so does a request in flight
(`inflight`): a stopped fetch raises `Stopped` with what it spent, and the runner records the
attempt interrupted.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from sweepledger.collectors.errors import CollectorError, Internal, SourceConfigError, Stopped
from sweepledger.collectors.google.calendar import CalendarReader
from sweepledger.collectors.google.chat import ChatReader
from sweepledger.collectors.google.client import ApiClient, CallTally, read_key_file
from sweepledger.collectors.google.config import GoogleConfig
from sweepledger.collectors.google.drive import DriveReader
from sweepledger.collectors.google.gmail import GmailReader
from sweepledger.collectors.google.messages import DEFAULT_MODE, MessageFetcher
from sweepledger.collectors.google.pacing import AdaptiveLimiter, QuotaLimiter
from sweepledger.collectors.protocol import SERVICES, FetchRequest, Page
from sweepledger.collectors.retry import wait_or_stop


class PageReader(Protocol):
    """What every service's reader does: one page of a request, its calls counted in `tally`."""

    def page(self, request: FetchRequest, tally: CallTally) -> Page: ...


DIRECTORY_SCOPES = ("https://www.googleapis.com/auth/admin.directory.user.readonly",)


class GoogleSource:
    """A Google Workspace tenant as a Source; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 8,
        gmail_fetch: str = DEFAULT_MODE,
        timeout: float = 30.0,
        auth_debug: bool | None = None,
        limiter: QuotaLimiter | None = None,
    ) -> None:
        """`limiter`: how calls are paced (default: an in-process `AdaptiveLimiter` seeded by
        the URL's quota hints, waiting with `pause`; `pacing.NoPacing()` for none). A limiter
        passed in waits as it was built to."""
        self.config = GoogleConfig.from_url(url)
        key = read_key_file(self.config.credentials)
        self.stop = threading.Event()
        """Never set unless a runner hands over its own (`stop_on`)."""
        self.limiter: QuotaLimiter = limiter or AdaptiveLimiter(
            user_hint=self.config.quota_user,
            project_hint=self.config.quota_project,
            sleep=self.pause,
        )
        self.client = ApiClient(
            self.config,
            key,
            connections=2 * concurrency + 8,
            timeout=timeout,
            auth_debug=auth_debug,
            limiter=self.limiter,
        )
        self._unbilled: dict[tuple[str, str], CallTally] = {}
        self._unbilled_lock = threading.Lock()
        self.fetcher = MessageFetcher(
            self.client, mode=gmail_fetch, concurrency=concurrency, sleep=self.pause
        )
        self.gmail = GmailReader(self.client, self.fetcher)
        self.calendar = CalendarReader(self.client)
        self.chat = ChatReader(self.client)
        self.drive = DriveReader(self.client)

    def stop_on(self, stop: threading.Event) -> None:
        """End every wait and request of the source as soon as `stop` is set
        (`protocol.Interruptible`)."""
        self.stop = stop
        self.client.http.stop_on(stop)

    def pause(self, seconds: float) -> None:
        """Wait `seconds`, or raise Stopped as soon as a stop is requested."""
        wait_or_stop(self.stop, seconds)

    @property
    def url(self) -> str:
        """The canonical URL (parameters sorted, key path absolute)."""
        return self.config.url

    def roster(self) -> list[str]:
        """Every user of the customer, by Directory `users.list` as the admin (suspended users
        included: their fetches fail Forbidden and the runner blocks them).

        A refusal that retrying cannot change (Auth, Forbidden, NotFound: the credentials, the
        admin or the customer are wrong) is reported as one clear configuration error; an outage
        (5xx, rate, the network) raises as any request does, and the runner retries it with its
        own policy (waits a stop ends) and then ends the run as the source being unavailable.
        """
        try:
            return self._list_users()
        except CollectorError as error:
            if error.retryable:
                raise
            raise SourceConfigError(
                f"cannot list the users of customer {self.config.customer} as "
                f"{self.config.admin}: {error.error_class}: {error}"
            ) from None

    def _list_users(self) -> list[str]:
        emails: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {
                "customer": self.config.customer,
                "maxResults": 500,
                "orderBy": "email",
                "projection": "basic",
            }
            if token:
                params["pageToken"] = token
            answer = self.client.get_json(
                "directory",
                "/admin/directory/v1/users",
                params,
                subject=self.config.admin,
                scopes=DIRECTORY_SCOPES,
                tally=CallTally(),
            )
            emails += [str(user["primaryEmail"]) for user in answer.get("users") or ()]
            token = answer.get("nextPageToken") or None
            if token is None:
                return emails

    def units(self, service: str, subject: str) -> list[str] | None:
        """Chat: the subject's spaces; the other services have no units."""
        _check_service(service)
        if service != "chat":
            return None
        tally = CallTally()
        try:
            spaces = self.chat.spaces(subject, tally)
        except (CollectorError, Stopped) as error:
            error.cost = tally.cost()
            raise
        with self._unbilled_lock:
            self._unbilled.setdefault((service, subject.casefold()), CallTally()).add(tally)
        return spaces

    def fetch(self, request: FetchRequest) -> Page:
        """One page of the request's pass (or the retried items), or a collector error that
        carries what the failed fetch spent."""
        _check_service(request.service)
        if request.service != "chat" and request.unit is not None:
            raise Internal(f"{request.service} has no units, got unit {request.unit!r}")
        tally = CallTally()
        with self._unbilled_lock:
            earlier = self._unbilled.pop((request.service, request.subject.casefold()), None)
        if earlier is not None:
            tally.add(earlier)
        readers: dict[str, PageReader] = {
            "gmail": self.gmail,
            "calendar": self.calendar,
            "chat": self.chat,
            "drive": self.drive,
        }
        reader = readers[request.service]
        try:
            return reader.page(request, tally)
        except (CollectorError, Stopped) as error:
            error.cost = tally.cost()
            raise

    def close(self) -> None:
        """Stop the get pool and close the pooled connections."""
        self.fetcher.close()
        self.client.close()


def _check_service(service: str) -> None:
    if service not in SERVICES:
        raise Internal(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
