"""The HTML of the read-only view: rendered on the server from the same data as the JSON API.

One rendering path: the page embeds the live fragment, and the browser script only swaps in a
freshly rendered fragment every 2 s, so what a person sees is exactly what `/api/status` says,
without a reload and without a second copy of the logic in JavaScript. Every value is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

import orjson

from sweepledger.ledger.logline import printable
from sweepledger.projections.live import daemon_text
from sweepledger.projections.model import PAUSED, OperatorFlag, since_text, to_second
from sweepledger.projections.pair_view import AttemptView, PairView

REFRESH_MS = 2000


def e(value: object) -> str:
    """Escaped text of a value; None prints as a dash. Control characters show as their
    backslash escapes, as `sweep status` prints them: a newline or a direction override in a
    reason written before the operator commands refused them must not reorder the page."""
    return "-" if value is None else escape(printable(str(value)), quote=True)


def shown(value: object) -> object:
    """A field's value for `e`: a structure (a checkpoint, a list of ids) as JSON, as the API
    gives it, not as Python writes it."""
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


def when(ts: object) -> str:
    """A ledger timestamp shortened to the second (UTC), the full one in its tooltip."""
    if not ts:
        return "-"
    text = str(ts)
    return f'<time datetime="{e(text)}" title="{e(text)}">{e(to_second(text))}</time>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """An HTML table; cells are already escaped HTML."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pair_link(service: str, subject: str, text: str | None = None) -> str:
    """A link to the pair's page, reading `text` (the subject unless given)."""
    href = f"/pairs/{quote(service, safe='')}/{quote(subject, safe='@')}"
    return f'<a href="{e(href)}">{e(subject if text is None else text)}</a>'


def state_label(state: str) -> str:
    """A pair's state, coloured by its kind (`ERR:<class>` as ERR)."""
    return f'<span class="state s-{e(state.partition(":")[0])}">{e(state)}</span>'


def document(title: str, body: str, *, live: bool = False) -> str:
    """A whole page; `live` pages load the refresh script."""
    script = '<script src="/static/app.js" defer></script>' if live else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title>"
        f'<link rel="stylesheet" href="/static/app.css">{script}</head>'
        f"<body>{body}</body></html>\n"
    )


def index_page(ledger: str, fragment: str) -> str:
    """The dashboard: the live fragment, refreshed in place every 2 s."""
    body = (
        f'<header><h1>Sweepledger</h1><span class="ledger">{e(ledger)}</span>'
        f'<span id="updated" class="muted">read-only view, refreshes every '
        f"{REFRESH_MS // 1000} s</span></header>"
        f'<main id="live" data-refresh-ms="{REFRESH_MS}">{fragment}</main>'
        '<footer class="muted">JSON: <a href="/api/status">/api/status</a> · '
        '<a href="/api/runs">/api/runs</a> · <a href="/metrics">/metrics</a></footer>'
    )
    return document("Sweepledger", body, live=True)


def missing_fragment(message: str) -> str:
    """What the page shows while there is no readable ledger (the view keeps polling)."""
    return (
        '<section><div id="verdict" class="verdict v-EMPTY" data-verdict="EMPTY">EMPTY</div>'
        f'<p class="headline">{e(message)}</p></section>'
    )


def live_fragment(status: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> str:
    """Verdict, live progress, daemon, invariants, services, problem pairs and run history."""
    verdict = str(status["verdict"])
    parts = [
        f'<section><div id="verdict" class="verdict v-{e(verdict)}" data-verdict="{e(verdict)}">'
        f'{e(verdict)}</div><p class="headline" id="headline">{e(status["headline"])}</p>'
    ]
    if status.get("progress"):
        parts.append(_progress(status["progress"]))
    if status.get("daemon"):
        parts.append(f'<p class="daemon" id="daemon">{e(daemon_text(status["daemon"]))}</p>')
    parts.append("</section>")
    if status.get("invariants"):
        parts.append(_invariants(status))
    if status.get("services"):
        parts.append(_services(status["services"]))
    if status.get("blocked") or status.get("paused"):
        parts.append(_flags(status))
    parts.append(_problems(status))
    parts.append(_runs(runs))
    parts.append(f'<p class="muted">ledger head seq {e(status["head_seq"])}</p>')
    return "".join(parts)


def _progress(p: Mapping[str, Any]) -> str:
    done, total = int(p["pairs_done"]), int(p["pairs_total"])
    percent = 100 * done // total if total else 0
    rate = "-" if p["items_per_s"] is None else f"{p['items_per_s']:.0f} items/s"
    eta = "unknown" if p["eta_s"] is None else f"{p['eta_s']:.0f} s (at {p['eta_at']})"
    return (
        '<div class="progress" id="progress">'
        f'<div class="bar"><div class="fill" style="width:{percent}%"></div></div>'
        f'<p><b><span id="pairs-done" data-value="{done}">{done}</span> / '
        f'<span id="pairs-total">{total}</span></b> pairs complete · '
        f'<span id="items">{e(p["items"])}</span> items this run · {e(rate)} · ETA {e(eta)} · '
        f"last event {e(p['last_event_age_s'])} s ago · run {e(p['run_id'])} "
        f"({e(p['trigger'])})</p></div>"
    )


def _mark(good: bool) -> str:
    return '<span class="ok">ok</span>' if good else '<span class="bad">NOT MET</span>'


def _invariants(status: Mapping[str, Any]) -> str:
    inv = status["invariants"]
    total = inv["active_targets_total"]
    rows = [
        ["active_targets_total", e(total), ""],
        ["attempted_count", e(inv["attempted_count"]), _mark(inv["attempted_count"] == total)],
        [
            "complete_subjects_count",
            e(inv["complete_subjects_count"]),
            _mark(inv["complete_subjects_count"] == total),
        ],
        [
            "partial_subjects_count",
            e(inv["partial_subjects_count"]),
            _mark(inv["partial_subjects_count"] == 0),
        ],
        ["errors_count", e(inv["errors_count"]), _mark(inv["errors_count"] == 0)],
    ]
    pairs = {row["service"]: row["pairs"] for row in status["services"]}
    for service, got in inv["pagination_exhausted"].items():
        rows.append(
            [f"pagination_exhausted[{e(service)}]", e(got), _mark(got == pairs.get(service, 0))]
        )
    verdict = "COMPLETE" if inv["complete"] else "not complete"
    if (status.get("sweep") or {}).get("closed"):
        verdict += ", as the sweep closed"  # its figures are those it closed with
    return (
        f'<section><h2>Invariants <span class="muted">({e(verdict)})</span></h2>'
        f"{table(['figure', 'value', ''], rows, 'invariants')}</section>"
    )


def _services(services: Sequence[Mapping[str, Any]]) -> str:
    keys = (
        "pairs",
        "complete",
        "partial",
        "in_progress",
        "errors",
        "not_started",
        "exhausted",
        "items",
    )
    rows = [[e(s["service"]), *(e(s[k]) for k in keys)] for s in services]
    return f"<section><h2>Services</h2>{table(['service', *keys], rows, 'services num')}</section>"


def _flags(status: Mapping[str, Any]) -> str:
    """The BLOCKED and PAUSED lines of `sweep status` (subject, scope, the operator's reason),
    listed whatever the pairs' states: a flag takes a COMPLETE pair out of the sweeps too."""
    services = (status.get("sweep") or {}).get("services") or []

    def every_service(subject: str) -> str:
        links = ", ".join(pair_link(service, subject, service) for service in services)
        return "all services" + (f" ({links})" if links else "")

    rows = [
        [
            state_label("BLOCKED"),
            e(b["subject"]) if b["service"] is None else pair_link(b["service"], b["subject"]),
            every_service(b["subject"]) if b["service"] is None else e(b["service"]),
            _flag_since(b),
            e(b["reason"]),
        ]
        for b in status.get("blocked") or []
    ]
    rows += [
        [
            state_label("PAUSED"),
            e(p["subject"]),
            every_service(p["subject"]),
            _flag_since(p),
            e(p["reason"]),
        ]
        for p in status.get("paused") or []
    ]
    return (
        f'<section id="flags"><h2>Blocked and paused: {len(rows)} '
        '<span class="muted">(left out of every sweep until lifted)</span></h2>'
        f"{table(['flag', 'subject', 'services', 'since', 'reason'], rows, 'flags')}</section>"
    )


def _flag_since(flag: Mapping[str, Any]) -> str:
    return e(since_text(flag["since"], flag["since_seq"]))


def _problems(status: Mapping[str, Any]) -> str:
    problems = status.get("problems") or []
    total = status.get("problems_total", 0)
    if not total:
        return '<section><h2>Pairs not complete</h2><p class="muted">none</p></section>'
    rows = [
        [
            e(p["service"]),
            pair_link(p["service"], p["subject"]),
            state_label(p["state"]),
            e(p["attempts"]),
            e(p["last_err"]),
            e(p["detail"]),
        ]
        for p in problems
    ]
    not_started = int(status.get("not_started", 0))
    unlisted = int(status.get("problems_more", 0))
    more = f"; the first {len(problems)} shown, {unlisted} more" if unlisted > 0 else ""
    return (
        f"<section><h2>Pairs not complete: {e(total)} ({e(not_started)} not started{e(more)})"
        "</h2>"
        + (
            table(["service", "subject", "state", "attempts", "last error", "detail"], rows)
            if rows
            else ""
        )
        + "</section>"
    )


def _runs(runs: Sequence[Mapping[str, Any]]) -> str:
    if not runs:
        return '<section><h2>Runs</h2><p class="muted">no runs yet</p></section>'
    rows = []
    for r in runs:
        c = r["counters"]
        error = r["error"]
        note = f"{error['class']}: {error['message']}" if error else (r["reason"] or "")
        duration = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f} s"
        rate = "-" if r["items_per_s"] is None else f"{r['items_per_s']:.0f}"
        rows.append(
            [
                f'<a href="/api/runs/{e(quote(r["run_id"]))}">{e(r["run_id"])}</a>',
                f'<span class="run r-{e(r["status"])}">{e(r["status"])}</span>',
                e(r["trigger"]),
                when(r["started"]),
                e(duration),
                e(
                    f"{c['pairs_attempted']}/{c['pairs_completed']}/{c['pairs_partial']}/"
                    f"{c['pairs_errored']}"
                ),
                e(
                    f"{c['items_fetched']}/{c['items_inserted']}/{c['items_updated']}/"
                    f"{c['items_unchanged']}/{c['items_deleted']}"
                ),
                e(c["requests"]),
                e(c["retries"]),
                e(c["rate_limit_waits"]),
                e(rate),
                e(note),
            ]
        )
    headers = [
        "run",
        "status",
        "trigger",
        "started",
        "duration",
        "pairs a/c/p/e",
        "items f/i/u/s/d",
        "requests",
        "retries",
        "rate-limit waits",
        "items/s",
        "note",
    ]
    return f"<section><h2>Runs</h2>{table(headers, rows, 'runs')}</section>"


def pair_page(view: PairView) -> str:
    """One pair: state (and the operator's flag), cursors, attempts (newest first) and its
    SWEEP lines."""
    title = f"{view.service} / {view.subject}"
    cursor_rows = [[e(k), e(v)] for k, v in view.cursors.items()]
    shown = ""
    if view.events_shown < view.events_total:
        shown = f" (newest {view.events_shown} of {view.events_total} events)"
    lines = "\n".join(e(line) for line in view.lines)
    body = (
        f'<header><h1><a href="/">Sweepledger</a> &rsaquo; {e(title)}</h1></header><main>'
        f"{_pair_state(view)}"
        f'<section id="cursors"><h2>Cursors</h2>{table(["key", "value"], cursor_rows)}</section>'
        f'<section id="attempts"><h2>Attempts</h2>{_attempts(view.attempts)}</section>'
        f'<section id="lines"><h2>SWEEP lines{e(shown)}</h2><pre>{lines}</pre></section></main>'
    )
    return document(f"Sweepledger: {title}", body)


def _pair_state(view: PairView) -> str:
    """The pair's state row, under the flag that leaves it out of the sweeps if there is one."""
    parts = ['<section id="state"><h2>State</h2>']
    if view.flag is not None:
        parts.append(_flag_note(view.flag))
    if view.state is None:
        parts.append('<p class="muted">not in the current sweep</p>')
    else:
        rows = [[e(k), e(shown(v))] for k, v in view.state.items()]
        parts.append(table(["field", "value"], rows, "state"))
    parts.append("</section>")
    return "".join(parts)


def _attempts(attempts: Sequence[AttemptView]) -> str:
    rows = [
        [
            e(a.attempt),
            e(a.run_id),
            when(a.started),
            e(a.mode),
            e(a.pages),
            e(a.count),
            state_label(a.outcome),
            e(a.skip_reason),
            e(", ".join(f"{k}={v}" for k, v in a.cursor.items()) or None),
            e(a.detail),
        ]
        for a in reversed(attempts)
    ]
    headers = [
        "#",
        "run",
        "started",
        "mode",
        "pages",
        "items",
        "outcome",
        "cursor skipped",
        "cursor written",
        "detail",
    ]
    return table(headers, rows)


def _flag_note(flag: OperatorFlag) -> str:
    """Why the pair is left out of the sweeps, worded as the flag's line in `sweep status`."""
    scope = "" if flag.state == PAUSED else f" {flag.service or '(all services)'}"
    since = f" since {since_text(flag.flag.ts, flag.flag.seq)}"
    return (
        f'<p class="flag" id="flag" data-state="{e(flag.state)}">{state_label(flag.state)}'
        f"{e(scope)}{e(since)}: {e(flag.flag.reason)}</p>"
    )


APP_JS = """\
(function () {
  var live = document.getElementById("live");
  var note = document.getElementById("updated");
  if (!live) { return; }
  var every = parseInt(live.getAttribute("data-refresh-ms") || "2000", 10);
  function refresh() {
    fetch("/partials/live", {cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) {
      live.innerHTML = html;
      note.textContent = "updated " + new Date().toLocaleTimeString();
      note.className = "muted";
    }).catch(function () {
      note.textContent = "cannot reach the server, retrying";
      note.className = "bad";
    }).then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
"""

APP_CSS = """\
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em;
       color: #1d2330; background: #fafbfc; }
header { display: flex; gap: 1em; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 1.4em; margin: 0 0 .4em; } h1 a { color: inherit; text-decoration: none; }
h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.ledger { font-family: ui-monospace, monospace; color: #555; }
.muted { color: #777; } .ok { color: #17803d; } .bad { color: #b42318; font-weight: 600; }
.verdict { display: inline-block; font-size: 2em; font-weight: 700; padding: .15em .6em;
           border-radius: .3em; color: #fff; background: #667085; letter-spacing: .04em; }
.v-RUNNING { background: #1d64d8; } .v-IDLE { background: #4e7d6b; }
.v-INTERRUPTED { background: #c4320a; } .v-COMPLETE { background: #17803d; }
.v-INCOMPLETE { background: #b54708; } .v-EMPTY { background: #667085; }
.headline { font-size: 1.05em; margin: .5em 0; }
.progress .bar { height: 14px; background: #e4e7ec; border-radius: 7px; overflow: hidden; }
.progress .fill { height: 100%; background: #1d64d8; transition: width .4s; }
table { border-collapse: collapse; background: #fff; margin: .2em 0; }
th, td { border: 1px solid #e4e7ec; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f2f4f7; font-weight: 600; }
table.runs td:not(:last-child) { white-space: nowrap; }
table.num td:not(:first-child), table.runs td:nth-child(n+5):not(:last-child) {
  text-align: right; font-variant-numeric: tabular-nums; }
.s-COMPLETE, .r-completed { color: #17803d; } .s-ERR, .r-failed, .s-interrupted,
.r-interrupted, .r-aborted { color: #b42318; } .s-PARTIAL, .r-paused { color: #b54708; }
.s-BLOCKED, .s-PAUSED { color: #6941c6; font-weight: 600; }
.flag { font-size: 1.05em; margin: .3em 0 .5em; }
.flag, table.flags td:last-child { overflow-wrap: anywhere; }
pre { background: #fff; border: 1px solid #e4e7ec; padding: .6em; overflow-x: auto;
      font-size: 12px; }
"""
