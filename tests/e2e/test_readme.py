"""The README's Python API example runs as printed (a changed API or default breaks it here,
not in a reader's hands)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_block(section: str) -> str:
    """The first ```python block under the README heading `section`."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    found = re.search(r"```python\n(.*?)```", text[start:], re.DOTALL)
    assert found is not None, f"no python block under '## {section}'"
    return found.group(1)


def test_python_api_example_runs_as_printed(tmp_path: Path) -> None:
    """The example sweeps the demo workspace, reads the status, checks and replays: it exits 0
    and prints the verdict and the replayed headline it promises."""
    code = python_block("Python API")
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    verdict, headline = result.stdout.splitlines()
    assert verdict == "COMPLETE 5"
    assert headline.startswith("RUNNING"), headline  # event 50 is mid-run
    assert (tmp_path / "sweep.db").exists()
