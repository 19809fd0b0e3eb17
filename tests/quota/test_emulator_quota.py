"""The emulator's quota model: units per method, the two windows, Google's refusals, the admin
endpoint; and the quota parameters of the `sim://` and `google://` URLs."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sweepledger.collectors.emulator.dispatch import Call, Route
from sweepledger.collectors.emulator.quota import QuotaModel, units_of
from sweepledger.collectors.emulator.server import EmulatorServer
from sweepledger.collectors.emulator.tokens import Grant
from sweepledger.collectors.errors import RateLimited, SourceConfigError
from sweepledger.collectors.google.config import GoogleConfig
from sweepledger.collectors.google.pacing import NoPacing
from sweepledger.collectors.google.source import GoogleSource
from sweepledger.collectors.protocol import FetchRequest
from sweepledger.collectors.sim.config import SimConfig
from sweepledger.collectors.sim.source import SimSource

USER = "user1@example.com"


def _call(route: str, user: str = USER, project: str = "p1") -> Call:
    grant = Grant(user, frozenset(), 1e12, project)
    return Call(Route(route, "GET", re.compile(""), lambda c: None), {}, {}, {}, b"", grant)  # type: ignore[arg-type,return-value]


def test_gmail_methods_cost_their_published_units_and_other_calls_one() -> None:
    assert [
        units_of(name)
        for name in (
            "gmail.users.getProfile",
            "gmail.users.history.list",
            "gmail.users.messages.list",
            "gmail.users.messages.get",
            "calendar.events.list",
            "directory.users.list",
            "gmail.batch",
            "oauth2.token",
        )
    ] == [1, 2, 5, 5, 1, 1, 0, 0]


def test_the_user_window_refuses_with_403_and_an_exact_retry_instant() -> None:
    """Ten units a second per user: two gets pass, the third waits until the window refills
    five units (half a second), and Google's 403 says so; a refused call is not charged."""
    model = QuotaModel(user_rate=10.0)
    assert model.admit(_call("gmail.users.messages.get"), 1000.0) is None
    assert model.admit(_call("gmail.users.messages.get"), 1000.0) is None
    refusal = model.admit(_call("gmail.users.messages.get"), 1000.0)
    assert refusal is not None and refusal.status == 403
    assert refusal.reason == "userRateLimitExceeded" and refusal.domain == "usageLimits"
    assert refusal.message.endswith("Retry after 1970-01-01T00:16:40.500Z")
    assert model.snapshot()["units"] == 10 and model.snapshot()["refused"]["user"] == 1
    assert model.admit(_call("gmail.users.messages.get", "user2@example.com"), 1000.0) is None


def test_the_project_window_refuses_with_429_for_every_user_of_the_project() -> None:
    model = QuotaModel(project_rate=6.0)
    assert model.admit(_call("gmail.users.messages.get"), 0.0) is None
    refusal = model.admit(_call("gmail.users.messages.get", "user2@example.com"), 0.0)
    assert refusal is not None and (refusal.status, refusal.reason) == (429, "rateLimitExceeded")
    body = json.loads(refusal.reply().body)["error"]
    assert body["status"] == "RESOURCE_EXHAUSTED" and "Retry after" in body["message"]
    assert model.admit(_call("gmail.users.messages.get", project="p2"), 0.0) is None


def test_a_refund_gives_back_what_a_refused_fault_was_charged_and_rates_change_live() -> None:
    model = QuotaModel(user_rate=5.0)
    call = _call("gmail.users.messages.get")
    assert model.admit(call, 0.0) is None
    model.refund(call, 0.0)
    assert model.snapshot()["units"] == 0
    assert model.admit(call, 0.0) is None
    model.configure(None, None)
    assert all(model.admit(call, 0.0) is None for _ in range(100))
    model.configure(1.0, None)
    assert model.admit(call, 0.0) is None
    assert model.admit(call, 0.0) is not None


@pytest.fixture(scope="module")
def served(inproc_emulator: Callable[[str], EmulatorServer]) -> EmulatorServer:
    """An emulator on a thread of this process, 2 subjects, 50 units a second per user."""
    return inproc_emulator("sim://?subjects=2&seed=8&quota_user=50")


def _admin(served: EmulatorServer, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(served.url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_sweep_over_the_quota_gets_googles_refusals_and_stats_count_them(
    served: EmulatorServer,
) -> None:
    """Unpaced, the third page of a mailbox (about 130 units a page) overruns 50 units a second:
    the source sees RateLimited with the service's wait, and the stats count the refusals."""
    _admin(served, "POST", "/_emulator/stats/reset", {})
    key: Path = served.key_path  # type: ignore[attr-defined]
    source = GoogleSource(
        f"google://?credentials={key}&admin=admin@example.com&endpoint={served.url}",
        limiter=NoPacing(),
        gmail_fetch="concurrent",
    )
    source.fetcher.max_retries = 0

    def overrun() -> None:
        for _ in range(5):
            source.fetch(FetchRequest("calendar", USER, None, {}, None))
            source.fetch(FetchRequest("gmail", USER, None, {}, None))

    try:
        with pytest.raises(RateLimited) as limited:
            overrun()
        assert limited.value.retry_after is not None and limited.value.retry_after < 5.0
        assert limited.value.cost is not None and limited.value.cost.rate_limited >= 1
    finally:
        source.close()
    stats = _admin(served, "GET", "/_emulator/stats")
    assert stats["quota"]["refused"]["user"] >= 1
    assert stats["quota"]["refused_total"] == sum(
        n for by in stats["statuses"].values() for code, n in by.items() if code == "403"
    )


def test_the_admin_endpoint_changes_the_quota_without_a_restart(served: EmulatorServer) -> None:
    before = _admin(served, "GET", "/_emulator/quota")
    assert (before["quota_user"], before["quota_project"]) == (50.0, None)
    after = _admin(served, "POST", "/_emulator/quota", {"quota_project": 1000})
    assert (after["quota_user"], after["quota_project"]) == (50.0, 1000.0)
    after = _admin(served, "POST", "/_emulator/quota", {"quota_user": None, "quota_project": None})
    assert (after["quota_user"], after["quota_project"]) == (None, None)
    for bad in ({"quota_user": 0}, {"quota_user": "fast"}, {"speed": 1}, [1]):
        with pytest.raises(urllib.error.HTTPError) as refused:
            _admin(served, "POST", "/_emulator/quota", bad)
        assert refused.value.code == 400
        refused.value.close()
    _admin(served, "POST", "/_emulator/quota", {"quota_user": 50})


def test_quota_parameters_are_validated_in_both_urls() -> None:
    """Positive units per second; canonical URLs keep them (the sweep's scope says which)."""
    config = SimConfig.from_url("sim://?quota_user=300&quota_project=2500.5")
    assert (config.quota_user, config.quota_project) == (300.0, 2500.5)
    assert config.url == "sim://?quota_project=2500.5&quota_user=300"
    for bad in ("quota_user=0", "quota_project=-5", "quota_user=x", "quota_user=inf"):
        with pytest.raises(SourceConfigError, match="quota units per second"):
            SimConfig.from_url("sim://?" + bad)
    google = GoogleConfig.from_url("google://?credentials=k.json&admin=a@b.co&quota_user=40")
    assert google.quota_user == 40.0 and google.quota_project is None
    assert "quota_user=40" in google.url
    with pytest.raises(SourceConfigError, match="quota_project"):
        GoogleConfig.from_url("google://?credentials=k.json&admin=a@b.co&quota_project=0")


def test_the_sim_source_ignores_quotas_and_stays_deterministic() -> None:
    """The demo workspace serves the same pages with or without a quota (a quota depends on
    the clock; the sim promises the same pages for the same requests)."""
    request = FetchRequest("gmail", USER, None, {}, None)
    plain, limited = SimSource("sim://?subjects=2"), SimSource("sim://?subjects=2&quota_user=1")
    try:
        pages = [plain.fetch(request), limited.fetch(request)]
    finally:
        plain.close()
        limited.close()
    assert pages[0] == pages[1]
