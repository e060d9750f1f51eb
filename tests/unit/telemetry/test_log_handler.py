"""Log lines written on the event loop's thread leave in one write at the end of the loop's turn; others at once."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterator

import pytest

from flashml.telemetry.log_handler import LoopFlushedStreamHandler


@pytest.fixture
def pipe() -> Iterator[tuple[LoopFlushedStreamHandler, int]]:
    """The handler on a buffered stream into a pipe, and the pipe's read end (non-blocking)."""
    read, write = os.pipe()
    os.set_blocking(read, False)
    handler = LoopFlushedStreamHandler(open(write, "w", buffering=1 << 16, encoding="utf-8"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    yield handler, read
    handler.close()
    handler.stream.close()
    os.close(read)


def arrived(read: int) -> str:
    try:
        return os.read(read, 1 << 16).decode()
    except BlockingIOError:
        return ""


def line(text: str) -> logging.LogRecord:
    return logging.LogRecord("flashml.access", logging.INFO, "", 0, text, (), None)


def test_lines_on_the_loop_leave_together_when_its_turn_ends(pipe):
    handler, read = pipe
    writes: list[str] = []

    async def requests() -> None:
        for i in range(3):
            handler.handle(line(f"request {i}"))
        writes.append(arrived(read))  # still in the buffer: the turn has not ended
        await asyncio.sleep(0)
        writes.append(arrived(read))
        handler.handle(line("next turn"))
        await asyncio.sleep(0)
        writes.append(arrived(read))

    asyncio.run(requests())
    assert writes == ["", "request 0\nrequest 1\nrequest 2\n", "next turn\n"]


def test_lines_off_the_loop_are_written_at_once(pipe):
    handler, read = pipe
    handler.handle(line("at start-up"))
    assert arrived(read) == "at start-up\n"
    worker = threading.Thread(target=handler.handle, args=(line("from a thread"),))
    worker.start()
    worker.join()
    assert arrived(read) == "from a thread\n"


def test_nothing_is_lost_when_a_loop_stops_before_its_turn_ends(pipe):
    handler, read = pipe
    loop = asyncio.new_event_loop()

    async def log_and_stop() -> None:
        handler.handle(line("last words"))
        loop.stop()  # the loop runs no callback scheduled after this: the flush never comes

    loop.create_task(log_and_stop())
    loop.run_forever()
    loop.close()
    assert arrived(read) == ""
    handler.handle(line("after"))  # off the loop: written at once, with what the loop left in the buffer
    assert arrived(read) == "last words\nafter\n"

    async def on_a_new_loop() -> None:
        handler.handle(line("on a new loop"))  # the closed loop's flush does not count for this one
        await asyncio.sleep(0)

    asyncio.run(on_a_new_loop())
    assert arrived(read) == "on a new loop\n"
