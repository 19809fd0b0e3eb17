"""The collector run loop (`sweep daemon`): one ordinary run per cycle, under one held lock.

Operators keep sweeps running: the first cycle does the full sync, every later one an incremental
poll from the cursors (a COMPLETE sweep is closed, so the next run opens a new one that continues
from them). Each cycle is a plain `SweepRunner` run with the trigger `daemon cycle N`: the same
ledger, events, plan and exit semantics as `sweep run`; the loop adds no state of its own.

The daemon takes the ledger's writer lock once and keeps it across cycles and sleeps, so a second
daemon or a `sweep run` is refused (exit 4) for as long as it lives, not only while a cycle runs.
Between cycles it appends HEARTBEAT events (`state` idle, `next_cycle_at`), which the fold keeps
as `State.heartbeat`: `status` tells "idle, next cycle at T" (the lock is held by the daemon) from
"dead" (nobody holds it). A signal during a cycle stops the run as a run stops (interrupted
attempt recorded, exit 143/130); during the sleep the daemon exits 0 at once.
"""

from __future__ import annotations

import os
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from sweepledger.collectors.errors import SourceConfigError
from sweepledger.collectors.protocol import Source
from sweepledger.collectors.runner import (
    EXIT_PAUSED,
    RunOptions,
    SourceUnavailable,
    StoppedBeforeStart,
    SweepRunner,
    acquire_writer_lock,
)
from sweepledger.collectors.sources import open_source
from sweepledger.ledger.errors import LedgerError
from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.ids import new_id
from sweepledger.ledger.lock import WriterLock
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.live import iso
from sweepledger.projections.model import SweepInfo
from sweepledger.projections.runs import last_daemon_cycle
from sweepledger.projections.tables import load_sweep

EXIT_STOPPED = 0
MAX_BACKOFF_DOUBLINGS = 3
"""A failing cycle doubles the next sleep, up to 2**3 = 8 intervals."""


def source_for_cycle(url: str, cycle: int) -> Source:
    """The cycle's source. A `sim://?...generation=auto` workspace is opened at generation
    `cycle` (so the demo moves on by one week per cycle) while its URL, and so the sweep's scope,
    stays `generation=auto`; any other URL opens as it is."""
    if urlsplit(url).scheme.lower() == "sim":
        from sweepledger.collectors.sim.config import SimConfig
        from sweepledger.collectors.sim.source import SimSource

        if SimConfig.from_url(url).auto_generation:
            return SimSource(url, generation=cycle)
    return open_source(url)


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """How the loop paces its cycles."""

    interval: float = 300.0
    """Seconds of sleep between the end of a cycle and the start of the next."""
    jitter: float = 0.0
    """Up to this many seconds added at random to each sleep (spreads many daemons apart)."""
    max_cycles: int | None = None
    """Stop after this many cycles (tests, cron-like use); None runs until a signal."""
    heartbeat_every: float = 60.0
    """A HEARTBEAT at least this often while sleeping: below the 90 s staleness threshold a
    future shared backend will judge liveness by."""


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one cycle did: its run and how it ended, or the error that kept it from running."""

    cycle: int
    run_id: str | None
    status: str
    exit_code: int
    errors: int = 0
    error: str | None = None

    @property
    def failing(self) -> bool:
        """A cycle that raised or left pairs in ERR: the next sleep backs off."""
        return self.error is not None or self.errors > 0


@dataclass(frozen=True, slots=True)
class DaemonOutcome:
    daemon_id: str
    cycles: list[CycleResult]
    exit_code: int
    stop_reason: str | None


class SweepDaemon:
    """Runs cycles until `max_cycles` or a signal; `request_stop` is what signal handlers call."""

    def __init__(
        self,
        db_path: str | Path,
        options: RunOptions,
        daemon: DaemonOptions,
        *,
        streams: Sequence[IO[str]] = (),
        say: Callable[[str], None] = lambda line: None,
        sources: Callable[[str, int], Source] = source_for_cycle,
        rng: random.Random | None = None,
        on_start: Callable[[], None] = lambda: None,
    ) -> None:
        self.db_path = Path(db_path)
        self.on_start = on_start
        """Called once the daemon holds the ledger and its flags passed, before the first
        cycle: a daemon refused (the lock held, another scope) never says it started."""
        self.options = options
        self.daemon = daemon
        self.streams = streams
        self.say = say
        self.sources = sources
        self.rng = rng or random.Random()
        self.daemon_id = new_id("daemon")
        self.stop = threading.Event()
        self.stop_reason: str | None = None
        self._runner: SweepRunner | None = None
        self.cycle: int | None = None
        """The cycle under way or last run (None before the first)."""
        self._guard = threading.RLock()
        """Re-entrant: the signal handler runs on the main thread, maybe inside a guarded block."""

    def request_stop(self, reason: str) -> None:
        """Stop the cycle's run at its next page boundary, or end the sleep now."""
        with self._guard:
            self.stop_reason = reason
            if self._runner is not None:
                self._runner.request_stop(reason)
            self.stop.set()

    def run(self) -> DaemonOutcome:
        lock = acquire_writer_lock(self.db_path, self.daemon_id)
        try:
            cycle, first = self._prepare(lock)
            self.on_start()
            try:
                return self._loop(lock, cycle, first)
            except (LedgerError, SourceConfigError) as error:
                self._heartbeat(
                    state="stopped", cycle=self.cycle, reason=f"{type(error).__name__}: {error}"
                )
                raise
        finally:
            lock.release()

    def _loop(self, lock: WriterLock, cycle: int, first: SweepRunner | None) -> DaemonOutcome:
        self._heartbeat(state="starting", cycle=cycle)
        results: list[CycleResult] = []
        failures = 0
        while True:
            if self.stop.is_set():
                if first is not None:
                    first.source.close()
                return self._stopped(results, EXIT_STOPPED)
            self.cycle = cycle
            result = self._cycle(cycle, lock, first)
            first = None
            results.append(result)
            if result.status == "interrupted":
                return self._stopped(results, result.exit_code)
            if self.daemon.max_cycles is not None and len(results) >= self.daemon.max_cycles:
                self._heartbeat(state="stopped", cycle=cycle, reason="max cycles")
                return DaemonOutcome(self.daemon_id, results, result.exit_code, None)
            failures = failures + 1 if result.failing else 0
            delay = self._delay(failures)
            if self._sleep(delay, cycle, result):
                return self._stopped(results, EXIT_STOPPED)
            cycle += 1

    def _prepare(self, lock: WriterLock) -> tuple[int, SweepRunner | None]:
        """The first cycle's number and its run, whose flags are checked against the ledger
        here, before the first HEARTBEAT: a daemon refused for its input (another scope or
        window than the open sweep's, `--subjects` outside the roster) leaves the ledger as it
        was, as a refused `sweep run` does. The run (with the roster it may have listed) is
        the first cycle's; None when its source cannot be opened now, and the cycle then fails
        and is retried as any cycle is."""
        sweep, cycle = self._ledger_position()
        try:
            source = self.sources(self.options.source_url, cycle)
        except SourceConfigError:
            raise
        except Exception:  # reported by the first cycle, which opens it again
            return cycle, None
        runner = self._new_runner(cycle, source, lock)
        try:
            runner.check_flags(sweep)
        except (SourceUnavailable, StoppedBeforeStart):
            pass  # not the input's fault: the first cycle lists the roster again, or stops
        except BaseException:
            source.close()
            raise
        return cycle, runner

    def _ledger_position(self) -> tuple[SweepInfo | None, int]:
        """The ledger's latest sweep and the first cycle's number. Cycles number on from the
        ledger's last daemon cycle, so a restarted daemon never reuses a number (and
        `generation=auto` never goes back in time). A ledger not created yet stays uncreated."""
        if not (self.db_path.exists() and self.db_path.stat().st_size > 0):
            return None, 1
        store, _ = open_for_writing(self.db_path)
        try:
            sweep, _ = load_sweep(store.conn)
            return sweep, last_daemon_cycle(store.conn) + 1
        finally:
            store.close()

    def _new_runner(self, cycle: int, source: Source, lock: WriterLock) -> SweepRunner:
        options = replace(self.options, trigger=f"daemon cycle {cycle}")
        return SweepRunner(
            self.db_path, source, options, streams=self.streams, stop=self.stop, lock=lock
        )

    def _cycle(self, cycle: int, lock: WriterLock, runner: SweepRunner | None) -> CycleResult:
        """Run one cycle: `runner` is the one `_prepare` checked (the first cycle), else a new
        one over the cycle's source."""
        if runner is None:
            try:
                source = self.sources(self.options.source_url, cycle)
            except SourceConfigError:
                raise
            except Exception as error:  # a source that cannot be opened now may be back later
                return self._failed(cycle, None, error)
            runner = self._new_runner(cycle, source, lock)
        source = runner.source
        with self._guard:
            self._runner = runner
            stopped = self.stop.is_set()
        if stopped:  # a signal came before the run could hear it: start no run at all
            with self._guard:
                self._runner = None
            source.close()
            return CycleResult(cycle, None, "skipped", EXIT_STOPPED)
        started = time.monotonic()
        try:
            outcome = runner.run()
        except SourceUnavailable as error:  # the source is down now; it may be back next cycle
            return self._failed(cycle, None, error, error.exit_code)
        except StoppedBeforeStart as before:  # while the roster was listed: nothing ran
            if before.exit_code == EXIT_PAUSED:  # the cycle's time budget: the next one goes on
                self.say(f"daemon {self.daemon_id}: cycle {cycle} paused: {before}")
                return CycleResult(cycle, None, "paused", EXIT_PAUSED)
            return CycleResult(cycle, None, "skipped", EXIT_STOPPED)
        except (LedgerError, SourceConfigError):
            raise  # bad input or a refused scope: every cycle would fail the same way
        except Exception as error:  # recorded (RUN_END failed), logged, retried
            return self._failed(cycle, runner.run_id, error)
        finally:
            with self._guard:
                self._runner = None
            source.close()
            lock.announce(self.daemon_id)
        if outcome.stop_reason is not None and self.stop_reason is None:
            self.stop_reason = outcome.stop_reason
        self.say(
            f"daemon {self.daemon_id}: cycle {cycle} run {outcome.run_id} {outcome.status} in "
            f"{time.monotonic() - started:.2f}s, {outcome.items} items, exit {outcome.exit_code}"
        )
        return CycleResult(
            cycle,
            outcome.run_id,
            outcome.status,
            outcome.exit_code,
            errors=int(outcome.figures.get("errors_count", 0)),
        )

    def _failed(
        self, cycle: int, run_id: str | None, error: Exception, exit_code: int = 1
    ) -> CycleResult:
        """A cycle that ran no sweep to its end: 3 for a source that could not list its
        subjects (as `sweep run` exits then), 1 for anything else."""
        text = f"{type(error).__name__}: {error}"
        self.say(f"daemon {self.daemon_id}: cycle {cycle} failed: {text}")
        return CycleResult(cycle, run_id, "failed", exit_code, error=text)

    def _delay(self, failures: int) -> float:
        backoff = float(2 ** min(failures, MAX_BACKOFF_DOUBLINGS))
        jitter = self.rng.uniform(0.0, self.daemon.jitter) if self.daemon.jitter > 0 else 0.0
        return self.daemon.interval * backoff + jitter

    def _sleep(self, delay: float, cycle: int, last: CycleResult) -> bool:
        """Sleep `delay` seconds with heartbeats; True if a stop was asked meanwhile."""
        deadline = time.monotonic() + delay
        next_at = iso(datetime.now(UTC) + timedelta(seconds=delay))
        beat = {
            "state": "idle",
            "cycle": cycle,
            "next_cycle_at": next_at,
            "interval": self.daemon.interval,
            "last_run_id": last.run_id,
            "last_exit": last.exit_code,
            "last_error": last.error,
        }
        self._heartbeat(**beat)
        self.say(f"daemon {self.daemon_id}: idle, next cycle {cycle + 1} at {next_at}")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.stop.wait(min(left, self.daemon.heartbeat_every)):
                return True
            if deadline - time.monotonic() > 0:
                self._heartbeat(**beat)

    def _stopped(self, results: list[CycleResult], code: int) -> DaemonOutcome:
        cycle = results[-1].cycle if results else None
        self._heartbeat(state="stopped", cycle=cycle, reason=self.stop_reason)
        return DaemonOutcome(self.daemon_id, results, code, self.stop_reason)

    def _heartbeat(self, **data: Any) -> None:
        """Append one HEARTBEAT; a failure to write it is reported, never fatal to the loop."""
        payload = {
            "daemon": self.daemon_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            **{k: v for k, v in data.items() if v is not None},
        }
        try:
            store, _ = open_for_writing(self.db_path, create=True)
            try:
                store.append([NewEvent(EventKind.HEARTBEAT, data=payload)])
            finally:
                store.close()
        except (sqlite3.Error, LedgerError, OSError) as error:
            self.say(f"daemon {self.daemon_id}: heartbeat not written: {error}")
