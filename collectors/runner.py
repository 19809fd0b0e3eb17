"""The sweep runner: open or continue the sweep, take the resume plan, run the pairs, close.

One process appends (it holds the writer lock); pairs are fetched by `workers` threads and their
events serialised by the `Writer`. Whatever happens (kill, signal, budget, errors), rerunning the
same command continues from the ledger.
"""

from __future__ import annotations

import calendar
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sweepledger.ledger.errors import AlreadyRunning, LedgerError
from sweepledger.ledger.events import Event, EventKind, NewEvent
from sweepledger.ledger.ids import new_id
from sweepledger.ledger.lock import WriterLock
from sweepledger.ledger.store import SqliteStore, Transaction
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.completeness import completeness
from sweepledger.projections.fold import State
from sweepledger.projections.live import items_rate, run_duration
from sweepledger.projections.model import COMPLETE, SweepInfo, subject_key, subject_order
from sweepledger.projections.plan import resume_plan

from .attempt import AttemptLimits, AttemptResult, PairAttempt
from .errors import CollectorError, Stopped
from .protocol import Interruptible, Source
from .retry import RetryPolicy, RetryTally, call_with_retries
from .sink import ensure_item_tables
from .writer import Writer

EXIT_COMPLETE = 0
EXIT_INCOMPLETE = 3
EXIT_PAUSED = 75


def exit_for_stop(reason: str | None) -> int:
    """The exit of a run a stop request ended (DESIGN 12): 143 after SIGTERM, else 130."""
    return 143 if reason == "SIGTERM" else 130


def _last_event_age(db_path: Path) -> str:
    """`, last event 3.2s ago`, read without disturbing the live run."""
    try:
        with SqliteStore.open(db_path, readonly=True) as store:
            row = store.conn.execute("SELECT ts FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    except LedgerError:
        return ""
    if row is None:
        return ""
    then = datetime.fromisoformat(str(row[0]).replace("Z", "+00:00"))
    return f", last event {(datetime.now(UTC) - then).total_seconds():.1f}s ago"


def acquire_writer_lock(db_path: Path, owner: str) -> WriterLock:
    """The ledger's writer lock, or `AlreadyRunning` naming the holder and its last event."""
    lock = WriterLock(db_path)
    try:
        lock.acquire(owner)
    except AlreadyRunning as busy:
        raise AlreadyRunning(str(db_path), f"{busy.holder}{_last_event_age(db_path)}") from None
    return lock


class SourceUnavailable(LedgerError):
    """The source could not list its roster, even after retries: an outage, not bad input, and
    nothing was recorded. Exit 3, as a sweep left incomplete: rerunning the same command once
    the source answers carries on."""

    exit_code = 3


class StoppedBeforeStart(LedgerError):
    """A signal arrived, or the time budget ran out, while the roster was being listed (a
    source's retry wait, a hung request): nothing was recorded, and the exit is the one a run
    it stops later ends with (the signal's, or 75 for the budget)."""

    def __init__(self, reason: str | None, *, budget: bool = False) -> None:
        if budget:
            message = (
                "the time budget (--max-seconds) ran out while listing the subjects; nothing "
                "recorded: rerun the same command to continue"
            )
        else:
            message = (
                f"stopped by {reason or 'request'} while listing the subjects; nothing recorded"
            )
        super().__init__(message)
        self.exit_code = EXIT_PAUSED if budget else exit_for_stop(reason)


class ScopeMismatch(LedgerError):
    """The open sweep was opened with another source or services."""

    exit_code = 2


class UnknownSubjects(LedgerError):
    """`--subjects` named subjects outside the roster the run would sweep."""

    exit_code = 2

    def __init__(self, unknown: Sequence[str], roster: str) -> None:
        verb = "is" if len(unknown) == 1 else "are"
        super().__init__(f"--subjects: {', '.join(unknown)} {verb} not in {roster}")
        self.unknown = tuple(unknown)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything that shapes a run; recorded in RUN_START (and SWEEP_OPEN for the scope)."""

    source_url: str
    services: tuple[str, ...]
    subjects: tuple[str, ...] | None = None
    resume: bool = True
    only_remaining: bool = False
    max_pages: int | None = 10
    max_seconds: float | None = None
    workers: int = 1
    passes: int = 1
    retry_wait: float = 0.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    max_attempts: int = 3
    since: str | None = None
    months_back: int | None = None
    argv: tuple[str, ...] = ()
    trigger: str = "cli"
    seed: int | None = None

    def recorded(self) -> dict[str, Any]:
        """The options as RUN_START records them."""
        return {
            "source": self.source_url,
            "services": list(self.services),
            "subjects": None if self.subjects is None else list(self.subjects),
            "resume": self.resume,
            "only_remaining": self.only_remaining,
            "max_pages": self.max_pages,
            "max_seconds": self.max_seconds,
            "workers": self.workers,
            "passes": self.passes,
            "max_retries": self.policy.max_retries,
            "max_attempts": self.max_attempts,
            "since": self.since,
            "months_back": self.months_back,
        }


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended, for the summary line and the exit code."""

    run_id: str
    sweep_id: str
    status: str
    exit_code: int
    complete: bool
    pairs_planned: int
    pairs_done: int
    items: int
    duration: float
    figures: dict[str, Any]
    results: list[AttemptResult]
    stop_reason: str | None = None

    @property
    def items_per_s(self) -> float | None:
        """The rate every view of the run shows (`live.items_rate` of the ledger's figures)."""
        return items_rate(self.items, self.duration)


class SweepRunner:
    """Runs one `sweep run` against one ledger."""

    def __init__(
        self,
        db_path: str | Path,
        source: Source,
        options: RunOptions,
        *,
        streams: Sequence[IO[str]] = (),
        stop: threading.Event | None = None,
        on_commit: Callable[[Sequence[Event]], None] | None = None,
        lock: WriterLock | None = None,
    ) -> None:
        """`lock`: a writer lock the caller already holds (the daemon keeps one across cycles);
        without it the run takes and releases its own."""
        self.db_path = Path(db_path)
        self.held_lock = lock
        self.source = source
        self.options = options
        self.streams = streams
        self.stop = stop or threading.Event()
        """Set when a stop is asked (a signal): the run ends `interrupted`."""
        self.halt = threading.Event()
        """Set by a stop request or when the time budget is spent: every wait of the run
        (retries, pacing, the pause between passes) watches this one, so neither a signal nor
        `--max-seconds` waits out a backoff of a minute."""
        if isinstance(source, Interruptible):
            source.stop_on(self.halt)
        self.stop_reason: str | None = None
        self.on_commit = on_commit
        self.run_id = new_id("run")
        self._roster: list[str] | None = None
        self.planned = 0
        """Pairs in this run's first plan (known once the run has planned; progress shows it)."""
        self._clock: tuple[float, float | None] | None = None
        """When the run's time began and its deadline (None: no budget), from the first of
        `check_flags` and `run`: listing the subjects of a source that hangs is run time too."""
        self._budget: threading.Timer | None = None
        self.budget_spent = False
        """Set when the time budget ran out (the halt that followed was the budget's)."""

    def request_stop(self, reason: str) -> None:
        """Ask the run to stop at the next page boundary (signals call this)."""
        self.stop_reason = reason
        self.stop.set()
        self.halt.set()

    def run(self) -> RunOutcome:
        if self.stop.is_set():  # a caller's stop, set before the run began
            self.halt.set()
        started, deadline = self._start_clock()
        try:
            if not (self.db_path.exists() and self.db_path.stat().st_size > 0):
                # a new ledger: list the subjects before the file exists, so a source that
                # cannot answer leaves nothing behind
                self._new_roster()
            lock = self.held_lock or acquire_writer_lock(self.db_path, self.run_id)
            if self.held_lock is not None:
                lock.announce(self.run_id)
            try:
                store, projector = open_for_writing(self.db_path, create=True)
                try:
                    writer = Writer(
                        store, projector, streams=self.streams, on_commit=self.on_commit
                    )
                    try:
                        return self._run(writer, started, deadline)
                    except Exception as error:
                        self._record_failure(writer, error)
                        raise
                finally:
                    store.close()
            finally:
                if self.held_lock is None:
                    lock.release()
        finally:
            self._stop_clock()

    def _start_clock(self) -> tuple[float, float | None]:
        """The run's start and deadline, set by the first call, and a timer armed to halt the
        run at the deadline (again after `_stop_clock`: the daemon checks a cycle's flags, then
        runs it)."""
        if self._clock is None:
            started = time.monotonic()
            budget = self.options.max_seconds
            self._clock = (started, None if budget is None else started + budget)
        deadline = self._clock[1]
        if deadline is not None and self._budget is None:
            wait = max(0.0, deadline - time.monotonic())
            self._budget = threading.Timer(wait, self._spend, [deadline])
            self._budget.daemon = True
            self._budget.start()
        return self._clock

    def _spend(self, deadline: float) -> None:
        time.sleep(max(0.0, deadline - time.monotonic()))  # never a moment early
        self.budget_spent = True
        self.halt.set()

    def _stop_clock(self) -> None:
        """Disarm the budget's timer: the run is over, or its flags were refused."""
        if self._budget is not None:
            self._budget.cancel()
            self._budget = None

    def _run(self, writer: Writer, started: float, deadline: float | None) -> RunOutcome:
        opts = self.options
        state = writer.projector.state
        self.check_flags(state.sweep)
        roster = None if self._sweep_to_continue(state.sweep) else self._new_roster()

        def begin(tx: Transaction) -> str:
            state = writer.projector.state
            ensure_item_tables(tx.conn)
            for run in list(state.runs.values()):
                if run.status == "running":
                    tx.append(
                        NewEvent(
                            EventKind.RUN_END,
                            run.sweep_id,
                            run.run_id,
                            data={"status": "aborted", "reason": "stale"},
                        )
                    )
            sweep = state.sweep
            sweep_id = new_id("sweep") if roster is not None or sweep is None else sweep.sweep_id
            tx.append(
                NewEvent(
                    EventKind.RUN_START,
                    sweep_id,
                    self.run_id,
                    data={
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "argv": list(opts.argv),
                        "options": opts.recorded(),
                        "trigger": opts.trigger,
                    },
                )
            )
            if sweep is not None and sweep.closed is None and not opts.resume:
                tx.append(
                    NewEvent(
                        EventKind.SWEEP_CLOSE,
                        sweep.sweep_id,
                        self.run_id,
                        data={"status": "abandoned", "reason": "--no-resume"},
                    )
                )
            if roster is not None:
                tx.append(
                    NewEvent(
                        EventKind.SWEEP_OPEN,
                        sweep_id,
                        self.run_id,
                        data={
                            "roster": roster,
                            "services": list(opts.services),
                            "source": self.source.url,
                            "options": self._sweep_options(),
                        },
                    )
                )
            return sweep_id

        sweep_id, _ = writer.commit(begin)
        sweep = writer.projector.state.sweep
        assert sweep is not None
        limits = AttemptLimits(
            max_pages=opts.max_pages,
            deadline=deadline,
            since=self._since(sweep.options.get("window") or {}, sweep.opened_ts),
            policy=opts.policy,
            max_attempts=opts.max_attempts,
        )
        results: list[AttemptResult] = []
        planned = 0
        for number in range(max(1, opts.passes)):
            if number and (self.halt.is_set() or self.halt.wait(opts.retry_wait)):
                break
            plan = writer.read(
                lambda s: resume_plan(
                    s,
                    subjects=opts.subjects,
                    services=opts.services,
                    only_remaining=opts.only_remaining,
                    live_run_ids={self.run_id},
                )
            )
            if number and not plan:
                break
            planned = planned or len(plan)
            self.planned = planned
            results += self._run_plan(writer, sweep_id, plan, limits)
            if self._should_stop(limits):
                break
        return self._end(writer, sweep_id, started, limits, planned, results)

    def _ledger_figures(self, state: State) -> tuple[int | None, float | None]:
        """This run's items and seconds as the ledger has them (its folded `fetched` counter,
        RUN_START to RUN_END), so the closing summary says what `sweep runs` and `sweep
        status` say of it; (None, None) if the run is not in the state."""
        run = state.runs.get(self.run_id)
        if run is None or run.ended_ts is None:
            return None, None
        return run.counters.get("fetched", 0), run_duration(run, live=False, now=datetime.now(UTC))

    def _record_failure(self, writer: Writer, error: Exception) -> None:
        """A run that started (RUN_START is in the ledger) and then raised ends `failed` with the
        error's class and message, so the history says what happened instead of leaving the run
        open until the next run closes it as stale. Nothing is written for a run refused before
        RUN_START (bad input never changes the ledger)."""
        state = writer.projector.state
        run = state.runs.get(self.run_id)
        if run is None or run.status != "running":
            return
        err = getattr(error, "error_class", None) or type(error).__name__
        detail = str(error)[:500]
        try:
            writer.commit(
                lambda tx: tx.append(
                    NewEvent(
                        EventKind.RUN_END,
                        run.sweep_id,
                        self.run_id,
                        data={
                            "status": "failed",
                            "reason": f"{err}: {detail}",
                            "err": err,
                            "detail": detail,
                        },
                    )
                )
            )
        except Exception:  # the original error is the one to report
            return

    def check_flags(self, sweep: SweepInfo | None) -> None:
        """Refuse a run that the ledger's latest `sweep` rules out, before anything is appended:
        another scope or window than the open sweep's, or `--subjects` outside the roster the
        run would sweep. For a new sweep that roster is the source's, listed here once and kept
        for the run. The run checks itself; the daemon calls this before its first HEARTBEAT so
        that a refused daemon writes nothing either."""
        self._start_clock()
        try:
            self._check_scope(sweep)
            if not self._sweep_to_continue(sweep):
                self._new_roster()
        except BaseException:
            self._stop_clock()
            raise

    def _sweep_to_continue(self, sweep: SweepInfo | None) -> bool:
        return sweep is not None and sweep.closed is None and self.options.resume

    def _check_scope(self, sweep: SweepInfo | None) -> None:
        if sweep is None or not self._sweep_to_continue(sweep):
            return
        window = sweep.options.get("window") or {}
        asked = self._window()
        if asked and asked != window:
            raise ScopeMismatch(
                f"the open sweep {sweep.sweep_id} was opened with {window_flags(window)}; this "
                f"run asks for {window_flags(asked)}. Rerun with the same window to continue "
                "it, or with --no-resume to abandon it and open a new sweep"
            )
        if sweep.source != self.source.url or list(sweep.services) != list(self.options.services):
            raise ScopeMismatch(
                f"the open sweep {sweep.sweep_id} covers source {sweep.source} and services "
                f"{','.join(sweep.services)}; this run asks for {self.source.url} and "
                f"{','.join(self.options.services)}. Rerun with that scope to continue it, or "
                "with --no-resume to abandon it and open a new sweep"
            )
        if self.options.subjects is not None:
            # a subject outside the frozen roster would plan no pair: the run would end
            # "0/0 planned pairs" and every rerun the same, so a typo must be refused here
            _refuse_unknown(
                self.options.subjects,
                sweep.roster,
                f"the roster of the open sweep {sweep.sweep_id} ({sweep.roster_size} subjects); "
                "a subject the source listed since it opened joins a new sweep (--no-resume)",
            )

    def _new_roster(self) -> list[str]:
        """The roster a new sweep freezes: the source's subjects (narrowed by --subjects).

        Listing is retried like any request; a source that still cannot list its subjects stops
        the run before anything is appended.
        """
        if self._roster is not None:
            return self._roster
        try:
            listed = call_with_retries(
                self.source.roster,
                self.options.policy,
                RetryTally(),
                stop=self.halt,
                rng=random.Random(0),
            )
        except Stopped:
            budget = self.budget_spent and self.stop_reason is None
            raise StoppedBeforeStart(self.stop_reason, budget=budget) from None
        except CollectorError as error:
            raise SourceUnavailable(
                f"the source could not list its subjects ({error.error_class}: {error}); "
                "nothing recorded: rerun the same command once it answers"
            ) from None
        roster = sorted(set(listed), key=subject_order)
        if self.options.subjects is None:
            self._roster = roster
            return roster
        known = {subject_key(s): s for s in roster}
        _refuse_unknown(self.options.subjects, roster, f"the roster of {self.source.url}")
        self._roster = sorted(
            {known[subject_key(s)] for s in self.options.subjects}, key=subject_order
        )
        return self._roster

    def _window(self) -> dict[str, Any]:
        """The full-sync window the flags ask for ({} for unbounded)."""
        if self.options.since is not None:
            return {"since": self.options.since}
        if self.options.months_back is not None:
            return {"months_back": self.options.months_back}
        return {}

    def _since(self, window: dict[str, Any], opened_ts: str) -> str | None:
        """The window's lower bound; `months_back` counts from when the sweep opened, so every
        run of one sweep uses the same bound."""
        if "since" in window:
            since = datetime.fromisoformat(str(window["since"]).replace("Z", "+00:00"))
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            return since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if "months_back" in window:
            opened = calendar.timegm(time.strptime(opened_ts[:19], "%Y-%m-%dT%H:%M:%S"))
            seconds = int(window["months_back"]) * 30.44 * 86400
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(opened - seconds))
        return None

    def _sweep_options(self) -> dict[str, Any]:
        return {"window": self._window()}

    def _run_plan(
        self, writer: Writer, sweep_id: str, plan: list[tuple[str, str]], limits: AttemptLimits
    ) -> list[AttemptResult]:
        seed = self.options.seed if self.options.seed is not None else random.randrange(2**32)

        def attempt(service: str, subject: str) -> AttemptResult:
            rng = random.Random(f"{seed}:{service}:{subject}")
            return PairAttempt(
                writer=writer,
                source=self.source,
                sweep_id=sweep_id,
                run_id=self.run_id,
                service=service,
                subject=subject,
                limits=limits,
                stop=self.halt,
                rng=rng,
            ).run()

        results: list[AttemptResult] = []
        if self.options.workers <= 1:
            for service, subject in plan:
                if self._should_stop(limits):
                    break
                results.append(attempt(service, subject))
            return results
        writer.start()
        try:
            return self._run_pool(attempt, iter(plan), limits)
        finally:
            writer.stop()

    def _run_pool(
        self,
        attempt: Callable[[str, str], AttemptResult],
        todo: Iterator[tuple[str, str]],
        limits: AttemptLimits,
    ) -> list[AttemptResult]:
        """Keep `workers` attempts in flight until the plan is done or a stop is asked."""
        pending: set[Future[AttemptResult]] = set()
        results: list[AttemptResult] = []
        with ThreadPoolExecutor(
            max_workers=self.options.workers, thread_name_prefix="fetch"
        ) as pool:
            while True:
                while len(pending) < self.options.workers and not self._should_stop(limits):
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    pending.add(pool.submit(attempt, *nxt))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                results += [f.result() for f in done]
        return results

    def _should_stop(self, limits: AttemptLimits) -> bool:
        return self.halt.is_set() or limits.spent()

    def _end(
        self,
        writer: Writer,
        sweep_id: str,
        started: float,
        limits: AttemptLimits,
        planned: int,
        results: list[AttemptResult],
    ) -> RunOutcome:
        state = writer.projector.state
        sweep = state.sweep
        assert sweep is not None
        figures = completeness(state.counters, sweep.services, run_live=True)
        complete = figures.complete
        if self.stop.is_set():
            status, code = "interrupted", exit_for_stop(self.stop_reason)
        elif limits.spent() and not complete:
            status, code = "paused", EXIT_PAUSED
        else:
            status, code = "completed", EXIT_COMPLETE if complete else EXIT_INCOMPLETE
        events = []
        if complete and sweep.closed is None:
            events.append(
                NewEvent(EventKind.SWEEP_CLOSE, sweep_id, self.run_id, data={"status": "complete"})
            )
        events.append(
            NewEvent(
                EventKind.RUN_END,
                sweep_id,
                self.run_id,
                data={
                    "status": status,
                    "reason": self.stop_reason or ("budget" if status == "paused" else None),
                },
            )
        )
        writer.commit(lambda tx: [tx.append(e) for e in events])
        items, duration = writer.read(self._ledger_figures)
        return RunOutcome(
            run_id=self.run_id,
            sweep_id=sweep_id,
            status=status,
            exit_code=code if not (complete and status != "interrupted") else EXIT_COMPLETE,
            complete=complete,
            pairs_planned=planned,
            pairs_done=sum(1 for r in results if r.state == COMPLETE),
            items=sum(r.items for r in results) if items is None else items,
            duration=time.monotonic() - started if duration is None else duration,
            figures=figures.as_dict(),
            results=results,
            stop_reason=self.stop_reason,
        )


def window_flags(window: dict[str, Any]) -> str:
    """A full-sync window as the flags that ask for it (`--months-back 2`), as an operator
    types them: the recorded form is a dict, which reads as Python, not as a command line."""
    if not window:
        return "no window (neither --since nor --months-back)"
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in window.items())


def _refuse_unknown(subjects: Sequence[str], roster: Sequence[str], where: str) -> None:
    """Raise `UnknownSubjects` for the `subjects` not in `roster` (compared by `subject_key`,
    as the plan compares them), naming them and `where` the roster comes from."""
    known = {subject_key(s) for s in roster}
    unknown = [s for s in subjects if subject_key(s) not in known]
    if unknown:
        raise UnknownSubjects(unknown, where)
