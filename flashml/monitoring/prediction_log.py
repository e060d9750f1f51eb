"""Prediction logging: a sampled share of each model's requests, kept in files that survive restarts.

The request path calls ``offer`` after the answer is known: a dict lookup (is the model's log on?), a random
draw against its sample rate, and an append to a bounded in-memory queue; a full queue drops the prediction
and counts it (``flashml_prediction_log_dropped``), so logging never blocks or slows an answer by more than
that. One background task takes what is queued and writes it in a worker thread (JSON encoding included):
``prediction_log_store`` appends JSON Lines segments and removes the oldest past the model's retention and byte
cap. ``read`` answers what drift detection and the console look at; ``flush`` waits for what was offered.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from random import random

import numpy as np

from flashml.monitoring import prediction_log_codec as codec
from flashml.monitoring.prediction_log_records import LogConfig, LoggedPrediction
from flashml.monitoring.prediction_log_store import Segment, SegmentStore, lines, private_dir

log = logging.getLogger("flashml.prediction_log")
QUEUE_ENTRIES = 1024  # predictions waiting to be written, all models together
QUEUE_BYTES = 64 * 1024 * 1024  # and the bytes of their arrays
TICK_S = 60.0  # retention is enforced at least this often, also while nothing is logged
READ_LIMIT = 10_000  # what ``read`` answers at most when it is given no ``first`` or ``last``


@dataclass(slots=True)
class _Offered:
    at: float
    model: str
    version: int
    request_id: str | None
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    config: LogConfig
    nbytes: int


class PredictionLog:
    def __init__(self, root: Path, retention_s: float, max_bytes: int, *, queue_entries: int = QUEUE_ENTRIES,
                 queue_bytes: int = QUEUE_BYTES, tick_s: float = TICK_S) -> None:
        self.root = root
        self.exports = root / ".exports"  # Parquet files being sent (no model name starts with a dot); cleared at start
        self.retention_s = retention_s  # the server's limits: no model's setting may pass them
        self.max_bytes = max_bytes
        self.store = SegmentStore(root)
        self.active: dict[str, LogConfig] = {}  # models whose log is on: the request path's one lookup
        self.configs: dict[str, LogConfig] = {}  # every model's settings, on or off
        self.written: Counter[tuple[str, int]] = Counter()  # since start, per (model, version)
        self.dropped: Counter[str] = Counter()  # since start, per model: the queue was full
        self._queue: deque[_Offered] = deque()
        self._queue_entries, self._queue_bytes, self._tick_s = queue_entries, queue_bytes, tick_s
        self._queued_bytes = 0
        self._offered = 0  # sequence numbers: flush waits until everything offered so far is written
        self._done = 0
        self._wake = asyncio.Event()
        self._written_now = asyncio.Condition()
        self._io = asyncio.Lock()  # one thread at a time touches the files' writer side
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def config(self, model: str) -> LogConfig:
        """The model's settings as stored (off when never set; 0 for a limit: the server's)."""
        return self.configs.get(model) or LogConfig()

    def limits(self, model: str) -> tuple[float, int]:
        """(retention in seconds, byte cap) of the model's log: its own, never past the server's (0: the server's)."""
        config = self.config(model)
        return (min(config.retention_s or self.retention_s, self.retention_s),
                min(config.max_bytes or self.max_bytes, self.max_bytes))

    def set_config(self, model: str, config: LogConfig) -> None:
        self.configs[model] = config
        if config.enabled:
            self.active[model] = config
        else:
            self.active.pop(model, None)

    # ---- the request path ----

    def sampled(self, model: str) -> LogConfig | None:
        """The model's settings when this request is to be logged (its log is on and the draw says so)."""
        config = self.active.get(model)
        if config is None or (config.sample_rate < 1.0 and random() >= config.sample_rate):
            return None
        return config

    def offer(self, model: str, version: int, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
              request_id: str | None) -> None:
        """Log one answered request if the model's log is on and the sample draw says so. Never blocks."""
        config = self.sampled(model)
        if config is not None:
            self.put(model, version, inputs, outputs, request_id, config)

    def put(self, model: str, version: int, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
            request_id: str | None, config: LogConfig) -> None:
        """Queue one prediction already sampled (``sampled``), or drop and count it when the queue is full."""
        nbytes = sum(a.nbytes for a in inputs.values()) + sum(a.nbytes for a in outputs.values())
        if (self._closing or len(self._queue) >= self._queue_entries
                or self._queued_bytes + nbytes > self._queue_bytes):
            self.dropped[model] += 1
            return
        # The arrays are kept as they are (no copy on the request path): nothing writes to them after the answer.
        self._queue.append(_Offered(time.time(), model, version, request_id, inputs, outputs, config, nbytes))
        self._queued_bytes += nbytes
        self._offered += 1
        self._wake.set()

    # ---- the writer ----

    async def start(self) -> None:
        await asyncio.to_thread(private_dir, self.root)
        await asyncio.to_thread(shutil.rmtree, self.exports, True)
        await asyncio.to_thread(self.store.scan)
        self._task = asyncio.create_task(self._run(), name="flashml-prediction-log")

    async def close(self) -> None:
        """Write what is queued, close the files; later offers are dropped."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._task = None

    async def flush(self) -> None:
        """Wait until every prediction offered before this call is written (or dropped by a failed write)."""
        target = self._offered
        async with self._written_now:
            while self._done < target and self._task is not None and not self._task.done():
                self._wake.set()
                await self._written_now.wait()

    async def _run(self) -> None:
        last_enforced = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._tick_s)
            except TimeoutError:
                pass
            self._wake.clear()
            batch = [self._queue.popleft() for _ in range(len(self._queue))]
            self._queued_bytes -= sum(o.nbytes for o in batch)
            enforce_all = time.monotonic() - last_enforced >= self._tick_s
            if enforce_all:
                last_enforced = time.monotonic()
            if batch or enforce_all:
                async with self._io:
                    try:  # counted here, on the event loop, where the metrics and views read them
                        self.written.update(await asyncio.to_thread(self._write, batch, enforce_all))
                    except Exception:  # noqa: BLE001 - a full disk must not stop the writer; what failed is lost
                        log.exception("could not write %d logged predictions", len(batch))
            self._done += len(batch)
            async with self._written_now:
                self._written_now.notify_all()
            if self._closing and not self._queue:
                break
        await asyncio.to_thread(self.store.close)

    def _write(self, batch: list[_Offered], enforce_all: bool) -> Counter[tuple[str, int]]:
        """In a worker thread: encode and append the batch, then keep each model it touched within its limits.
        Answers the lines written per (model, version)."""
        written: Counter[tuple[str, int]] = Counter()
        grouped: dict[tuple[str, int], list[bytes]] = {}
        for o in batch:
            try:
                line = codec.encode(o.at, o.version, o.request_id, o.inputs, o.outputs, o.config)
            except Exception:  # noqa: BLE001 - one odd tensor costs its own line, never the batch
                log.exception("could not encode a prediction of %s v%d", o.model, o.version)
                continue
            grouped.setdefault((o.model, o.version), []).append(line)
        for (model, version), got in grouped.items():
            retention_s, max_bytes = self.limits(model)
            self.store.append(model, version, b"".join(got), max_bytes, retention_s / 8)
            written[(model, version)] += len(got)
        for model in self.store.models() if enforce_all else {m for m, _ in grouped}:
            self.store.enforce(model, *self.limits(model))
        return written

    async def forget(self, model: str, version: int | None = None) -> None:
        """A model (or version) was deleted: its log goes too, so a name or number used again starts empty."""
        if version is None:
            self.configs.pop(model, None)
            self.active.pop(model, None)
        async with self._io:
            await asyncio.to_thread(self.store.forget, model, version)

    # ---- readers ----

    async def read(self, model: str, version: int, *, first: int | None = None, last: int | None = None,
                   since: float | None = None) -> list[LoggedPrediction]:
        """The version's logged predictions, oldest first: the ``first`` N, or the ``last`` N, of those at or after
        ``since`` (UNIX seconds) and within the retention; at most READ_LIMIT when neither N is given."""
        await self.flush()
        return await asyncio.to_thread(self._read, model, version, first, last, since)

    def _read(self, model: str, version: int, first: int | None, last: int | None,
              since: float | None) -> list[LoggedPrediction]:
        horizon = max(since or 0.0, time.time() - self.limits(model)[0])
        segments = self.store.segments(model, version)
        if last is not None:
            kept: deque[bytes] = deque(maxlen=max(0, last))
            for segment in reversed(segments):  # newest first, until N are found
                if len(kept) >= last or segment.last_at < horizon:
                    break
                found = deque(self.lines_between(segment, horizon, None), maxlen=last - len(kept))
                kept.extendleft(reversed(found))
            chosen: list[bytes] = list(kept)
        else:
            limit = READ_LIMIT if first is None else first
            chosen = []
            for segment in segments:
                if len(chosen) >= limit:
                    break
                if segment.last_at < horizon:
                    continue
                for line in self.lines_between(segment, horizon, None):
                    chosen.append(line)
                    if len(chosen) >= limit:
                        break
        out = []
        for line in chosen:
            try:
                out.append(codec.decode(line))
            except (ValueError, KeyError, TypeError):  # msgspec.DecodeError is a ValueError
                continue
        return out

    @staticmethod
    def lines_between(segment: Segment, since: float | None, until: float | None) -> Iterator[bytes]:
        """A segment's whole lines logged at or after ``since`` and before ``until``; unreadable ones skipped."""
        for line in lines(segment):
            try:
                at = codec.stamp_decoder.decode(line).at
            except ValueError:  # a line that is not ours (or was torn and later followed by another)
                continue
            if (since is None or at >= since) and (until is None or at < until):
                yield line
