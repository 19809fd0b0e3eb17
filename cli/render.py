"""Text rendering of reports for people (`--json` prints the data itself)."""

from __future__ import annotations

from typing import Any

from sweepledger.ledger.logline import printable
from sweepledger.projections.live import daemon_text
from sweepledger.projections.model import since_text
from sweepledger.projections.status import StatusReport


def mark(good: bool) -> str:
    """An invariant's verdict beside its figure."""
    return "ok" if good else "NOT MET"


def status_text(report: StatusReport) -> str:
    lines = [report.headline]
    if report.progress is not None:
        lines.append(progress_text(report.progress))
    if report.daemon is not None:
        lines.append(daemon_text(report.daemon))
    sweep = report.sweep
    if sweep is None or report.completeness is None:
        # no sweep opened yet (or `--as-of` an event before it): the run and the operator
        # flags are all there is to say, and the JSON says them too
        lines += flags_text(report)
        lines += recent_runs_text(report)
        return "\n".join(lines)
    lines.append(
        f"sweep {sweep['sweep_id']}: source {sweep['source']}, services "
        f"{','.join(sweep['services'])}, {sweep['subjects']} subjects, opened {sweep['opened']}"
        + (f", closed {sweep['closed']}" if sweep["closed"] else "")
    )
    c = report.completeness
    total = c.active_targets_total
    # a closed sweep's figures are those it closed with (`State.frozen`), not today's flags
    lines.append("invariants (as the sweep closed):" if sweep["closed"] else "invariants:")
    lines.append(f"  active_targets_total            {total:>7}")
    lines.append(
        f"  attempted_count                 {c.attempted_count:>7}  "
        f"{mark(c.attempted_count == total)}"
    )
    lines.append(
        f"  complete_subjects_count         {c.complete_subjects_count:>7}  "
        f"{mark(c.complete_subjects_count == total)}"
    )
    lines.append(
        f"  partial_subjects_count          {c.partial_subjects_count:>7}  "
        f"{mark(c.partial_subjects_count == 0)}"
    )
    lines.append(
        f"  errors_count                    {c.errors_count:>7}  {mark(c.errors_count == 0)}"
    )
    for service in sweep["services"]:
        got = c.pagination_exhausted.get(service, 0)
        want = c.pairs_per_service.get(service, 0)
        lines.append(
            f"  pagination_exhausted[{service}]".ljust(34) + f"{got:>7}  {mark(got == want)}"
        )
    if c.blocked_pairs or c.paused_subjects:
        lines.append(
            f"  excluded: {c.blocked_pairs} blocked pairs, {c.paused_subjects} paused subjects"
        )
    lines.append("")
    header = ("service", "pairs", "complete", "partial", "running", "errors", "exhausted", "items")
    lines.append("  ".join(h.rjust(9) if i else h.ljust(9) for i, h in enumerate(header)))
    for row in report.services:
        cells = (
            row["service"],
            row["pairs"],
            row["complete"],
            row["partial"],
            row["in_progress"],
            row["errors"],
            row["exhausted"],
            row["items"],
        )
        lines.append(
            "  ".join(str(v).rjust(9) if i else str(v).ljust(9) for i, v in enumerate(cells))
        )
    lines += flags_text(report)
    if report.problems_total:
        lines.append("")
        lines.append(
            f"not complete: {report.problems_total} pairs ({report.not_started} not started)"
        )
        for p in report.problems:
            # a source's or a service's text (an error message), shown as flags_text shows
            # an operator's
            extra = f" last error {printable(p['last_err'])}" if p["last_err"] else ""
            outstanding = f"{len(p['outstanding'])} items"
            if p["outstanding"] and not (p["detail"] or "").startswith(outstanding + " "):
                # unless the detail already counts them ("78 items outstanding: ...")
                extra += f", {outstanding} outstanding"
            detail = f": {printable(p['detail'])}" if p["detail"] else ""
            lines.append(
                f"  {p['service']:<9} {printable(p['subject'])}  {p['state']}  attempts "
                f"{p['attempts']}{extra}{detail}"
            )
        if report.problems_more:
            lines.append(f"  ... and {report.problems_more} more (--all lists every one)")
    lines += recent_runs_text(report)
    return "\n".join(lines)


def flags_text(report: StatusReport) -> list[str]:
    """The BLOCKED and PAUSED lines, after a blank line (none if nothing is flagged).

    Each says since when (the BLOCK or PAUSE event's time and seq, which `sweep log` and an
    auditor find it by). Subjects and reasons are the operator's text, shown `printable`: one
    recorded with a newline or a terminal escape stays on its own line instead of passing for
    another line of the status."""
    if not (report.blocked or report.paused):
        return []
    lines = [""]
    for b in report.blocked:
        scope = f"{printable(b['subject'])} {b['service'] or '(all services)'}"
        lines.append(f"BLOCKED {scope} {_since(b)}: {printable(b['reason'])}")
    for p in report.paused:
        lines.append(f"PAUSED  {printable(p['subject'])} {_since(p)}: {printable(p['reason'])}")
    return lines


def _since(flag: dict[str, Any]) -> str:
    return f"since {since_text(flag['since'], flag['since_seq'])}"


def recent_runs_text(report: StatusReport) -> list[str]:
    """The recent runs, after a blank line (none if the ledger has no run)."""
    if not report.runs:
        return []
    lines = ["", "recent runs:"]
    for r in report.runs:
        duration = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
        rate = "" if r["items_per_s"] is None else f", {r['items_per_s']:.0f} items/s"
        counters = r["counters"]
        lines.append(
            f"  {r['run_id']}  {r['status']:<11} {printable(r['trigger'] or 'cli'):<15} "
            f"started {r['started']}  {duration}  "
            f"{counters['pairs_completed']} pairs complete, "
            f"{counters['items_fetched']} items{rate}"
            + (f"  ({printable(r['reason'])})" if r["reason"] else "")
        )
    return lines


def progress_text(p: dict[str, Any]) -> str:
    """`progress: 12/80 pairs complete, 1 234 items this run (410 items/s), ETA 41s, ...`."""
    rate = "" if p["items_per_s"] is None else f" ({p['items_per_s']:.0f} items/s)"
    eta = "ETA unknown" if p["eta_s"] is None else f"ETA {p['eta_s']:.0f}s ({p['eta_at']})"
    return (
        f"progress: {p['pairs_done']}/{p['pairs_total']} pairs complete, {p['items']} items "
        f"this run{rate}, {eta}, last event {p['last_event_age_s']}s ago"
    )
