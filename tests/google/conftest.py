"""Fixtures for the Google tests: a real `sweep emulate` subprocess and the `sweep` command.

`emulators` starts emulator subprocesses on free loopback ports and always stops them (SIGTERM,
then SIGKILL if one does not exit), closing their pipes, whatever the test did. Each handle can
read the emulator's request counts and switch the workspace it serves.
"""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sweepledger.collectors.emulator.server import Emulator as EmulatorApp
from sweepledger.collectors.emulator.server import EmulatorServer
from sweepledger.collectors.emulator.tokens import ServiceAccount


@dataclass
class Emulator:
    """A running `sweep emulate`: its URL, key file, ready-made source URL and controls."""

    process: subprocess.Popen[str]
    url: str
    credentials: Path
    source: str
    stderr_path: Path

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = (
            json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        )
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, int]:
        """Calls per Google method id since the last reset."""
        return dict(self._call("GET", "/_emulator/stats")["routes"])

    def statuses(self) -> dict[str, dict[str, int]]:
        """Answers per Google method id and HTTP status since the last reset."""
        return dict(self._call("GET", "/_emulator/stats")["statuses"])

    def reset_stats(self) -> None:
        self._call("POST", "/_emulator/stats/reset")

    def serve(self, workspace: str) -> None:
        """Serve another sim:// workspace from now on (e.g. the next generation)."""
        self._call("POST", "/_emulator/workspace", {"workspace": workspace})


@dataclass
class EmulatorFactory:
    command: Any
    """The `sweep_command` fixture: `sweep emulate` is started through it."""
    base: Path
    started: list[Emulator] = field(default_factory=list)

    def __call__(self, workspace: str, *extra: str) -> Emulator:
        folder = self.base / f"emulator{len(self.started)}"
        folder.mkdir()
        key = folder / "key.json"
        err = folder / "stderr.log"
        with err.open("w") as stderr:
            process = self.command.start(
                "emulate",
                "--workspace",
                workspace,
                "--port",
                "0",
                "--credentials-out",
                str(key),
                *extra,
                stderr=stderr,
            )
        lines = [process.stdout.readline() for _ in range(3)] if process.stdout else []
        fields = dict(line.strip().split(": ", 1) for line in lines[1:] if ": " in line)
        if "source" not in fields:
            process.kill()
            process.communicate(timeout=10)
            raise AssertionError(f"emulator did not start: {lines} {err.read_text()}")
        url = lines[0].strip().rsplit(" at ", 1)[1]
        emulator = Emulator(process, url, Path(fields["credentials"]), fields["source"], err)
        self.started.append(emulator)
        return emulator

    def stop_all(self) -> None:
        for emulator in self.started:
            process = emulator.process
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate(timeout=10)
            elif process.stdout is not None:
                process.stdout.close()


@pytest.fixture
def emulators(tmp_path: Path, sweep_command: Any) -> Iterator[EmulatorFactory]:
    """Start emulators with `emulators(SIM_URL)`; every one is stopped after the test."""
    factory = EmulatorFactory(sweep_command, tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def module_emulators(
    tmp_path_factory: pytest.TempPathFactory, sweep_command: Any
) -> Iterator[EmulatorFactory]:
    """The same, shared by the tests of one module (for read-only use of one workspace)."""
    factory = EmulatorFactory(sweep_command, tmp_path_factory.mktemp("emulators"))
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def inproc_emulator(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], EmulatorServer]]:
    """Start emulators on threads of this process (fast unit tests); each has `key_path`, its
    key file. All are stopped when the module's tests are done."""
    started: list[EmulatorServer] = []

    def start(workspace: str) -> EmulatorServer:
        account = ServiceAccount.create()
        running = EmulatorServer(
            0, lambda url: EmulatorApp(workspace, "admin@example.com", url + "/token", account)
        )
        key = tmp_path_factory.mktemp("key") / "key.json"
        key.write_bytes(json.dumps(account.key_file(running.url + "/token")).encode())
        running.key_path = key  # type: ignore[attr-defined]
        running.serve_in_thread()
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.stop()


class GoogleCLI:
    """The `sweep_command` helpers plus what the Google tests add, as the `gcli` fixture."""

    def __init__(self, command: Any) -> None:
        self.command = command
        self.run = command.run
        self.query = command.query
        self.env = command.env
        self.snapshot = command.snapshot
        self.ITEM_TABLES = command.ITEM_TABLES

    def start(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
        """Start `sweep ARGS...` in the background (for kill tests); output is discarded."""
        return self.command.start(
            *args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def sim_sweep(self, folder: Path, *urls: str) -> Path:
        """A reference: `sweep run --exhaust` of each sim:// URL in turn, into folder/sweep.db."""
        folder.mkdir(parents=True, exist_ok=True)
        for url in urls:
            done = self.run("run", "--exhaust", "--quiet", "--source", url, cwd=folder)
            assert done.returncode == 0, done.stderr[-2000:]
        return folder / "sweep.db"


@pytest.fixture(scope="session")
def gcli(sweep_command: Any) -> GoogleCLI:
    return GoogleCLI(sweep_command)
