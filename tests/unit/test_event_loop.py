"""The server's event loop (flashml.event_loop): fewer self-pipe writes, and never a lost wake-up."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time

import pytest

from flashml import event_loop
from flashml.event_loop import CoalescingEventLoop


def _pending_bytes(loop: asyncio.AbstractEventLoop) -> int:
    # What the loop will read from its self-pipe: one byte per write that was not skipped. Only peeked: the loop
    # must read them itself.
    try:
        return len(loop._ssock.recv(4096, socket.MSG_PEEK))  # type: ignore[attr-defined]
    except BlockingIOError:
        return 0


def test_calls_from_other_threads_share_one_self_pipe_write():
    loop = CoalescingEventLoop()
    try:
        ran: list[int] = []
        thread = threading.Thread(target=lambda: [loop.call_soon_threadsafe(ran.append, i) for i in range(50)])
        thread.start()
        thread.join()
        assert _pending_bytes(loop) == 1  # the standard loop writes 50
        loop.run_until_complete(asyncio.sleep(0))
        assert ran == list(range(50)) and _pending_bytes(loop) == 0
        # Once the loop has read the pipe, the next call writes again.
        loop.call_soon_threadsafe(ran.append, 50)
        assert _pending_bytes(loop) == 1
    finally:
        loop.close()


@pytest.fixture
def running_loop():
    """A CoalescingEventLoop running in its own thread, with no timers of its own: a wake-up that was wrongly
    skipped leaves it asleep for good, and the test's own waits (threading.Event, outside the loop) notice."""
    loop = CoalescingEventLoop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    if not thread.is_alive():
        loop.close()


def test_a_sleeping_loop_wakes_for_every_call_from_another_thread(running_loop):
    for i in range(300):
        ran = threading.Event()
        if i % 3:
            time.sleep(0.0005)  # let the loop fall asleep first
        running_loop.call_soon_threadsafe(ran.set)
        running_loop.call_soon_threadsafe(lambda: None)  # a second call, which skips the write
        assert ran.wait(10), f"call {i} never ran: the loop slept through it"


def _hammer(loop: asyncio.AbstractEventLoop, per_thread: int, threads: int) -> tuple[bool, int]:
    """Call the loop from several threads at once; whether every callback ran, and how many did."""
    count = 0
    finished = threading.Event()

    def bump() -> None:
        nonlocal count
        count += 1
        if count == per_thread * threads:
            finished.set()

    def calls() -> None:
        for i in range(per_thread):
            loop.call_soon_threadsafe(bump)
            if i % 97 == 0:
                time.sleep(0.0001)  # let the loop drain the pipe and fall asleep between bursts

    workers = [threading.Thread(target=calls) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return finished.wait(10), count


def test_many_threads_calling_at_once_lose_no_callback(running_loop):
    for r in range(40):
        finished, count = _hammer(running_loop, 500, 4)
        assert finished, f"round {r}: {count} of 2000 callbacks ran, the loop slept through the rest"


def test_signal_handlers_still_run():
    loop = CoalescingEventLoop()

    async def main() -> str:
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "SIGUSR1")
        loop.call_soon_threadsafe(lambda: None)  # a wake byte already waiting when the signal comes
        os.kill(os.getpid(), signal.SIGUSR1)
        return await asyncio.wait_for(got, 10)

    try:
        assert loop.run_until_complete(main()) == "SIGUSR1"
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        loop.close()


@pytest.fixture
def restore_policy():
    yield
    asyncio.set_event_loop_policy(None)


def test_install_makes_new_loops_coalesce(restore_policy):
    assert event_loop.install()
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, CoalescingEventLoop)
    finally:
        loop.close()
