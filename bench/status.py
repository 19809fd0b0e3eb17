"""`status` must cost the same on 10^3 or 10^7 events (DESIGN 9): that is why projections exist.

`projections.api.read_status` reads the projection tables (a few indexed reads). Its baseline is
the naive way, folding every event on each call, which is what `read_status(as_of=head)` does
through the same API. The naive way is timed where one call finishes in reasonable time and
extrapolated linearly (per event, from the largest size timed) beyond, which the table says.
"""

from __future__ import annotations

from functools import partial

from harness import Table, count, median, p95, repeat_ms, verdict
from ledgers import ensure_ledger, label, sizes

from sweepledger.projections.api import read_status

CALLS = 20
TARGET_MS = 20.0


def main(quick: bool) -> None:
    """Median and p95 of `read_status` per ledger size, beside the naive fold."""
    budget_s = 10.0 if quick else 90.0
    """Longest single naive call this run is willing to time (else: extrapolated)."""
    table = Table(
        f"status: projections.api.read_status in-process, {CALLS} calls after 1 warm-up",
        ["size", "events", "median ms", "p95 ms", "target", "", "naive fold ms", "naive",
         "naive / ours"],
    )  # fmt: skip
    ms_per_event: float | None = None
    medians = []
    for size in sizes(quick):
        info = ensure_ledger(size)
        path = info.path
        samples = repeat_ms(partial(read_status, path), CALLS)
        ours = median(samples)
        medians.append(ours)
        estimate = None if ms_per_event is None else ms_per_event * info.events
        if estimate is None or estimate <= budget_s * 1000:
            times = 3 if estimate is None or estimate < budget_s * 300 else 1
            naive = median(
                repeat_ms(partial(read_status, path, as_of=info.events), times, warmup=0)
            )
            ms_per_event = naive / info.events
            how = f"timed x{times}"
            naive_text = f"{naive:,.1f}".replace(",", " ")
        else:
            naive = estimate
            how = "extrapolated"
            naive_text = f"~{naive:,.0f}".replace(",", " ")
        table.add(
            label(size),
            count(info.events),
            f"{ours:.2f}",
            f"{p95(samples):.2f}",
            f"< {TARGET_MS:.0f} ms",
            verdict(p95(samples) < TARGET_MS),
            naive_text,
            how,
            f"{naive / ours:,.0f}x".replace(",", " "),
        )
    if len(medians) > 1:
        table.note(
            f"flatness: median at the largest size / at the smallest = "
            f"{medians[-1] / medians[0]:.2f}x (flat means ~1x)"
        )
    table.note("naive = read_status(as_of=head): every event folded on each call")
    table.note("extrapolated = ms per event of the largest timed size x events")
    table.print()


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
