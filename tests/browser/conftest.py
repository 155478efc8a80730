"""Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Playwright's sync API runs an event loop in the test thread, which trips Django's async-unsafe
guard for ORM calls made by the test itself; those calls are ordinary synchronous code, so the
guard is lifted for this package. Screenshots go to test-artifacts/screenshots/.

A click that loads a page returns once the new page has started to load (Playwright waits for the
navigation to commit, not for the document to be parsed), so a plain read right after it (a
count, a text, an evaluate) could see a half-built page. Every click here therefore also waits
for the page's load event, which returns at once when the click loaded nothing; a test reads the
page it clicked to, whichever way it reads it.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from tests.conftest import PASSWORD  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api")


def _waits_for_the_page_it_loads(click):
    @functools.wraps(click)
    def wrapper(self, *args, **kwargs):
        result = click(self, *args, **kwargs)
        if not kwargs.get("no_wait_after") and not kwargs.get("trial"):
            (self if isinstance(self, sync_api.Page) else self.page).wait_for_load_state()
        return result

    return wrapper


@pytest.fixture(scope="session", autouse=True)
def _clicks_wait_for_the_page_they_load():
    with pytest.MonkeyPatch.context() as patch:
        for cls in (sync_api.Page, sync_api.Locator):
            patch.setattr(cls, "click", _waits_for_the_page_it_loads(cls.click))
        yield


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module, stopped afterwards.

    While Playwright's sync API is running, code in this thread runs in another contextvars
    context, so Django's connection handler hands out fresh connection wrappers (same test
    database) that lack the migrated data pytest-django serialized at setup; copy it over so
    serialized_rollback keeps working. Stopping Playwright at the end of the module returns the
    rest of the suite to its own wrappers.
    """
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from django.db import connections

    serialized = {c.alias: c._test_serialized_contents for c in connections.all()
                  if getattr(c, "_test_serialized_contents", None)}
    with sync_api.sync_playwright() as p:
        for alias, contents in serialized.items():
            connections[alias]._test_serialized_contents = contents
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser, live_server):
    """new_page(viewport=(w, h), locale="ko-KR") -> a page in a fresh browser context."""
    contexts = []

    def make(viewport=(1280, 900), locale="ko-KR"):
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, locale=locale,
                                  base_url=live_server.url)
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def shot():
    """shot(page, "name") saves test-artifacts/screenshots/name.png (full page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def login():
    def do(page, username: str, password: str = PASSWORD):
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit].btn-primary")
        page.wait_for_load_state()

    return do
