"""The console in process: one app per module on a data folder of its own, served to Litestar's TestClient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.in_process import InProcessApp


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    with InProcessApp(tmp_path_factory.mktemp("console") / "data") as running:
        yield running
