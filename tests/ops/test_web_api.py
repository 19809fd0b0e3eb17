"""Acceptance 3: JSON endpoints keep their documented shapes, /metrics parses, nothing writes."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from sweepledger.collectors.runner import RunOptions, SweepRunner
from sweepledger.collectors.sim.source import SimSource
from sweepledger.ledger.errors import CannotOpen, NoLedger, NotALedger, SchemaTooNew
from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.store import SqliteStore
from sweepledger.web import app as web_app
from sweepledger.web.app import create_app
from sweepledger.web.server import bind

if TYPE_CHECKING:
    from conftest import Ops

SOURCE = "sim://?subjects=2&page_size=5"
NUM = (int, float)
OPT_NUM = (int, float, type(None))
OPT_STR = (str, type(None))

RUN_SHAPE: dict[str, Any] = {
    "run_id": str,
    "sweep_id": OPT_STR,
    "status": str,
    "reason": OPT_STR,
    "live": bool,
    "trigger": str,
    "pid": (int, type(None)),
    "host": OPT_STR,
    "started": str,
    "finished": OPT_STR,
    "duration_s": OPT_NUM,
    "last_event": str,
    "last_event_age_s": OPT_NUM,
    "options": {
        "source": OPT_STR,
        "services": list,
        "subjects": (list, type(None)),
        "since": OPT_STR,
        "months_back": (int, type(None)),
        "run_to_completion": bool,
        "max_seconds": OPT_NUM,
        "max_pages": (int, type(None)),
        "workers": (int, type(None)),
    },
    "counters": dict.fromkeys(
        (
            "pairs_attempted",
            "pairs_completed",
            "pairs_partial",
            "pairs_errored",
            "items_fetched",
            "items_inserted",
            "items_updated",
            "items_unchanged",
            "items_deleted",
            "pages",
            "requests",
            "quota_units",
            "retries",
            "rate_limit_waits",
        ),
        int,
    ),
    "items_per_s": OPT_NUM,
    "error": (dict, type(None)),
    "by_service": dict,
}
"""`GET /api/runs` is a list of these (README, "Operating sweeps")."""

RUN_DETAIL_SHAPE: dict[str, Any] = {
    **RUN_SHAPE,
    "progress": dict.fromkeys(
        (
            "scanned",
            "inserted",
            "updated",
            "skipped",
            "deleted",
            "errors",
            "pairs_attempted",
            "pairs_completed",
        ),
        int,
    ),
    "config": {"window": dict, "run_to_completion": bool, "max_seconds_per_run": OPT_NUM},
    "checkpoint": {
        "unfinished_pairs": int,
        "pairs": [
            {
                "service": str,
                "subject": str,
                "state": str,
                "unit": OPT_STR,
                "page": (int, type(None)),
                "has_next": bool,
                "last_page_token": OPT_STR,
            }
        ],
    },
}

STATUS_SHAPE: dict[str, Any] = {
    "verdict": str,
    "headline": str,
    "head_seq": int,
    "sweep": (dict, type(None)),
    "invariants": (dict, type(None)),
    "services": list,
    "problems": list,
    "problems_total": int,
    "problems_more": int,
    "not_started": int,
    "blocked": list,
    "paused": list,
    "runs": list,
    "progress": (dict, type(None)),
    "daemon": (dict, type(None)),
}


def check_shape(value: Any, shape: Any, where: str = "$") -> None:
    """`value` has exactly the keys of a dict shape, each of its type (lists: every element)."""
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        assert set(value) == set(shape), f"{where}: keys {sorted(set(value) ^ set(shape))}"
        for key, sub in shape.items():
            check_shape(value[key], sub, f"{where}.{key}")
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: not a list"
        for i, item in enumerate(value):
            check_shape(item, shape[0], f"{where}[{i}]")
    else:
        assert isinstance(value, shape), f"{where}: {value!r} is not {shape}"


def without_ages(value: Any) -> Any:
    """Drop what depends on the time of the request (ages, elapsed, ETA)."""
    if isinstance(value, dict):
        return {
            k: without_ages(v)
            for k, v in value.items()
            if not k.endswith(("_age_s", "elapsed_s", "eta_s", "eta_at"))
        }
    if isinstance(value, list):
        return [without_ages(v) for v in value]
    return value


def _run(db: Path, url: str = SOURCE, **options: Any) -> str:
    source = SimSource(url)
    outcome = SweepRunner(db, source, RunOptions(source.url, ("gmail", "drive"), **options)).run()
    return outcome.run_id


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A ledger with a page-limited run (pairs left PARTIAL with a next page) and a full one."""
    db = tmp_path_factory.mktemp("web") / "sweep.db"
    partial = _run(db, max_pages=1)
    full = _run(db, max_pages=None)
    return db, partial, full


class Response:
    """What a test reads of one HTTP answer."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.content = body
        self.text = body.decode()

    def json(self) -> Any:
        return orjson.loads(self.content)


class Client:
    """The app served by uvicorn on a loopback port in a thread, asked over real HTTP."""

    def __init__(self, ops: Ops, base: str) -> None:
        self.ops, self.base = ops, base

    def request(self, method: str, path: str, content: bytes | None = None) -> Response:
        return Response(*self.ops.get(self.base + path, method))

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def head(self, path: str) -> Response:
        return self.request("HEAD", path)


@contextlib.contextmanager
def served(db: Path, ops: Ops) -> Iterator[Client]:
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(db), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        ops.wait_for(lambda: server.started, 10, "the server to start")
        yield Client(ops, f"http://127.0.0.1:{sock.getsockname()[1]}")
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def client(ledger: tuple[Path, str, str], module_ops: Ops) -> Iterator[Client]:
    """One server for the module's read-only checks (they never change the ledger)."""
    with served(ledger[0], module_ops) as test_client:
        yield test_client


def test_api_status_is_the_content_of_status_json(
    client: Client, ledger: tuple[Path, str, str], ops: Ops
) -> None:
    """`GET /api/status` returns what `sweep status --json` prints, in the documented shape."""
    response = client.get("/api/status")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    check_shape(body, STATUS_SHAPE)
    cli = ops.run("status", "--db", str(ledger[0]), "--json", cwd=ledger[0].parent)
    assert without_ages(body) == without_ages(orjson.loads(cli.stdout))
    assert body["verdict"] == "COMPLETE"


def test_api_runs_lists_every_run_newest_first(
    client: Client, ledger: tuple[Path, str, str]
) -> None:
    """`GET /api/runs` is a list of run objects, newest first, `?limit=` bounding it."""
    runs = client.get("/api/runs").json()
    check_shape(runs, [RUN_SHAPE])
    assert [r["run_id"] for r in runs] == [ledger[2], ledger[1]]
    assert runs[1]["status"] == "completed" and runs[1]["counters"]["pairs_partial"] > 0
    assert [r["run_id"] for r in client.get("/api/runs?limit=1").json()] == [ledger[2]]


@pytest.mark.parametrize(
    "limit", ["abc", "", "-1", "0", "10001", "9" * 40, "1.5", "+1", "%201", "%D9%A3", "1%0A2"]
)
def test_api_runs_refuses_a_limit_that_is_not_a_count(client: Client, limit: str) -> None:
    """`?limit=` that is not a whole number from 1 to 10000 (negative, zero, too big, not ASCII
    digits) gets 400 with a one-line JSON error naming the parameter, never a default or 500."""
    response = client.get(f"/api/runs?limit={limit}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error.startswith("limit must be a whole number from 1 to 10000, not ")
    assert "\n" not in error and "Traceback" not in response.text
    assert client.get("/api/runs?limit=10000").status_code == 200


def test_api_run_detail_has_progress_config_and_checkpoints(
    client: Client, ledger: tuple[Path, str, str]
) -> None:
    """`GET /api/runs/<id>`: progress (scanned, inserted, skipped, errors), config (window,
    run_to_completion, max_seconds_per_run) and the checkpoint of each pair it left unfinished."""
    _, partial, full = ledger
    done = client.get(f"/api/runs/{full}").json()
    check_shape(done, RUN_DETAIL_SHAPE)
    assert done["checkpoint"] == {"unfinished_pairs": 0, "pairs": []}
    assert done["config"] == {"window": {}, "run_to_completion": True, "max_seconds_per_run": None}
    progress = done["progress"]
    assert progress["scanned"] == done["counters"]["items_fetched"] > 0
    assert progress["skipped"] == done["counters"]["items_unchanged"]
    # the page-limited run's pairs were finished by the next run: the table now says COMPLETE
    first = client.get(f"/api/runs/{partial}").json()
    check_shape(first, RUN_DETAIL_SHAPE)
    assert first["counters"]["pairs_partial"] == 4
    assert client.get("/api/runs/run-nope").status_code == 404


def test_a_live_partial_run_shows_its_checkpoints(tmp_path: Path, ops: Ops) -> None:
    """While pairs are unfinished, each is listed with has_next and its last page token."""
    db = tmp_path / "sweep.db"
    run_id = _run(db, max_pages=1)
    with served(db, ops) as client:
        detail = client.get(f"/api/runs/{run_id}").json()
    check_shape(detail, RUN_DETAIL_SHAPE)
    pairs = detail["checkpoint"]["pairs"]
    assert detail["checkpoint"]["unfinished_pairs"] == len(pairs) == 4
    assert all(p["has_next"] and p["last_page_token"] and p["state"] == "PARTIAL" for p in pairs)
    assert detail["config"]["window"] == {} and detail["status"] == "completed"


def test_metrics_parse_as_prometheus_text(client: Client, ledger: tuple[Path, str, str]) -> None:
    """`/metrics` parses with the Prometheus text parser and says what the status says."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in (
        "sweepledger_up",
        "sweepledger_ledger_events",
        "sweepledger_verdict",
        "sweepledger_sweep_complete",
        "sweepledger_invariant",
        "sweepledger_pairs",
        "sweepledger_run_live",
        "sweepledger_last_run_info",
        "sweepledger_last_run_counter",
    ):
        assert name in families, name
    status = client.get("/api/status").json()
    value = {f.name: f.samples for f in families.values()}
    assert value["sweepledger_up"][0].value == 1
    assert value["sweepledger_ledger_events"][0].value == status["head_seq"]
    verdicts = {s.labels["verdict"]: s.value for s in value["sweepledger_verdict"]}
    assert verdicts["COMPLETE"] == 1 and sum(verdicts.values()) == 1
    assert value["sweepledger_last_run_info"][0].labels["run_id"] == ledger[2]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/api/status", "/api/runs", "/metrics", "/no/such"])
def test_no_endpoint_accepts_a_write(client: Client, method: str, path: str) -> None:
    """Every method but GET and HEAD gets 405 with `Allow: GET, HEAD`, on any path."""
    response = client.request(method, path, content=b"{}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_pages_render_the_state_and_each_pair(client: Client) -> None:
    """The page shows the verdict, invariants, services, problems and runs; a pair's page its
    attempts and SWEEP lines; unknown paths are 404."""
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    for text in ('data-verdict="COMPLETE"', "Invariants", "Services", "Runs", "/static/app.js"):
        assert text in html, text
    assert "/partials/live" in client.get("/static/app.js").text
    assert 'data-verdict="COMPLETE"' in client.get("/partials/live").text
    pair = client.get("/pairs/gmail/user1@example.com")
    assert pair.status_code == 200
    assert "SWEEP service=gmail subject=user1@example.com phase=END" in pair.text
    assert "Attempts" in pair.text and "COMPLETE" in pair.text
    assert client.get("/pairs/gmail/nobody@example.com").status_code == 404
    assert client.get("/nothing-here").status_code == 404
    assert client.head("/api/status").status_code == 200


def test_a_missing_ledger_is_reported_not_crashed(tmp_path: Path, ops: Ops) -> None:
    """Before the first run the page says so and the API answers 503 with the reason."""
    with served(tmp_path / "later.db", ops) as client:
        assert "no ledger at" in client.get("/").text
        response = client.get("/api/status")
        assert response.status_code == 503 and "no ledger" in response.json()["error"]
        assert client.get("/metrics").text.startswith("# HELP sweepledger_up")


def test_serve_binds_loopback_and_stays_correct_while_a_run_appends(
    tmp_path: Path, ops: Ops
) -> None:
    """`sweep serve` listens on 127.0.0.1 by default; polled while a run appends, every status
    answers 200 with a head that never goes back, RUNNING while it works, COMPLETE after."""
    db = tmp_path / "sweep.db"
    slow = "sim://?subjects=2&page_size=5&latency_ms=5"
    _run(db, slow, max_pages=1)
    server, base = ops.serve(db, tmp_path)
    assert base.startswith("http://127.0.0.1:")
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            seen.append(ops.get_json(f"{base}/api/status"))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        _run(db, slow, max_pages=None)
    finally:
        done.set()
        poller.join()
    final = ops.get_json(f"{base}/api/status")
    heads = [s["head_seq"] for s in seen]
    assert heads == sorted(heads) and len(seen) > 5
    assert "RUNNING" in {s["verdict"] for s in seen}
    assert not {s["verdict"] for s in seen} - {"RUNNING", "INCOMPLETE", "COMPLETE"}
    assert final["verdict"] == "COMPLETE"
    server.terminate()
    ops.finish(server)


def test_the_api_answers_unknown_paths_and_writes_in_json(client: Client) -> None:
    """Under /api every answer is JSON, an unknown endpoint and a write too (404 and 405 with
    one-line errors); the pages keep plain text."""
    missing = client.get("/api/nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    assert missing.json() == {"error": "no such endpoint: /api/nope"}
    write = client.request("POST", "/api/status")
    assert (write.status_code, write.headers["allow"]) == (405, "GET, HEAD")
    assert write.json() == {"error": "POST: this view is read-only"}
    page = client.get("/nothing-here")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotALedger("x.db", "an SQLite database without any table"), 500),
        (SchemaTooNew("x.db", 9, 1), 500),
        (NoLedger("x.db"), 503),
        (CannotOpen("x.db", "SQLite: database is locked"), 503),
        (sqlite3.OperationalError("database is locked"), 503),
    ],
)
def test_a_ledger_that_cannot_be_read_now_is_503_and_a_wrong_file_500(
    error: Exception, status: int
) -> None:
    """500 says the file will never do (not a ledger, too new); 503 says try again (no ledger
    yet, a writer holding a lock): a monitor must not page anyone for a busy ledger."""
    response = web_app._error(error)
    assert response.status_code == status
    assert orjson.loads(response.body) == {"error": str(error)}


def test_a_pairs_page_shows_structures_as_json_and_escapes_control_characters(
    tmp_path: Path, ops: Ops
) -> None:
    """A partial pair's checkpoint reads as the API's JSON, not as Python; a reason with a
    newline and a direction override (written before the operator commands refused them)
    shows their escapes, as `sweep status` does, on the page and its state table."""
    db = tmp_path / "sweep.db"
    _run(db, max_pages=1)
    reason = "moved\nBLOCKED user9@example.com \u202eevil"
    store = SqliteStore.open(db)
    try:
        with store.transaction() as tx:
            data = {"subject": "user1@example.com", "service": "gmail", "reason": reason}
            tx.append(NewEvent(EventKind.BLOCK, subject="user1@example.com", data=data))
    finally:
        store.close()
    with served(db, ops) as client:
        pair = client.get("/pairs/gmail/user1@example.com").text
        overview = client.get("/").text
    assert "&quot;page&quot;:1" in pair and "'page'" not in pair
    for html in (pair, overview):
        assert "moved\\nBLOCKED user9@example.com \\u202eevil" in html
        assert "\u202e" not in html and "moved\nBLOCKED" not in html
