"""The emulator's HTTP side: a stdlib ThreadingHTTPServer on 127.0.0.1 and what it routes.

`Emulator` wires the token endpoint, the API routes, Gmail's batch endpoint and the admin
endpoints under `/_emulator/` (a test peer's controls, never a Google path):

    GET  /_emulator/stats            calls per route id, answers per status, the workspace URL,
                                     and the quota model's figures under "quota"
    POST /_emulator/stats/reset      zero the counts (the quota's too)
    POST /_emulator/workspace        {"workspace": "sim://..."}: serve another workspace now (its
                                     quota_user / quota_project become the quota)
    POST /_emulator/revoke-tokens    forget every access token (clients must refresh)
    GET  /_emulator/quota            the quota rates and what was charged and refused
    POST /_emulator/quota            {"quota_user": U, "quota_project": P}: new rates from now on
                                     (units per second; null removes a limit; a key left out
                                     keeps its rate), without a restart

The quota model (`quota.QuotaModel`) is the dispatcher's admission policy. HTTP/1.1
keep-alive, a Content-Length on every answer, no access log (a busy sweep would fill a pipe
nobody reads).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from sweepledger.collectors.emulator import (
    calendar_api,
    chat_api,
    directory_api,
    drive_api,
    gmail_api,
)
from sweepledger.collectors.emulator.dispatch import ApiError, Call, Dispatcher, Reply, Route
from sweepledger.collectors.emulator.quota import QuotaModel
from sweepledger.collectors.emulator.state import EmulatorState
from sweepledger.collectors.emulator.tokens import ServiceAccount, TokenIssuer, TokenRefused
from sweepledger.collectors.errors import SourceConfigError
from sweepledger.collectors.google import batch
from sweepledger.collectors.sim.config import parse_quota

HOST = "127.0.0.1"
MAX_BATCH = 100


class Emulator:
    """Everything behind the socket; `handle` answers one HTTP request."""

    def __init__(
        self, workspace: str, admin: str, token_uri: str, account: ServiceAccount | None = None
    ) -> None:
        self.state = EmulatorState(workspace, admin)
        self.account = account or ServiceAccount.create()
        self.tokens = TokenIssuer(self.account, token_uri, self.state.is_user)
        routes = [
            Route("oauth2.token", "POST", _path("/token"), self._token),
            Route("gmail.batch", "POST", _path("/batch/gmail/v1"), self._batch, gmail_api.SCOPES),
        ]
        for api in (directory_api, gmail_api, calendar_api, chat_api, drive_api):
            routes += api.routes(self.state)
        self.dispatcher = Dispatcher(routes, self.tokens, self.state.latency)
        config = self.state.view().config
        self.quota = QuotaModel(config.quota_user, config.quota_project)
        self.dispatcher.admission = self.quota
        self._batch_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="batch")
        self.admin: dict[tuple[str, str], Callable[[bytes], Reply]] = {
            ("GET", "/_emulator/stats"): self._stats,
            ("POST", "/_emulator/stats/reset"): self._reset_stats,
            ("POST", "/_emulator/workspace"): self._switch,
            ("POST", "/_emulator/revoke-tokens"): self._revoke,
            ("GET", "/_emulator/quota"): self._quota,
            ("POST", "/_emulator/quota"): self._set_quota,
        }

    def close(self) -> None:
        self._batch_pool.shutdown(wait=False, cancel_futures=True)

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        control = self.admin.get((method, parts.path))
        if control is not None:
            return control(body)
        query = parse_qs(parts.query, keep_blank_values=True)
        return self.dispatcher.dispatch(method, parts.path, query, headers, body)

    def _token(self, call: Call) -> Reply:
        form = {k: v[-1] for k, v in parse_qs(call.body.decode("utf-8", "replace")).items()}
        try:
            return Reply.json(self.tokens.exchange(form), headers={"Cache-Control": "no-store"})
        except TokenRefused as refused:
            return Reply.json(
                {"error": refused.error, "error_description": refused.description}, refused.status
            )

    def _batch(self, call: Call) -> Reply:
        """Gmail's batch endpoint: each part is dispatched (counted, admitted, faulted, delayed
        by the latency) as if it had come alone with the outer request's credentials. Parts run
        concurrently on a pool shared by all batches, the emulator's model of Google fanning a
        batch out to its backends; the outer exchange adds one latency of its own."""
        try:
            parts = batch.decode(_header(call.headers, "content-type"), call.body)
        except ValueError as error:
            raise ApiError(400, f"Invalid batch request: {error}", "badRequest") from None
        if len(parts) > MAX_BATCH:
            raise ApiError(
                400, f"Too many requests in batch: {len(parts)} > {MAX_BATCH}", "badRequest"
            )
        auth = {"Authorization": _header(call.headers, "authorization")}
        answers = list(self._batch_pool.map(lambda p: self._inner(p, auth), parts))
        content_type, body = batch.encode(answers, response=True)
        return Reply(200, body, {"Content-Type": content_type})

    def _inner(self, part: batch.Part, auth: Mapping[str, str]) -> batch.Part:
        method, _, rest = part.start.partition(" ")
        target = urlsplit(rest.split(" ")[0])
        if not target.path.startswith("/gmail/v1/"):
            reply = ApiError(
                400, f"Batch parts must call the Gmail API, not {target.path}", "badRequest"
            ).reply()
        else:
            reply = self.dispatcher.dispatch(
                method, target.path, parse_qs(target.query), {**part.headers, **auth}, part.body
            )
        status = f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}"
        return batch.Part(part.content_id, status, dict(reply.headers), reply.body)

    def _stats(self, body: bytes) -> Reply:
        return Reply.json(
            {
                **self.dispatcher.stats.snapshot(),
                "workspace": self.state.view().config.url,
                "quota": self.quota.snapshot(),
            }
        )

    def _reset_stats(self, body: bytes) -> Reply:
        self.dispatcher.stats.reset()
        self.quota.reset_counts()
        return self._stats(body)

    def _quota(self, body: bytes) -> Reply:
        return Reply.json(self.quota.snapshot())

    def _set_quota(self, body: bytes) -> Reply:
        try:
            asked = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            asked = None
        if not isinstance(asked, dict) or not set(asked) <= {"quota_user", "quota_project"}:
            return Reply.json(
                {"error": 'expected {"quota_user": U, "quota_project": P} (units/s or null)'}, 400
            )
        current = self.quota.snapshot()
        rates: dict[str, float | None] = {}
        for key in ("quota_user", "quota_project"):
            value = asked.get(key, current[key])
            try:
                rates[key] = None if value is None else parse_quota(key, str(value))
            except SourceConfigError as error:
                return Reply.json({"error": str(error)}, 400)
        self.quota.configure(rates["quota_user"], rates["quota_project"])
        return self._quota(body)

    def _switch(self, body: bytes) -> Reply:
        try:
            url = orjson.loads(body)["workspace"]
            view = self.state.switch(str(url))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return Reply.json({"error": 'expected {"workspace": "sim://..."}'}, 400)
        except (SourceConfigError, ValueError) as error:
            return Reply.json({"error": str(error)}, 400)
        self.quota.configure(view.config.quota_user, view.config.quota_project)
        return Reply.json({"workspace": view.config.url})

    def _revoke(self, body: bytes) -> Reply:
        return Reply.json({"revoked": self.tokens.revoke_all()})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16
    """Buffer the answer so its headers and body leave in one write (flushed after each request):
    as two small writes, a keep-alive client waits for the second one (~40 ms with Nagle's
    algorithm on, still ~1 ms without it)."""
    server: EmulatorServer

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: see the module docstring."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            reply = self.server.emulator.handle(
                self.command, self.path, dict(self.headers.items()), body
            )
        except Exception as error:
            reply = ApiError(
                500, f"emulator bug: {type(error).__name__}: {error}", "backendError"
            ).reply()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class EmulatorServer(ThreadingHTTPServer):
    """The listening socket, bound to loopback only."""

    daemon_threads = True

    def __init__(self, port: int, build: Callable[[str], Emulator]) -> None:
        super().__init__((HOST, port), _Handler)
        self.url = f"http://{HOST}:{self.server_address[1]}"
        self.emulator = build(self.url)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="emulator", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.emulator.close()


def _path(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text))


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")
