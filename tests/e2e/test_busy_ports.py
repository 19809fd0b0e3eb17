"""A port another process holds is bad input for both servers: one line, exit 2."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SweepCLI


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize("command", ["serve", "emulate"])
def test_a_busy_port_is_refused_as_bad_input(
    workdir: Path, cli: SweepCLI, busy_port: int, command: str
) -> None:
    """`sweep emulate` said exit 1 (internal error) where `sweep serve` said 2: both say 2."""
    result = cli.run(command, "--port", str(busy_port), cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"Error: cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    )
    assert list(workdir.iterdir()) == []
