"""Triton-style dynamic batcher: a Runner that queues requests and runs them in batches on worker instances."""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import Counter, deque
from collections.abc import Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from flashml.errors import BadRequestError, FlashMLError, UnavailableError
from flashml.runtime.batching.config import BatchingConfig
from flashml.runtime.batching.inline import InlinePolicy
from flashml.runtime.batching.lane import Lane
from flashml.runtime.batching.merge import merge, merge_key, rows, split
from flashml.runtime.batching.queue import Pending, RequestQueue, timeout_error
from flashml.runtime.runner import Execute, ModelRuntimeError

CHAIN_PRIORITY = 0  # requests of this priority (online) or better may be cut ahead, behind a running batch


def _execute_batch(execute: Execute, inputs: list[dict[str, np.ndarray]], output_names: list[str],
                   config: BatchingConfig, deadlines: list[float | None] | None = None
                   ) -> tuple[list[dict[str, np.ndarray] | None], float, float]:
    """The batch's outputs per request (None for a request whose deadline passed before the batch started: it
    is not run), and the CPU time (on this thread) and wall time that merge, run and split took."""
    # Merge and split run where the model runs: in a worker thread, unless the whole batch is cheap (inline.py).
    cpu, wall = time.thread_time(), time.perf_counter()
    count = len(inputs)
    live = None
    if deadlines is not None:  # the batch may have waited in its lane (lane.py) past some requests' deadlines
        now = time.monotonic()  # the event loop's clock
        live = [i for i, d in enumerate(deadlines) if d is None or d > now]
        inputs = [inputs[i] for i in live]
    parts: list[dict[str, np.ndarray] | None] = []
    if inputs:
        merged, row_counts, lengths = merge(inputs, config)
        parts.extend(split(execute(merged, output_names), row_counts, lengths, config))
    if live is not None:  # back in the batch's order, None where a request was left out
        ran, parts = parts, [None] * count
        for i, part in zip(live, ran, strict=True):
            parts[i] = part
    return parts, time.thread_time() - cpu, time.perf_counter() - wall


class Batcher:
    """Queue requests, cut fair batches of one merge key, run them on ``instance_count`` workers.

    ``wide``: where CPU instances split the cores among them, one more instance that uses all of them. A batch
    that finds every instance idle and nobody else waiting runs there, as fast as one instance of all the
    cores would run it; while it runs, no other instance starts a batch (the cores are taken).

    Every instance, the wide one too, runs its batches in a worker thread of its own (lane.py), so each session
    is always called from the same thread; ``executor``, where given, runs them all instead.
    """

    def __init__(self, execute: Execute | Sequence[Execute], config: BatchingConfig, *, name: str = "",
                 inline_run_s: float = 0.0, wide: Execute | None = None, executor: Executor | None = None) -> None:
        self._executes = list(execute) if isinstance(execute, Sequence) else [execute]
        if not self._executes:
            raise ValueError("a Batcher needs at least one execute function")
        self._wide = wide
        self._wide_lane: Lane | None = None  # made on the first wide batch
        self._wide_busy = False  # a batch runs on the wide instance: the others wait
        self.config = config
        self._executor = executor
        self.name = name
        self._queue = RequestQueue(config.max_batch_size, config.max_queue_size, retry_after=self._retry_after)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: dict[int, asyncio.Task] = {}
        self._running: dict[int, deque[_Started]] = {}  # per instance, the batches handed to its lane
        self._waiters: deque[asyncio.Future] = deque()
        self._closed = False
        self._in_flight = 0
        self._batches = 0
        self._rows = 0
        self._requests = 0
        self._failed = 0
        self._cancelled = 0
        self._chained = 0
        self._wide_runs = 0
        self._histogram: Counter[int] = Counter()
        self._batch_seconds = 0.0  # moving average, for the Retry-After estimate
        # Cumulative seconds for Triton's statistics extension (flashml.protocol.triton_stats): answered requests
        # from queueing to answer, their wait in the queue, the run of their batch (each request is charged its
        # whole batch's run, as Triton counts), and per batch size the runs of the batches that size.
        self._answered = 0
        self._answered_s = 0.0
        self._queued_s = 0.0
        self._run_s = 0.0
        self._runs_by_size: dict[int, list[float]] = {}  # rows -> [batches, seconds]
        self._inline = InlinePolicy(inline_run_s)  # cheap batches run on the loop (flashml.runtime.batching.inline)

    # ---- the Runner protocol -------------------------------------------------------------------------
    async def run(self, inputs: dict[str, np.ndarray], output_names: list[str], *, key: str = "", weight: int = 1,
                  priority: float = 0, timeout_us: int | None = None) -> dict[str, np.ndarray]:
        """Queue one request and wait for its own slice of the batch outputs."""
        if self._closed:
            raise self._unloaded()
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise BadRequestError(f"weight must be a whole number of at least 1, not {weight!r}.", code="bad_weight")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise BadRequestError(f"priority must be a whole number, not {priority!r}.", code="bad_priority")
        cfg = self.config
        timeout = cfg.default_timeout_us if timeout_us is None else timeout_us
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise BadRequestError(f"timeout_us must be a whole number of at least 0, not {timeout!r}.",
                                  code="bad_timeout")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._spawn()
        now = loop.time()
        req = Pending(inputs, list(output_names), loop.create_future(), key, priority, weight,
                      now + timeout / 1e6 if timeout else None, timeout, enqueued_at=now)
        self._compute(req, cfg)
        self._queue.push(req, loop)
        self._requests += 1
        self._wake(everyone=False)
        try:
            return await req.future
        except asyncio.CancelledError:
            # The client went away: if it is still waiting, it never runs.
            if self._queue.remove(req):
                self._cancelled += 1
            raise

    async def close(self) -> None:
        """Fail queued requests with model_unloaded and stop the workers (a running batch still answers)."""
        if self._closed:
            return
        self._closed = True
        for req in self._queue.drain():
            if not req.future.done():
                req.future.set_exception(self._unloaded())
        self._wake(everyone=True)
        if self._wide_lane is not None:  # a batch running there still answers; then its thread ends
            self._wide_lane.close()

    # ---- live changes and numbers --------------------------------------------------------------------
    def reconfigure(self, config: BatchingConfig) -> None:
        """Apply new settings now (call on the event loop); queued requests stay, re-keyed for the new rules."""
        old, self.config = self.config, config
        self._queue.max_batch_size = config.max_batch_size
        self._queue.max_queue_size = config.max_queue_size
        if (old.max_batch_size, old.padded_inputs) != (config.max_batch_size, config.padded_inputs):
            for req, exc in self._queue.rekey(lambda r: self._compute(r, config)):
                self._failed += 1
                if not req.future.done():
                    req.future.set_exception(exc)
        if self._loop is not None and not self._closed:
            self._spawn()
        self._wake(everyone=True)

    def stats(self) -> dict[str, Any]:
        """Counters for the metrics endpoint; histogram maps rows per batch to how many batches had it."""
        return {
            "queued": len(self._queue),
            "queued_rows": self._queue.rows_queued,
            "in_flight": self._in_flight,
            "instances": len(self._workers),
            "requests": self._requests,
            "batches": self._batches,
            "rows": self._rows,
            "histogram": dict(sorted(self._histogram.items())),
            "rejected": self._queue.rejected,
            "timed_out": self._queue.timed_out,
            "failed": self._failed,
            "cancelled": self._cancelled,
            "inline_batches": self._inline.inline_runs,
            "chained_batches": self._chained,
            "wide_batches": self._wide_runs,
        }

    def timings(self) -> dict[str, Any]:
        """Cumulative counts and seconds since load (Triton's statistics extension reads them)."""
        return {"answered": self._answered, "answered_s": self._answered_s, "queued_s": self._queued_s,
                "run_s": self._run_s, "failed": self._failed + self._queue.timed_out + self._queue.rejected,
                "batches": self._batches, "rows": self._rows,
                "runs_by_size": {rows: (int(n), secs) for rows, (n, secs) in sorted(self._runs_by_size.items())}}

    # ---- internals -----------------------------------------------------------------------------------
    def _unloaded(self) -> UnavailableError:
        model = f"Model {self.name}" if self.name else "The model"
        return UnavailableError(f"{model} was unloaded before this request ran.", code="model_unloaded")

    @staticmethod
    def _compute(req: Pending, cfg: BatchingConfig) -> None:
        if cfg.max_batch_size:
            req.rows = rows(req.inputs)
            # Different output lists never share a batch: each batch runs exactly the outputs its requests want.
            req.merge_key = (merge_key(req.inputs, cfg), tuple(req.output_names))
        else:
            req.rows, req.merge_key = 1, None

    def _retry_after(self) -> int:
        cfg = self.config
        batches = math.ceil(self._queue.rows_queued / max(1, cfg.max_batch_size))
        return max(1, math.ceil(self._batch_seconds * batches / cfg.instance_count))

    def _spawn(self) -> None:
        assert self._loop is not None
        for index in range(self.config.instance_count):
            task = self._workers.get(index)
            if task is None or task.done():
                self._workers[index] = self._loop.create_task(self._worker(index), name=f"batcher-{self.name}-{index}")

    def _wake(self, *, everyone: bool) -> None:
        # One idle worker per new request is enough: a woken worker always re-reads the queue.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    async def _wait(self, until: float | None) -> None:
        assert self._loop is not None
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        timer = self._loop.call_at(until, _settle, waiter) if until is not None else None
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if not waiter.done():
                waiter.cancel()

    def _ready(self, key: Hashable, cfg: BatchingConfig) -> bool:
        queued = self._queue.rows_for(key)
        return queued >= cfg.max_batch_size or bool(cfg.preferred_batch_sizes and
                                                    queued >= cfg.preferred_batch_sizes[0])

    def _cut(self, key: Hashable, cfg: BatchingConfig) -> int:
        if not cfg.max_batch_size or not cfg.preferred_batch_sizes:
            return cfg.max_batch_size
        available = min(self._queue.rows_for(key), cfg.max_batch_size)
        fits = bisect.bisect_right(cfg.preferred_batch_sizes, available)
        return cfg.preferred_batch_sizes[fits - 1] if fits else cfg.max_batch_size

    def _chainable(self, cfg: BatchingConfig) -> bool:
        """A full batch of online requests waits: worth cutting now, to start the moment the running one ends
        (it cannot grow by waiting, and background work is never put ahead of an online request to come)."""
        head = self._queue.head()
        return (head is not None and head.priority <= CHAIN_PRIORITY and bool(cfg.max_batch_size)
                and self._queue.rows_for(head.merge_key) >= cfg.max_batch_size
                and all(self._running.values()))  # an idle instance takes it at once instead

    async def _worker(self, index: int) -> None:
        loop, queue = self._loop, self._queue
        assert loop is not None
        lane = self._lane(str(index))
        running: deque[_Started] = deque()  # batches handed to this instance's lane, oldest first
        self._running[index] = running
        try:
            while running or (not self._closed and index < self.config.instance_count):
                cfg = self.config
                if running:
                    # Not behind a run on all the cores: what waits goes to every instance once it ends.
                    if len(running) == 1 and not running[0].wide and not self._closed and self._chainable(cfg):
                        batch = queue.take(cfg.max_batch_size, loop.time())
                        if batch:
                            running.append(self._start(index, lane, batch, cfg))
                            self._chained += 1
                    started = running[0]  # stays in running while it runs: this instance is busy
                    try:
                        await self._finish(started)
                    except asyncio.CancelledError:
                        running.popleft()
                        self._abandon(started, *running)
                        self._in_flight -= len(running)
                        raise
                    running.popleft()
                    continue
                head = queue.head()
                if head is None or self._wide_busy:
                    await self._wait(None)
                    continue
                if cfg.max_batch_size and cfg.max_queue_delay_us and not self._ready(head.merge_key, cfg):
                    # Triton's delay counts from the oldest request's arrival, so a backlog runs at once.
                    until = head.enqueued_at + cfg.max_queue_delay_us / 1e6
                    if loop.time() < until:
                        await self._wait(until)
                        continue
                batch = queue.take(self._cut(head.merge_key, cfg), loop.time())
                if batch:
                    running.append(self._start(index, lane, batch, cfg))
        finally:
            lane.close()  # what it still holds runs; then its thread ends
            if self._workers.get(index) is asyncio.current_task():
                del self._workers[index]
                del self._running[index]

    def _lane(self, which: str) -> Lane:
        assert self._loop is not None
        return Lane(self._loop, f"{self.name or 'model'}-{which}", self._executor)

    def _start(self, index: int, lane: Lane, batch: list[Pending], cfg: BatchingConfig) -> _Started:
        """Run a cheap batch now, on the loop (inline.py); hand any other to the instance's lane."""
        assert self._loop is not None
        execute = self._executes[index % len(self._executes)]
        batch_rows = sum(r.rows for r in batch)
        inline = self._inline.inline(batch_rows)
        wide_execute = self._wide if not inline and not self._in_flight and not len(self._queue) else None
        wide = wide_execute is not None
        if wide_execute is not None:
            execute, self._wide_busy = wide_execute, True
            self._wide_runs += 1
            if self._wide_lane is None:
                self._wide_lane = self._lane("wide")
            lane = self._wide_lane
        self._in_flight += 1
        started = _Started(batch, batch_rows, self._loop.time(), inline, wide)
        deadlines = [r.deadline for r in batch] if any(r.deadline is not None for r in batch) else None
        args = (execute, [r.inputs for r in batch], batch[0].output_names, cfg, deadlines)
        try:
            if started.inline:
                started.future = self._loop.create_future()
                started.future.set_result(_execute_batch(*args))
            else:
                started.future = lane.submit(_execute_batch, *args)
        except Exception as exc:  # noqa: BLE001 - a failing run, or an executor shut down: _finish fails the batch
            started.future = self._loop.create_future()
            started.future.set_exception(exc)
        return started

    async def _finish(self, started: _Started) -> None:
        """Wait for a started batch and answer its requests (every failure fails this batch only)."""
        assert self._loop is not None and started.future is not None
        batch, batch_rows = started.batch, started.rows
        wall_s = None
        try:
            parts, cpu_s, wall_s = await started.future
            self._inline.record(batch_rows, cpu_s, wall_s, inline=started.inline)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure fails this batch only; the worker goes on
            self._failed += len(batch)
            for req in batch:
                if not req.future.done():
                    req.future.set_exception(_per_request(exc))
        else:
            now, answered = self._loop.time(), 0
            for req, part in zip(batch, parts, strict=True):
                if part is None:  # its deadline passed while the batch waited in the lane: it did not run
                    self._queue.timed_out += 1
                    if not req.future.done():
                        req.future.set_exception(timeout_error(req))
                elif not req.future.done():
                    req.future.set_result(part)
                    answered += 1
                    self._answered_s += now - req.enqueued_at
                    self._queued_s += started.at - req.enqueued_at
            self._answered += answered
            self._run_s += answered * wall_s
            runs = self._runs_by_size.setdefault(batch_rows, [0, 0.0])
            runs[0] += 1
            runs[1] += wall_s
        finally:
            self._in_flight -= 1
            if started.wide:
                self._wide_busy = False
                self._wake(everyone=True)  # the cores are free: every instance may take a batch again
        self._batches += 1
        self._rows += batch_rows
        self._histogram[batch_rows] += 1
        took = wall_s if wall_s is not None else self._loop.time() - started.at
        self._batch_seconds += 0.2 * (took - self._batch_seconds)

    def _abandon(self, *batches: _Started) -> None:
        # The worker was cancelled (its loop is going away): nobody will answer these requests any more.
        for started in batches:
            for req in started.batch:
                if not req.future.done():
                    req.future.set_exception(self._unloaded())


@dataclass(slots=True)
class _Started:
    """A batch taken from the queue: running inline (already done), or in (or waiting in) its lane."""

    batch: list[Pending]
    rows: int
    at: float  # loop.time() when it was taken
    inline: bool
    wide: bool = False  # on the wide instance (all the cores)
    future: asyncio.Future | None = None


def _settle(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _per_request(exc: Exception) -> Exception:
    # Our own errors carry status and code; anything else becomes a fresh ModelRuntimeError per caller.
    if isinstance(exc, FlashMLError):
        return exc
    error = ModelRuntimeError(str(exc) or type(exc).__name__)
    error.__cause__ = exc
    return error
