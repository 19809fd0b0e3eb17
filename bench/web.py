"""`GET /api/status` of `sweep serve` on a ledger of 10^6 events while a run appends to it.

Three processes, as in production: `sweep serve` (uvicorn) on a copy of the generated ledger, a
real `sweep run` appending to the same file (a new sweep of the demo workspace, `--no-resume`,
fsync per transaction), and this process polling `/api/status` at 20 requests per second over
loopback, one new connection per request, as a dashboard would. Figures:

- status latency (median, p99): idle, and while the run appends;
- the run's throughput (items/s and events/s between its RUN_START and RUN_END) on two identical
  copies of the ledger: without status requests and with 20 per second.

The ledger is `bench/ledgers.py`'s (built once, cached); each phase works on a fresh copy.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from harness import Table, count, human, median, progress, scratch
from ledgers import ensure_ledger, label

from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.live import parse_ts
from sweepledger.projections.runs import read_runs

RATE = 20.0
"""Status requests per second while the run appends (the issue's figure)."""
IDLE_REQUESTS = 100
TARGET_P99_MS = 100.0


def p99(values: list[float]) -> float:
    """The 99th percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(0.99 * len(ordered)) - 1))]


def copy_ledger(source: Path, name: str) -> Path:
    """A consistent copy through SQLite's backup API (safe whatever the WAL holds)."""
    target = scratch(name)
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=65536)
    finally:
        dst.close()
        src.close()
    return target


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str

    @classmethod
    def start(cls, db: Path) -> Server:
        sweep = shutil.which("sweep") or "sweep"
        proc = subprocess.Popen(
            [sweep, "serve", "--db", str(db), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "http://" not in line:
            proc.kill()
            proc.communicate()
            raise RuntimeError(f"sweep serve did not start: {line!r}")
        return cls(proc, "http://" + line.split("http://", 1)[1].split("/", 1)[0])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=10)


@dataclass
class Poller:
    """GET /api/status at `rate` per second (paced, never bursting to catch up)."""

    base: str
    rate: float = RATE
    samples: list[tuple[float, float]] = field(default_factory=list)
    """(wall-clock time the request started, latency in ms) of each answered request."""
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def once(self, opener: urllib.request.OpenerDirector) -> None:
        wall, started = time.time(), time.perf_counter()
        try:
            with opener.open(self.base + "/api/status", timeout=30) as response:
                response.read()
                ok = response.status == 200
        except OSError:
            ok = False
        if ok:
            self.samples.append((wall, (time.perf_counter() - started) * 1000))
        else:
            self.errors += 1

    def run(self, limit: int | None = None) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        step = 1.0 / self.rate
        due = time.perf_counter()
        while not self.stop.is_set() and (limit is None or len(self.samples) < limit):
            self.once(opener)
            due = max(due + step, time.perf_counter())
            self.stop.wait(max(0.0, due - time.perf_counter()))

    def within(self, start: float, end: float) -> list[float]:
        """Latencies of the requests started between two wall-clock times."""
        return [ms for wall, ms in self.samples if start <= wall <= end]


@dataclass
class RunFigures:
    seconds: float
    items: int
    events: int
    started: float
    ended: float
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def append_run(db: Path, subjects: int) -> RunFigures:
    """A real `sweep run` of a new sweep on `db`; its throughput from its own ledger rows."""
    with SqliteStore.open(db, readonly=True) as store:
        before = store.head()
    sweep = shutil.which("sweep") or "sweep"
    done = subprocess.run(
        [
            sweep,
            "run",
            "--db",
            str(db),
            "--source",
            f"sim://?subjects={subjects}",
            "--no-resume",
            "--exhaust",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the appending run failed ({done.returncode}): {done.stderr[-500:]}")
    run = read_runs(db, limit=1)[0]
    with SqliteStore.open(db, readonly=True) as store:
        appended = store.head() - before
    return RunFigures(
        float(run["duration_s"]),
        int(run["counters"]["items_fetched"]),
        appended,
        parse_ts(run["started"]).timestamp(),
        parse_ts(run["finished"]).timestamp(),
    )


def one_run(source: Path, name: str, subjects: int, *, polled: bool) -> RunFigures:
    """A fresh copy, `sweep serve` on it, the run; with `polled`, 20 status requests/s meanwhile."""
    db = copy_ledger(source, name)
    server = Server.start(db)
    poller = Poller(server.base)
    thread = threading.Thread(target=poller.run, name="status-poller")
    try:
        if polled:
            thread.start()
        figures = append_run(db, subjects)
    finally:
        poller.stop.set()
        if polled:
            thread.join()
        server.stop()
        scratch(name)
    figures.latencies_ms = poller.within(figures.started, figures.ended)
    if poller.errors:
        raise RuntimeError(f"{poller.errors} status requests failed during the run")
    return figures


def main(quick: bool) -> None:
    """Status latency idle and under appends; run throughput with and without status load."""
    size = 100_000 if quick else 1_000_000
    subjects = 100 if quick else 400
    repeats = 2
    info = ensure_ledger(size)
    progress(f"copying the {label(size)} ledger ({count(info.events)} events)")
    idle_db = copy_ledger(info.path, f"web-{label(size)}-idle.db")
    server = Server.start(idle_db)
    try:
        idle = Poller(server.base)
        idle.run(limit=IDLE_REQUESTS)
    finally:
        server.stop()
        scratch(idle_db.name)
    quiet: list[RunFigures] = []
    loaded: list[RunFigures] = []
    for number in range(repeats):
        for polled, bucket in ((False, quiet), (True, loaded)):
            what = f"{RATE:.0f} status requests/s" if polled else "no status requests"
            progress(f"run {number + 1}/{repeats} of sim://?subjects={subjects}, {what}")
            bucket.append(one_run(info.path, f"web-{label(size)}-run.db", subjects, polled=polled))

    table = Table(
        f"web: GET /api/status of `sweep serve` on a {label(size)} ledger "
        f"({count(info.events)} events), loopback, a new connection per request",
        [
            "phase",
            "requests",
            "median ms",
            "p99 ms",
            "target p99",
            "run s",
            "items",
            "items/s",
            "events/s",
            "vs no requests",
        ],
    )
    idle_ms = [ms for _, ms in idle.samples]
    table.add(
        "status only, nothing appends",
        len(idle_ms),
        f"{median(idle_ms):.2f}",
        f"{p99(idle_ms):.2f}",
        f"< {TARGET_P99_MS:.0f} ms",
        "-",
        "-",
        "-",
        "-",
        "-",
    )
    base_rate = median([r.items_per_s for r in quiet])
    for name, runs in (
        ("run appends, no requests", quiet),
        (f"run appends + {RATE:.0f} status/s", loaded),
    ):
        lat = [ms for r in runs for ms in r.latencies_ms]
        items_rate = median([r.items_per_s for r in runs])
        table.add(
            name,
            len(lat) if lat else "-",
            f"{median(lat):.2f}" if lat else "-",
            f"{p99(lat):.2f}" if lat else "-",
            f"< {TARGET_P99_MS:.0f} ms" if lat else "-",
            f"{median([r.seconds for r in runs]):.2f}",
            count(runs[0].items),
            human(items_rate),
            human(median([r.events_per_s for r in runs])),
            f"{items_rate / base_rate:.2f}x" if base_rate else "-",
        )
    during = sum(len(r.latencies_ms) for r in loaded) / sum(r.seconds for r in loaded)
    table.note(
        f"median of {repeats} runs per row, each on a fresh copy of the ledger with "
        f"`sweep serve` running; requests achieved during the runs: {during:.1f}/s"
    )
    table.note("the run: `sweep run --no-resume --exhaust` of a new demo sweep in its own")
    table.note("process, fsync per commit; latency counts requests started during the runs")
    table.print()


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
