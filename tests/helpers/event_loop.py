"""One event loop for a whole test, in a thread of its own.

asyncpg's connections belong to the loop that opened them: an engine used across several ``asyncio.run`` calls
fails on PostgreSQL ("attached to a different loop") where SQLite's thread-backed driver does not notice. A test
that keeps an engine between steps runs every step on this one loop, as the server runs everything on its one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """``run(coro)`` runs the coroutine on the thread's loop and returns (or raises) what it does."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        self.run(self._loop.shutdown_asyncgens())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
