"""google:// against the emulator: requests per second, and requests made / requests needed.

The emulator runs as a real `sweep emulate` subprocess (its own interpreter, so the two sides do
not share a GIL) serving `sim://?subjects=N&seed=1&latency_ms=20`: every call waits 20 ms, as a
nearby Google front end would. The sweep runs in this process through the Python API with
`--workers 4`. Figures:

- Gmail's per-message gets two ways, HTTP batches of 50 vs bounded concurrency (8 threads):
  the source keeps the faster as `messages.DEFAULT_MODE`.
- A full sweep and, after the emulator moves to generation 2, an incremental one: API calls
  (batch parts count one each, as Google's quota counts them), HTTP exchanges, token exchanges,
  calls/s sustained, and calls made / the minimum the APIs need for that workspace (computed
  from the workspace itself: list pages at the emulator's page size, one get per message, one
  history / sync-token / changes page per pair when the changes fit one). Target 1.00 for the
  incremental sweep.
- httpx vs requests, one keep-alive connection, sequential calls at latency 0: the client's own
  cost per call, which is why the source uses httpx.

Run alone: `python bench/google.py [--quick]`; `bench/run_all.py` can call `main(quick)`.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

# This file is named like Google's `google` namespace package (google-auth lives in it), and the
# bench folder is first on sys.path: run alone, the folder is hidden until the real package is
# imported; imported as `google` (bench/run_all.py), the module lends itself the real package's
# path so `google.auth` still resolves to google-auth.
_BENCH = Path(__file__).resolve().parent
if __name__ == "google":
    __path__ = [
        str(Path(p or ".").resolve() / "google")
        for p in sys.path
        if Path(p or ".").resolve() != _BENCH and (Path(p or ".") / "google").is_dir()
    ]
else:
    _saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
    import google.auth  # noqa: F401 - the real namespace package, registered before the folder returns

    sys.path[:] = _saved

from harness import Table, count, data_dir, scratch  # noqa: E402

from sweepledger.collectors.emulator.calendar_api import starts_with_empty_page  # noqa: E402
from sweepledger.collectors.emulator.control import EmulatorProcess  # noqa: E402
from sweepledger.collectors.google.messages import DEFAULT_MODE, MODES  # noqa: E402
from sweepledger.collectors.google.source import GoogleSource  # noqa: E402
from sweepledger.collectors.runner import RunOptions, SweepRunner  # noqa: E402
from sweepledger.collectors.sim.workspace import Workspace  # noqa: E402

SERVICES = ("gmail", "calendar", "chat", "drive")
PAGE = 25
"""The workspace's page size (sim's default): the most items any list page holds."""
WORKERS = 4
SPACES = {
    "directory": "directory.",
    "gmail": "gmail.",
    "calendar": "calendar.",
    "chat": "chat.",
    "drive": "drive.",
}


def pages(items: int) -> int:
    return max(1, math.ceil(items / PAGE))


def minimum_full(ws: Workspace) -> dict[str, int]:
    """API calls a full sweep cannot do without, per API."""
    need = dict.fromkeys(SPACES, 0)
    need["directory"] = pages(len(ws.roster()))
    for s in ws.roster():
        messages = len(ws.gmail_messages(s))
        need["gmail"] += 1 + pages(messages) + messages
        need["calendar"] += pages(len(ws.calendar(s).events)) + starts_with_empty_page(ws, s)
        spaces = ws.chat(s).spaces
        need["chat"] += pages(len(spaces)) + sum(pages(len(sp.messages)) for sp in spaces)
        need["drive"] += 1 + pages(len(ws.drive_files(s)))
    return need


def minimum_incremental(before: Workspace, after: Workspace) -> dict[str, int]:
    """API calls an incremental sweep from `before`'s cursors to `after` cannot do without."""
    need = dict.fromkeys(SPACES, 0)
    need["directory"] = pages(len(after.roster()))
    for s in after.roster():
        start = before.gmail_profile_history_id(s)
        alive = [m for _, m in after.gmail_changes(s, start) if m is not None]
        need["gmail"] += pages(len(after.gmail_history(s, start))) + len(alive)
        token = before.calendar_sync_token(s)
        need["calendar"] += pages(len(after.calendar_changes(s, token)))
        spaces = after.chat(s).spaces
        need["chat"] += pages(len(spaces))
        for space in spaces:
            old = before.chat(s).by_name[space.name].messages
            since = old[-1].create_time if old else 0
            need["chat"] += pages(len(space.since(since)))
        need["drive"] += pages(len(after.drive_changes(s, before.drive_start_page_token(s))))
    return need


def made(routes: dict[str, int]) -> tuple[dict[str, int], int, int]:
    """API calls per API, HTTP exchanges, token exchanges, from the emulator's counts."""
    calls = {
        api: sum(
            n for name, n in routes.items() if name.startswith(prefix) and name != "gmail.batch"
        )
        for api, prefix in SPACES.items()
    }
    batched = routes.get("gmail.users.messages.get", 0) if routes.get("gmail.batch") else 0
    tokens = routes.get("oauth2.token", 0)
    http = sum(calls.values()) - batched + routes.get("gmail.batch", 0) + tokens
    return calls, http, tokens


def sweep(source_url: str, db: Path, services: tuple[str, ...], mode: str) -> float:
    """Wall seconds of one `sweep run --exhaust --workers 4` through the Python API."""
    source = GoogleSource(source_url, gmail_fetch=mode)
    try:
        started = time.perf_counter()
        outcome = SweepRunner(
            db, source, RunOptions(source.url, services, max_pages=None, workers=WORKERS)
        ).run()
        seconds = time.perf_counter() - started
    finally:
        source.close()
    assert outcome.complete, f"the benchmark sweep did not complete: {outcome.figures}"
    return seconds


def clients(emulator: EmulatorProcess, calls: int, subject: str) -> list[tuple[str, float]]:
    """Sequential keep-alive calls per second with each client (latency 0: client cost)."""
    source = GoogleSource(emulator.source)
    scopes = ("https://www.googleapis.com/auth/gmail.readonly",)
    token = source.client.tokens.token(subject, scopes)
    url = source.config.base("gmail") + f"/gmail/v1/users/{subject}/profile"
    headers = {"Authorization": f"Bearer {token}"}
    results = []
    try:
        source.client.http.client.get(url, headers=headers)
        started = time.perf_counter()
        for _ in range(calls):
            source.client.http.client.get(url, headers=headers).json()
        results.append(("httpx.Client", calls / (time.perf_counter() - started)))
        started = time.perf_counter()
        for _ in range(calls):
            source.client.http.request("GET", url, headers=headers).json()
        results.append(("the same, stoppable (ours)", calls / (time.perf_counter() - started)))
        try:
            import requests
        except ImportError:
            return results
        with requests.Session() as session:
            session.get(url, headers=headers)
            started = time.perf_counter()
            for _ in range(calls):
                session.get(url, headers=headers).json()
            results.append(("requests.Session", calls / (time.perf_counter() - started)))
    finally:
        source.close()
    return results


def main(quick: bool) -> None:
    subjects = 6 if quick else 20
    base = f"sim://?subjects={subjects}&seed=1"
    gen1, gen2 = Workspace(subjects, 1, 1), Workspace(subjects, 1, 2)
    with EmulatorProcess(base + "&latency_ms=20", data_dir() / "google") as emulator:
        table = Table(
            f"google: Gmail messages.get, batch vs concurrency ({subjects} subjects, "
            f"latency 20 ms, {WORKERS} workers)",
            ["mode", "seconds", "gets", "HTTP exchanges", "gets/s", ""],
        )
        timing = {}
        for mode in MODES:
            emulator.reset_stats()
            seconds = sweep(emulator.source, scratch(f"google-gmail-{mode}.db"), ("gmail",), mode)
            routes = emulator.stats()["routes"]
            _, http, _ = made(routes)
            gets = routes.get("gmail.users.messages.get", 0)
            timing[mode] = seconds
            table.add(
                mode,
                f"{seconds:.2f}",
                count(gets),
                count(http),
                f"{gets / seconds:.0f}",
                "default" if mode == DEFAULT_MODE else "",
            )
        faster = min(timing, key=lambda m: timing[m])
        table.note(
            f"faster: {faster}; the source's default is {DEFAULT_MODE}"
            + ("" if faster == DEFAULT_MODE else " (MISMATCH: change DEFAULT_MODE)")
        )
        table.print()

        table = Table(
            f"google: full and incremental sweeps ({subjects} subjects x 4 services, "
            f"latency 20 ms, {WORKERS} workers)",
            [
                "sweep",
                "seconds",
                "API calls",
                "minimum",
                "ratio",
                "target",
                "HTTP",
                "tokens",
                "calls/s",
                "HTTP/s",
            ],
        )
        db = scratch("google-sweep.db")
        for name, serve, need in (
            ("full", None, minimum_full(gen1)),
            ("incremental", base + "&generation=2&latency_ms=20", minimum_incremental(gen1, gen2)),
        ):
            if serve:
                emulator.serve(serve)
            emulator.reset_stats()
            seconds = sweep(emulator.source, db, SERVICES, DEFAULT_MODE)
            calls, http, tokens = made(emulator.stats()["routes"])
            ratio = sum(calls.values()) / sum(need.values())
            target = "1.00" if name == "incremental" else "-"
            table.add(
                name,
                f"{seconds:.2f}",
                count(sum(calls.values())),
                count(sum(need.values())),
                f"{ratio:.2f}",
                target,
                count(http),
                count(tokens),
                f"{sum(calls.values()) / seconds:.0f}",
                f"{http / seconds:.0f}",
            )
            table.note(
                f"{name} per API, made/minimum: "
                + ", ".join(f"{api} {calls[api]}/{need[api]}" for api in SPACES)
            )
        table.note(
            "tokens: one exchange per subject and service (least-privilege scopes) plus "
            "the admin's; a new process exchanges again"
        )
        table.print()

        emulator.serve(base)
        table = Table(
            "google: HTTP client cost, sequential keep-alive calls, latency 0",
            ["client", "calls/s", "ms per call"],
        )
        for name, rate in clients(emulator, 200 if quick else 1000, gen1.roster()[0]):
            table.add(name, f"{rate:.0f}", f"{1000 / rate:.2f}")
        table.note(
            "stoppable: the source's requests, each on a thread of its own so a stop need "
            "not wait for its answer (collectors/google/inflight.py)"
        )
        table.print()


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
