"""The server's asyncio event loop: the standard one, with fewer system calls for wake-ups from other threads."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable


class CoalescingEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop, except that ``call_soon_threadsafe`` writes to the self-pipe only when no byte
    is waiting there already.

    Granian hands every request to the loop with ``call_soon_threadsafe`` from its own threads, and the standard
    loop writes one byte to its self-pipe per call: a system call (and often a thread wake-up) made while
    holding the GIL. It was about a tenth of the server's CPU per request for a small model under load
    (bench/README.md). One unread byte already wakes the loop, and the loop then runs every callback queued
    so far, so the writes after it add nothing.

    Why no wake-up is lost: a caller queues its callback before it looks at the flag, and the loop clears the
    flag only after it has drained the pipe, in an iteration whose next wait sees the queued callback and does
    not sleep. Signal numbers written to the pipe by the C signal handler are still read as before.
    """

    _wake_pending = False

    def _write_to_self(self) -> None:
        if self._wake_pending:
            return
        self._wake_pending = True
        super()._write_to_self()  # type: ignore[misc]  # asyncio's private self-pipe hook, not in typeshed

    def _read_from_self(self) -> None:
        super()._read_from_self()  # type: ignore[misc]  # asyncio's private self-pipe hook, not in typeshed
        self._wake_pending = False


def install() -> bool:
    """Make ``asyncio.new_event_loop()`` build a CoalescingEventLoop in this process and in the server worker
    forked from it. Where the worker is spawned instead of forked (Granian spawns where ``multiprocessing``
    does not fork), or where asyncio has no loop policies any more, the standard loop serves: slower, same
    behaviour. Returns whether it was installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # loop policies are deprecated from Python 3.14
        base = getattr(asyncio, "DefaultEventLoopPolicy", None)
        if base is None:
            return False
        policy = type("CoalescingEventLoopPolicy", (base,), {"_loop_factory": CoalescingEventLoop})
        asyncio.set_event_loop_policy(policy())
    return True


async def every(interval_s: float, run_round: Callable[[], Awaitable[object]], log: logging.Logger, what: str) -> None:
    """Run ``run_round`` every ``interval_s`` seconds until cancelled; a round that fails is logged as ``what``
    failing, and the next round tries again (the background checks: canary guard, drift)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_round()
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("%s failed", what)
