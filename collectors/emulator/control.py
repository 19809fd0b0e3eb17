"""A `sweep emulate` subprocess and its admin endpoints, for tests and benchmarks.

The emulator runs in its own interpreter (as an operator would run it), so a sweep measured
against it does not share a GIL with it. `EmulatorProcess` starts it on a free loopback port,
reads the three lines it prints (URL, key file, ready `google://` source), talks to its
`/_emulator/` controls, and always stops it (SIGTERM, then SIGKILL) and closes its pipe: with
`filterwarnings = error`, a leaked pipe fails the test that leaked it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson


class EmulatorProcess:
    """`sweep emulate --workspace WORKSPACE` on 127.0.0.1; a context manager."""

    def __init__(
        self, workspace: str, folder: Path, *, env: Mapping[str, str] | None = None
    ) -> None:
        sweep = shutil.which("sweep")
        if sweep is None:
            raise RuntimeError("the sweep command is not installed")
        folder.mkdir(parents=True, exist_ok=True)
        self.key = folder / "key.json"
        self.stderr_path = folder / "emulator.err"
        with self.stderr_path.open("w") as stderr:
            command = [sweep, "emulate", "--workspace", workspace, "--port", "0"]
            self.process = subprocess.Popen(
                [*command, "--credentials-out", str(self.key)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=None if env is None else dict(env),
            )
        assert self.process.stdout is not None
        lines = [self.process.stdout.readline().strip() for _ in range(3)]
        if not lines[2].startswith("source: "):
            self.stop()
            detail = self.stderr_path.read_text()
            raise RuntimeError(f"the emulator did not start: {lines} {detail}")
        self.url = lines[0].rsplit(" at ", 1)[1]
        self.source = lines[2].split(": ", 1)[1]

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; the pipe is closed either way."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate(timeout=10)
        elif self.process.stdout is not None:
            self.process.stdout.close()

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One admin request; the decoded JSON answer."""
        data = orjson.dumps(dict(body)) if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return orjson.loads(response.read())

    def stats(self) -> dict[str, Any]:
        """Calls per method id, answers per status, and the quota model's figures."""
        return dict(self.call("GET", "/_emulator/stats"))

    def quota(self) -> dict[str, Any]:
        return dict(self.call("GET", "/_emulator/quota"))

    def set_quota(self, **rates: float | None) -> dict[str, Any]:
        """New quota rates now (`quota_user=`, `quota_project=`; None removes a limit)."""
        return dict(self.call("POST", "/_emulator/quota", rates))

    def reset_stats(self) -> None:
        self.call("POST", "/_emulator/stats/reset")

    def serve(self, workspace: str) -> None:
        self.call("POST", "/_emulator/workspace", {"workspace": workspace})
