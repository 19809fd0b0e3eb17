"""The read-only web view of one ledger: a small Starlette (ASGI) app.

Read-only by construction: every read opens the database read-only (`mode=ro` and
`query_only`, through `projections.attach.open_for_reading`), the app has no route that writes,
and a middleware answers every method but GET and HEAD with 405 before any route is looked at.
Each request reads one WAL snapshot, so the view stays correct while a run appends.
Handlers are plain functions: Starlette runs them in its thread pool, off the event loop.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sweepledger.ledger.errors import LedgerError, NoLedger, NotALedger, SchemaTooNew
from sweepledger.projections.api import live_run_ids, read_status
from sweepledger.projections.runs import HISTORY_LIMIT, read_run, read_runs

from . import pages
from .metrics import render_metrics

READ_METHODS = ("GET", "HEAD")
PAGE_RUNS = 10
RUNS_MAX = 10_000
"""The most runs `/api/runs?limit=` returns in one answer."""
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
    "Cache-Control": "no-store",
}


class ReadOnly:
    """405 for any method that is not GET or HEAD, on every path (nothing here writes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in READ_METHODS:
            headers = {"Allow": ", ".join(READ_METHODS), **SECURITY_HEADERS}
            why = "this view is read-only"
            response: Response = (
                JSONResponse({"error": f"{scope['method']}: {why}"}, 405, headers)
                if _is_api(scope["path"])
                else PlainTextResponse(f"405 Method Not Allowed: {why}\n", 405, headers)
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Headers:
    """Adds the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (k.lower().encode(), v.encode())
                    for k, v in SECURITY_HEADERS.items()
                    if k.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


UNREADABLE = (LedgerError, sqlite3.Error)
"""What a read can raise that is about the ledger, not a bug: answered, never a traceback."""


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _error(error: Exception) -> JSONResponse:
    """500 for a file that is not a ledger (or one too new to read); 503 for what passes: no
    ledger yet, one that cannot be opened now, a lock held by a writer."""
    status = 500 if isinstance(error, NotALedger | SchemaTooNew) else 503
    return JSONResponse({"error": str(error)}, status_code=status)


async def _api_not_found(request: Request, error: Exception) -> Response:
    """404 under /api as the API answers everything, in one line of JSON; plain text elsewhere."""
    if _is_api(request.url.path):
        return JSONResponse({"error": f"no such endpoint: {request.url.path}"}, 404)
    return PlainTextResponse("404 Not Found\n", 404)


class BadQuery(ValueError):
    """A query parameter the API cannot use: answered 400 with this one-line message."""


def query_int(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    """The integer query parameter `name` (`default` when absent), from `low` to `high`.

    Anything else is refused rather than replaced by a default or clamped, so a script that
    asks for `?limit=abc` or `?limit=-5` learns it at once, as `sweep runs --limit` tells a
    person; only ASCII digits count (`str.isdigit` also takes other scripts' digits).
    """
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(high)) and low <= int(raw) <= high:
        return int(raw)
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    raise BadQuery(f"{name} must be a whole number from {low} to {high}, not {shown!r}")


def create_app(db_path: str | Path) -> Starlette:
    """The app for the ledger at `db_path` (which may not exist yet: the view then waits)."""
    db = Path(db_path)

    def fragment() -> str:
        try:
            status = read_status(db).as_dict()
            runs = read_runs(db, limit=PAGE_RUNS)
        except NoLedger:
            return pages.missing_fragment(f"no ledger at {db} yet (`sweep run` creates one)")
        except UNREADABLE as error:
            return pages.missing_fragment(f"the ledger cannot be read: {error}")
        return pages.live_fragment(status, runs)

    def index(request: Request) -> Response:
        return HTMLResponse(pages.index_page(str(db), fragment()))

    def live(request: Request) -> Response:
        return HTMLResponse(fragment())

    def pair(request: Request) -> Response:
        from sweepledger.projections.pair_view import read_pair

        service, subject = request.path_params["service"], request.path_params["subject"]
        try:
            view = read_pair(db, service, subject, live_run_ids(db))
        except UNREADABLE as error:
            return HTMLResponse(pages.document("Sweepledger", pages.e(error)), status_code=503)
        if view is None:
            return HTMLResponse(
                pages.document(
                    "Sweepledger",
                    f"<p>no pair {pages.e(service)} / {pages.e(subject)} in this ledger</p>",
                ),
                status_code=404,
            )
        return HTMLResponse(pages.pair_page(view))

    def api_status(request: Request) -> Response:
        try:
            return JSONResponse(read_status(db).as_dict())
        except UNREADABLE as error:
            return _error(error)

    def api_runs(request: Request) -> Response:
        try:
            limit = query_int(request, "limit", default=HISTORY_LIMIT, low=1, high=RUNS_MAX)
            return JSONResponse(read_runs(db, limit=limit))
        except BadQuery as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        except UNREADABLE as error:
            return _error(error)

    def api_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            detail = read_run(db, run_id)
        except UNREADABLE as error:
            return _error(error)
        if detail is None:
            return JSONResponse({"error": f"no run {run_id} in this ledger"}, status_code=404)
        return JSONResponse(detail)

    def metrics(request: Request) -> Response:
        def read() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            return read_status(db).as_dict(), read_runs(db, limit=1)

        body, content_type = render_metrics(read)
        return Response(body, media_type=content_type)

    def static(body: str, media_type: str) -> Any:
        def serve(request: Request) -> Response:
            return Response(body, media_type=media_type)

        return serve

    routes = [
        Route("/", index, methods=list(READ_METHODS)),
        Route("/partials/live", live, methods=list(READ_METHODS)),
        Route("/pairs/{service}/{subject}", pair, methods=list(READ_METHODS)),
        Route("/api/status", api_status, methods=list(READ_METHODS)),
        Route("/api/runs", api_runs, methods=list(READ_METHODS)),
        Route("/api/runs/{run_id}", api_run, methods=list(READ_METHODS)),
        Route("/metrics", metrics, methods=list(READ_METHODS)),
        Route("/static/app.js", static(pages.APP_JS, "text/javascript"), methods=["GET"]),
        Route("/static/app.css", static(pages.APP_CSS, "text/css"), methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _api_not_found})
    app.add_middleware(Headers)
    app.add_middleware(ReadOnly)
    return app
