"""The waiting room: priorities first, weighted round-robin across API keys, FIFO within a key, timeouts."""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flashml.errors import FlashMLError, TensorError, UnavailableError


class QueueFullError(UnavailableError):
    """The model's queue is full; the client should retry after a moment."""

    code = "queue_full"

    def __init__(self, message: str, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers = {"Retry-After": str(max(1, int(retry_after)))}


class RequestTimeoutError(FlashMLError):
    """A request waited in the queue longer than its timeout and was not run."""

    status = 504
    code = "request_timeout"


@dataclass(eq=False, slots=True)
class Pending:
    """One queued request and the future its caller waits on."""

    inputs: dict[str, np.ndarray]
    output_names: list[str]
    future: asyncio.Future
    key: str = ""
    priority: float = 0  # lower goes first: online 0 (Triton priority 1: -1; 2 and more: between 0 and 1), jobs 1
    weight: int = 1
    deadline: float | None = None  # loop.time() after which it must not run
    timeout_us: int = 0
    rows: int = 1
    merge_key: Hashable = None
    enqueued_at: float = 0.0
    timer: asyncio.TimerHandle | None = None
    queued: bool = False


def timeout_error(req: Pending) -> RequestTimeoutError:
    return RequestTimeoutError(f"The request waited longer than its timeout ({req.timeout_us} µs) in the model's "
                               "queue and was not run.", details={"timeout_us": req.timeout_us})


@dataclass(slots=True)
class _Level:
    """The requests of one priority: a deque per key and the round-robin ring of keys that have some."""

    queues: dict[str, deque[Pending]] = field(default_factory=dict)
    ring: list[str] = field(default_factory=list)  # ring[0] is the key whose turn it is
    credits: dict[str, int] = field(default_factory=dict)  # turns left in this round
    weights: dict[str, int] = field(default_factory=dict)


class RequestQueue:
    """Bounded queue of Pending requests; ``take`` cuts one batch of a single merge key in fair order."""

    def __init__(self, max_batch_size: int, max_queue_size: int, *,
                 retry_after: Callable[[], int] = lambda: 1) -> None:
        self.max_batch_size = max_batch_size
        self.max_queue_size = max_queue_size
        self.retry_after = retry_after
        self._levels: dict[float, _Level] = {}
        self._priorities: list[float] = []  # sorted priorities that have requests
        self._rows_by_key: dict[Hashable, int] = {}
        self._count = 0
        self.rows_queued = 0
        self.timed_out = 0
        self.rejected = 0

    def __len__(self) -> int:
        return self._count

    def push(self, req: Pending, loop: asyncio.AbstractEventLoop) -> None:
        """Queue a request (raises QueueFullError or batch_too_large) and arm its timeout."""
        if self.max_queue_size and self._count >= self.max_queue_size:
            self.rejected += 1
            raise QueueFullError(f"The model's queue is full ({self.max_queue_size} requests waiting); "
                                 "retry shortly.", retry_after=self.retry_after(),
                                 details={"max_queue_size": self.max_queue_size})
        if self.max_batch_size and req.rows > self.max_batch_size:
            self.rejected += 1
            raise TensorError(f"This request has {req.rows} rows but the model's max_batch_size is "
                              f"{self.max_batch_size}; split it into smaller requests.", code="batch_too_large",
                              details={"rows": req.rows, "max_batch_size": self.max_batch_size})
        level = self._levels.get(req.priority)
        if level is None:
            level = self._levels[req.priority] = _Level()
            bisect.insort(self._priorities, req.priority)
        q = level.queues.get(req.key)
        if q is None:
            q = level.queues[req.key] = deque()
            level.ring.append(req.key)
            level.credits[req.key] = req.weight
        level.weights[req.key] = req.weight
        q.append(req)
        req.queued = True
        self._count += 1
        self.rows_queued += req.rows
        self._rows_by_key[req.merge_key] = self._rows_by_key.get(req.merge_key, 0) + req.rows
        if req.deadline is not None:
            req.timer = loop.call_at(req.deadline, self._expire, req)

    def head(self) -> Pending | None:
        """The request that goes next: lowest priority number, the key whose turn it is, its oldest."""
        for priority in self._priorities:
            level = self._levels[priority]
            return level.queues[level.ring[0]][0]
        return None

    def rows_for(self, merge_key: Hashable) -> int:
        """Rows queued that could share a batch with this merge key."""
        return self._rows_by_key.get(merge_key, 0)

    def _forget(self, req: Pending) -> None:
        # Bookkeeping shared by take, remove and expire; the caller already popped it from its deque.
        req.queued = False
        if req.timer is not None:
            req.timer.cancel()
            req.timer = None
        self._count -= 1
        self.rows_queued -= req.rows
        left = self._rows_by_key[req.merge_key] - req.rows
        if left:
            self._rows_by_key[req.merge_key] = left
        else:
            del self._rows_by_key[req.merge_key]

    def _drop_key(self, priority: float, level: _Level, key: str) -> None:
        del level.queues[key], level.credits[key], level.weights[key]
        level.ring.remove(key)
        if not level.ring:
            del self._levels[priority]
            self._priorities.remove(priority)

    def remove(self, req: Pending) -> bool:
        """Drop a request that is still queued (cancelled or expired); False when it was already taken."""
        if not req.queued:
            return False
        level = self._levels[req.priority]
        q = level.queues[req.key]
        q.remove(req)  # O(requests of this key), only on cancel or timeout
        self._forget(req)
        if not q:
            self._drop_key(req.priority, level, req.key)
        return True

    def _expire(self, req: Pending) -> None:
        if self.remove(req):
            self.timed_out += 1
            if not req.future.done():
                req.future.set_exception(timeout_error(req))

    def take(self, max_rows: int, now: float) -> list[Pending]:
        """Cut one batch: same merge key as the head, at most max_rows rows (0 = exactly one request)."""
        batch: list[Pending] = []
        total = 0
        merge_key: Hashable = None
        for priority in list(self._priorities):
            level = self._levels[priority]
            i = 0
            while i < len(level.ring):
                key = level.ring[i]
                q = level.queues[key]
                req = q[0]
                if req.deadline is not None and req.deadline <= now:
                    self._expire(req)  # its timer is late; it must still never run
                    continue  # same index: this key's next request, or the next key if it emptied
                if batch and (req.merge_key != merge_key or total + req.rows > max_rows):
                    i += 1  # this key's oldest cannot join; it keeps its place in the round
                    continue
                q.popleft()
                self._forget(req)
                batch.append(req)
                total += req.rows
                merge_key = req.merge_key
                level.credits[key] -= 1
                if not q:
                    self._drop_key(priority, level, key)
                elif level.credits[key] <= 0:
                    # Turn used up: to the back of the ring with a fresh round of credits.
                    del level.ring[i]
                    level.ring.append(key)
                    level.credits[key] = level.weights[key]
                if max_rows <= 0 or total >= max_rows:
                    return batch
        return batch

    def drain(self) -> list[Pending]:
        """Remove and return every queued request (on close)."""
        out: list[Pending] = []
        for level in self._levels.values():
            for q in level.queues.values():
                out.extend(q)
        for req in out:
            self._forget(req)
        self._levels.clear()
        self._priorities.clear()
        return out

    def rekey(self, compute: Callable[[Pending], None]) -> list[tuple[Pending, Exception]]:
        """Recompute rows and merge keys after a reconfigure; return the requests that no longer fit."""
        failed: list[tuple[Pending, Exception]] = []
        self._rows_by_key.clear()
        self.rows_queued = 0
        for priority in list(self._priorities):
            level = self._levels[priority]
            for key in list(level.ring):
                q = level.queues[key]
                for req in list(q):
                    try:
                        compute(req)
                        if self.max_batch_size and req.rows > self.max_batch_size:
                            raise TensorError(f"This request has {req.rows} rows but the model's max_batch_size "
                                              f"is now {self.max_batch_size}.", code="batch_too_large")
                    except Exception as exc:  # noqa: BLE001 - any failure fails this request only
                        q.remove(req)
                        req.queued = False
                        if req.timer is not None:
                            req.timer.cancel()
                        self._count -= 1
                        failed.append((req, exc))
                        continue
                    self.rows_queued += req.rows
                    self._rows_by_key[req.merge_key] = self._rows_by_key.get(req.merge_key, 0) + req.rows
                if not q:
                    self._drop_key(priority, level, key)
        return failed
