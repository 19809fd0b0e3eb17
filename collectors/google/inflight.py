"""HTTP requests a stop does not wait for.

A thread blocked reading a socket cannot be woken from another thread, so a Google call that
hangs (a stalled proxy, an overloaded API) would hold a signal's stop, or a spent time budget,
for up to the client's read timeout, and `sweep run` would sit silent after Ctrl-C. Instead each
request runs on a daemon thread of its own and the caller waits for its answer or for the stop,
whichever comes first. On a stop the caller raises `Stopped` and leaves the request behind: its
answer is never read, so nothing of it was stored, and a daemon thread does not keep the process
from exiting. The attempt ends as any stopped attempt does (CURSOR_SKIP interrupted, END).
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

from sweepledger.collectors.errors import Stopped

STOP_POLL = 0.05
"""Seconds between looks at the stop while a request is in flight: how late a stop can be."""


class StoppedInFlight(Stopped):
    """The stop came after the request was sent: Google may have answered and metered it, so
    the caller counts it as a request made."""


class StoppableHttp:
    """One pooled `httpx.Client` whose requests end with `Stopped` once `stop` is set."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.stop = threading.Event()
        """Never set unless a runner hands over its own (`stop_on`)."""

    def stop_on(self, stop: threading.Event) -> None:
        """End every request, in flight or to come, as soon as `stop` is set."""
        self.stop = stop

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """`httpx.Client.request`, or `Stopped` once the stop is set: before the request is
        sent, or `StoppedInFlight` after. The client's own errors are raised as it raises them."""
        stop = self.stop
        if stop.is_set():
            raise Stopped("stopped before a request was sent")
        answer: list[httpx.Response | BaseException] = []
        done = threading.Event()

        def call() -> None:
            try:
                answer.append(self.client.request(method, url, **kwargs))
            except BaseException as error:  # handed to the caller, never to the thread's hook
                answer.append(error)
            finally:
                done.set()

        threading.Thread(target=call, name="sweep-http", daemon=True).start()
        while not done.wait(STOP_POLL):
            if stop.is_set():
                raise StoppedInFlight("stopped while a request was in flight")
        outcome = answer[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self) -> None:
        """Close the pooled connections (a request left behind by a stop fails on its own)."""
        self.client.close()
