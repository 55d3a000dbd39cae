"""Browser tests: real headless Chromium (Debian's), a real `jobyard web`, workers, scheduler.

Chromium comes from the system (`apt-get install chromium`), never downloaded at run time.
In CI (`CI=true`) a missing browser is a failure; elsewhere those tests are skipped.
Screenshots of every page go to `test-output/browser/`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests import services
from tests.factories import ROOT, Stack, make_settings

CHROMIUM = os.environ.get("JOBYARD_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-output" / "browser"


class Dashboard(NamedTuple):
    """The open dashboard's URL, the processes behind it, and a second web that needs keys."""

    url: str
    stack: Stack
    keyed_url: str


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module scope: sync Playwright keeps an event loop running in this thread until it stops,
    which would break later tests that call `asyncio.run`."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def dashboard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """`jobyard web` (open, and with keys) plus workers and the scheduler, on PostgreSQL + Redis."""
    from tests.conftest import _backend

    base = tmp_path_factory.mktemp("dashboard")
    for backend in _backend(request, "postgres-redis", base):
        settings = make_settings(backend, base / "data")
        stack = Stack(settings, base)
        try:
            url = stack.web()
            stack.workers("general", "media")
            stack.scheduler()
            # Two processes (`web.workers`): a login made through one is honoured by the other.
            keyed_url = stack.web(
                "web-keys", env={"JOBYARD_AUTH__MODE": "keys", "JOBYARD_WEB__WORKERS": "2"}
            )
            yield Dashboard(url, stack, keyed_url)
        finally:
            stack.close()
            services.delete_redis_queues(backend.broker_url, settings.queue_prefix)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; the test fails if the Content-Security-Policy blocked anything on it."""
    # A time zone far from UTC, so the dashboard's local times are seen to be converted.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo", locale="en-GB"
    )
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    refused: list[str] = []
    opened.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield opened
    context.close()
    assert not refused, f"the page broke its Content-Security-Policy: {refused}"


@pytest.fixture(scope="session", autouse=True)
def _screenshot_folder() -> None:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot as test-output/browser/NAME.png."""
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
