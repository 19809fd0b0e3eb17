"""Run Sweepledger's benchmarks and print their figures: `just bench [--quick] [--only NAME]`.

Each module measures its own baselines in the same run and prints ratios beside the issue's
targets, because absolute times depend on the machine of the day. Nothing here asserts: a missed
target is printed as MISSES and is a finding, not a failure.

    python bench/run_all.py --quick               small sizes, under ~2 minutes
    python bench/run_all.py                       every size, 10^7 included (builds it once)
    python bench/run_all.py --only replay,check   some modules only
    python bench/run_all.py --max-events 1e6      skip ledgers above 10^6 events
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sqlite3
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve().parent
FIRST = ("ledgers", "status", "replay", "check", "append", "statefile")
"""Run first, in this order: the ledgers first, so the read benchmarks find them built."""
NOT_BENCHMARKS = {"harness", "run_all", "story", "workload"}
"""Helpers of the benchmarks, not benchmarks."""


def benchmark_modules() -> list[str]:
    """The modules of bench/ (those with a `main(quick)` run): FIRST in order, then by name."""
    found = {p.stem for p in HERE.glob("*.py")} - NOT_BENCHMARKS
    return [name for name in FIRST if name in found] + sorted(found - set(FIRST))


def _commit() -> str:
    """The commit measured, and whether the tree had changes (figures belong to a version)."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], check=False, cwd=HERE, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def _machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    versions = []
    for name in ("orjson", "eventsourcing", "sqlite-utils"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} missing")
    return (
        f"machine: {cpu}, {os.cpu_count()} CPUs{memory}\n"
        f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        + ", ".join(versions)
    )


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _events(text: str) -> int:
    """`1e6`, `1000000` or `1_000_000`."""
    return int(float(text.replace("_", "")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under ~2 minutes)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run these modules only (repeat or comma-separate): " + ", ".join(benchmark_modules()),
    )
    parser.add_argument(
        "--max-events", type=_events, default=None, help="skip ledgers larger than this"
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="rebuild the cached ledgers (after a change to the fold or the tables)",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for spec in args.only for name in spec.split(",") if name.strip()]
    modules = benchmark_modules()
    unknown = sorted(set(chosen) - set(modules))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(modules)}")
    names = [name for name in modules if not chosen or name in chosen]

    import ledgers

    ledgers.MAX_EVENTS = args.max_events
    ledgers.REBUILD = args.rebuild
    print(f"Sweepledger benchmarks ({'quick' if args.quick else 'full'}), "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}")  # fmt: skip
    print(_machine())
    print(f"code: {_commit()}; data: {HERE / '.data'}")
    print(f"load average at start: {_load()} (other work on the machine skews every figure)")
    started = time.perf_counter()
    for name in names:
        module = importlib.import_module(name)
        if not callable(getattr(module, "main", None)):
            continue
        began = time.perf_counter()
        module.main(args.quick)
        print(f"   ({name}: {time.perf_counter() - began:.1f} s)", flush=True)
    print(f"\nall benchmarks: {time.perf_counter() - started:.1f} s; load average now: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
