"""Acceptance 2: the page in headless Chromium follows a run live, its death and its rerun.

Debian's Chromium (`/usr/bin/chromium`, installed by `.ci/install-browser`) is driven by the
Playwright package; no browser is ever downloaded. Screenshots of each state are saved as test
artefacts under `artifacts/browser/` (git-ignored; `$SWEEP_ARTIFACTS` moves them).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, sync_playwright

if TYPE_CHECKING:
    from conftest import Ops

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-proxy-server",
]
SLOW = "sim://?subjects=4&page_size=10&latency_ms=60"
ARTIFACTS = Path(
    os.environ.get("SWEEP_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts")
)


@pytest.fixture
def page() -> Iterator[Page]:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: install Debian's chromium with `bash .ci/install-browser`"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 1100})
        finally:
            browser.close()


def _verdict_is(page: Page, verdict: str, timeout_s: float) -> None:
    page.wait_for_function(
        "v => document.querySelector('#verdict')?.dataset.verdict === v",
        arg=verdict,
        timeout=timeout_s * 1000,
    )


def _pairs_done(page: Page) -> int:
    return int(page.locator("#pairs-done").get_attribute("data-value") or 0)


def test_the_page_follows_a_run_live_its_kill_and_its_rerun(
    tmp_path: Path, ops: Ops, page: Page
) -> None:
    """With a slow sweep running the page shows RUNNING and its pair count rises without a
    reload; after SIGKILL of the run it shows INTERRUPTED within a few seconds; after a rerun,
    COMPLETE. A screenshot of each state is saved."""
    shots = ARTIFACTS / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "sweep.db"
    server, base = ops.serve(db, tmp_path)
    page.goto(base + "/")
    page.evaluate("window.__loadedOnce = 'yes'")
    run = ops.start("run", "--db", str(db), "--source", SLOW, "--exhaust", "--quiet", cwd=tmp_path)

    _verdict_is(page, "RUNNING", 15)
    first = _pairs_done(page)
    page.wait_for_function(
        "n => Number(document.querySelector('#pairs-done')?.dataset.value) > n",
        arg=first,
        timeout=15_000,
    )
    rose_to = _pairs_done(page)
    assert rose_to > first
    assert "items this run" in page.locator("#progress").inner_text()
    page.screenshot(path=str(shots / "1-running.png"), full_page=True)
    assert run.poll() is None, "the run ended before it could be killed: make SLOW slower"

    run.send_signal(signal.SIGKILL)
    ops.finish(run)
    _verdict_is(page, "INTERRUPTED", 6)
    assert "died without ending" in page.locator("#headline").inner_text()
    page.screenshot(path=str(shots / "2-interrupted.png"), full_page=True)

    rerun = ops.run("run", "--db", str(db), "--source", SLOW, "--exhaust", "--quiet", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-1000:]
    _verdict_is(page, "COMPLETE", 6)
    runs = page.locator("table.runs tbody tr")
    assert runs.count() == 2
    assert "aborted" in runs.nth(1).inner_text() and "completed" in runs.nth(0).inner_text()
    page.screenshot(path=str(shots / "3-complete.png"), full_page=True)
    assert page.evaluate("window.__loadedOnce") == "yes", "the page was reloaded"

    server.terminate()
    ops.finish(server)
