"""Where the server's log lines go: standard error, in one system call per turn of the event loop.

With the access log on, every request writes a line from the event loop's thread. Python's standard error is
line-buffered, so each line was a ``write`` system call of its own (about 1.5 us on the loop's thread, timeit);
under load the loop answers many requests per turn. Here lines collect in the stream's buffer and go out together
when the loop's turn ends (``call_soon``). A line logged anywhere else (start-up, shutdown, another thread) is
written at once, and so is everything still buffered then; logging's shutdown at exit flushes the rest. What a
crash of the process can lose is the current turn's lines: microseconds of them.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import IO


def _stderr() -> IO[str]:
    """Our own buffered writer on standard error's file descriptor, not line-buffered like ``sys.stderr``."""
    return open(sys.stderr.fileno(), "w", buffering=1 << 16, encoding="utf-8", errors="backslashreplace",
                closefd=False)


class LoopFlushedStreamHandler(logging.StreamHandler):
    """A ``StreamHandler`` whose flush, on a thread running an event loop, waits for the end of the loop's turn."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream if stream is not None else _stderr())
        self._scheduled_on: asyncio.AbstractEventLoop | None = None  # the loop that will flush at its turn's end

    def flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the loop's thread: at once, with whatever the loop left buffered
            super().flush()
            return
        if self._scheduled_on is not loop:  # (a loop that closed before its turn ended does not count)
            self._scheduled_on = loop
            loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._scheduled_on = None
        super().flush()
