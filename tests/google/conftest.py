"""Fixtures for the Google tests: a real `sweep emulate` subprocess and the `sweep` command.

`emulators` starts emulator subprocesses on free loopback ports and always stops them (SIGTERM,
then SIGKILL if one does not exit), closing their pipes, whatever the test did. Each handle can
read the emulator's request counts and switch the workspace it serves.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sweepledger.collectors.emulator.control import EmulatorProcess
from sweepledger.collectors.emulator.server import Emulator as EmulatorApp
from sweepledger.collectors.emulator.server import EmulatorServer
from sweepledger.collectors.emulator.tokens import ServiceAccount


@dataclass
class EmulatorFactory:
    """Starts `sweep emulate` subprocesses (`EmulatorProcess`) and stops every one it started."""

    command: Any
    """The `sweep_command` fixture: its environment (without the developer's settings)."""
    base: Path
    started: list[EmulatorProcess] = field(default_factory=list)

    def __call__(self, workspace: str) -> EmulatorProcess:
        folder = self.base / f"emulator{len(self.started)}"
        emulator = EmulatorProcess(workspace, folder, env=self.command.env())
        self.started.append(emulator)
        return emulator

    def stop_all(self) -> None:
        for emulator in self.started:
            emulator.stop()


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
