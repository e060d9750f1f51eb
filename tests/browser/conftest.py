"""A real browser for the console tests: Debian's chromium driven by Playwright, headless, offline; one per
module, and a fresh page per test whose screenshots land in test-output/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.browser import Shots, chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One chromium per test module: Playwright's sync API keeps an event loop running in this thread while
    it is open, which would break every later test that calls asyncio.run."""
    with chromium() as b:
        yield b


@pytest.fixture()
def page(browser, request) -> Iterator[object]:
    # Playwright's wait_for_function evaluates its string in the page, which the console's CSP forbids (no
    # unsafe-eval); tests/security/test_browser_csp.py checks the policy itself, in a context of its own.
    context = browser.new_context(viewport={"width": 1200, "height": 800}, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    external: list[str] = []
    pg.on("request", lambda r: external.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:",
                                                                                 "about:")) else None)
    # The module's name too: two modules may each have a test_viewer_reads_only.
    module = request.node.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    pg.shots = Shots(pg, f"{module}-{request.node.name}")  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert external == [], f"the page fetched from outside the machine: {external}"
