"""Worker processes for the read side: `python -m <module> ARGS`, answering on stdout.

Plain subprocesses rather than `multiprocessing`: its spawn mode re-imports the caller's main
module (which breaks any script without a `__main__` guard) and its fork mode copies a process
that may hold threads and open SQLite connections. A worker finds the very `sweepledger` its
caller imported (its folder is put first on `PYTHONPATH`), and a worker that fails is reported
as None so the caller does that part of the work itself: a worker can only make things faster.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

_IMPORT_ROOT = str(Path(__file__).parents[2])
"""The folder holding the `sweepledger` package this module was imported from."""


def spawn(module: str, *args: str) -> subprocess.Popen[bytes]:
    """Start `python -m module ARGS` with this interpreter and this `sweepledger`."""
    paths = [_IMPORT_ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
    )


def collect(procs: list[subprocess.Popen[bytes]]) -> Iterator[bytes | None]:
    """Each worker's answer in turn, None for one that failed (the caller redoes its part)."""
    try:
        for proc in procs:
            out, _ = proc.communicate()
            yield out if proc.returncode == 0 else None
    finally:
        stop(procs)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """End the workers still running (the caller failed, or stopped asking)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
