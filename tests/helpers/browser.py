"""What the browser tests share beside their fixtures (tests/browser/conftest.py): how chromium starts, the
screenshots, signing in on the page, and the checks at phone width.

Every page a test visits can be saved as a screenshot under test-output/ for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling hosts this offline machine cannot reach.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


class Shots:
    """Numbered screenshots of one test: test-output/<module>-<test>-01-<step>.png, ..."""

    def __init__(self, page, test_name: str) -> None:
        self.page = page
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.count = 0

    def __call__(self, step: str) -> Path:
        OUTPUT.mkdir(exist_ok=True)
        self.count += 1
        path = OUTPUT / f"{self.prefix}-{self.count:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def chromium() -> Iterator[object]:
    """Debian's chromium through Playwright (its own browser download is not used here)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install '.[test]' brings playwright")
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser tests need Debian's chromium: apt-get install chromium (.ci/run does it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def sign_in_as_new_user(page, server, name: str, role: str, next_path: str) -> None:
    """Make a console user with the CLI, open ``next_path``, sign in on the page it redirects to, land back."""
    from tests.helpers.server_process import flashml

    flashml("users", "create", name, "--role", role, "--password-stdin", "--data-dir", str(server.data_dir),
            input=f"{name} password 1\n")
    page.goto(server.url + next_path)
    assert "/login" in page.url
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(f"{name} password 1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + next_path)


PHONE = {"width": 375, "height": 740}

_PROBLEMS_PATH = Path(__file__).parent / "page_problems.js"
_PROBLEMS_JS = "\n".join(line for line in _PROBLEMS_PATH.read_text().splitlines()
                         if not line.startswith("//"))  # Playwright wants the function itself


def assert_usable_at_phone_width(page, main_action) -> None:
    """The page at 375 px: no sideways scrolling (tables and code scroll inside their own box), a label for
    every field, a name for every button, readable contrast, and Tab reaches ``main_action`` (a locator)
    with a visible focus ring."""
    page.set_viewport_size(PHONE)
    # The browser sends the resize event (charts redraw at the new width in it) with the next frames: let them
    # pass before measuring, or a chart drawn at the old width still counts as overflow.
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    problems = page.evaluate(_PROBLEMS_JS)
    assert problems == {"overflow": None, "unlabelled": [], "unnamedButtons": [], "lowContrast": []}, problems
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    target = main_action.element_handle()
    for _ in range(600):  # a page full of rows (the shared test server) has hundreds of stops
        page.keyboard.press("Tab")
        if page.evaluate("el => el === document.activeElement", target):
            break
    else:
        raise AssertionError(f"Tab never reached the main action {main_action}")
    ring = page.evaluate("el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth]; }", target)
    assert ring[0] != "none" and ring[1] != "0px", f"no visible focus on the main action: {ring}"
