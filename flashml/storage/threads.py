"""Store calls run on threads of their own, so a hung store cannot take the threads everything else uses.

``asyncio.to_thread`` shares the event loop's default pool (``min(32, cores + 4)`` threads: 6 on two cores)
with every other blocking call: session creation, file writes, dataset reads. Store calls that hang until
their deadline would hold all of them. Here they queue for ``STORE_THREADS`` threads instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

STORE_THREADS = 16  # as many as the S3 client's connection pool: more calls at once would only wait for one

P = ParamSpec("P")
R = TypeVar("R")
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="flashml-store")
        return _pool


async def in_store_thread(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``asyncio.to_thread`` for store calls (and work that makes them): on the store's own bounded threads."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)
