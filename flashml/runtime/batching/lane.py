"""One execution instance's lane: a worker thread of its own, where its batches run one at a time, back to back.

Handing a finished batch back to the event loop and the next batch out to a worker thread takes a loop
wake-up, a task step and a thread wake-up: half a millisecond or more on a busy machine, during which the
instance's cores sit idle (about a tenth of the time for the benchmark CNN at 32 clients). A batch submitted
while the lane is busy waits in the lane instead, and the worker thread that finishes one batch starts the
next at once; the loop hears of each result as before, through ``call_soon_threadsafe``.

Each lane has a thread of its own, so an instance's session is always called from the same thread. From a
shared pool, a lone request's run went to whichever idle thread the pool woke: once a burst of load had left
the pool several, consecutive runs of the benchmark CNN on all the cores took turns between them and each
took about a third longer, for the same CPU time (bench/README.md).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import partial
from typing import Any


class Lane:
    """Runs the functions submitted to it in its own worker thread (or in ``executor``), in order, never two at
    once. ``close`` lets what was submitted finish, then ends the thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str = "lane", executor: Executor | None = None
                 ) -> None:
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._owned = executor is None
        self._loop = loop
        self._lock = threading.Lock()
        self._busy = False  # a worker thread is draining the lane
        self._waiting: deque[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future]] = deque()

    @property
    def busy(self) -> bool:
        return self._busy

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Run ``fn(*args)`` after everything submitted before it (call on the loop); its result, as a future."""
        future = self._loop.create_future()
        with self._lock:
            if self._busy:
                self._waiting.append((fn, args, future))
                return future
            self._busy = True
        try:
            self._executor.submit(self._drain, fn, args, future)
        except BaseException:
            with self._lock:
                self._busy = False
            raise
        return future

    def close(self) -> None:
        """No more submissions; a thread of its own ends once what was submitted has run (an executor handed in
        stays its owner's)."""
        if self._owned:
            self._executor.shutdown(wait=False)

    def _drain(self, fn: Callable[..., Any], args: tuple[Any, ...], future: asyncio.Future) -> None:
        # In a worker thread: run, report, and go straight on with whatever waits in the lane.
        while True:
            try:
                settle = partial(_settle_result, future, fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                settle = partial(_settle_exception, future, exc)
            try:
                self._loop.call_soon_threadsafe(settle)
            except RuntimeError:  # the loop was closed meanwhile: nobody waits any more
                pass
            with self._lock:
                if not self._waiting:
                    self._busy = False
                    return
                fn, args, future = self._waiting.popleft()


def _settle_result(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _settle_exception(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
