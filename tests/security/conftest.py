"""Fixtures of the security tests: chromium for the console's content-security-policy check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.browser import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b
