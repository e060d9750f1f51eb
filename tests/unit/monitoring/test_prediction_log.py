"""The prediction log service on a real folder: sampling, the bounded queue, the writer, read, restarts."""

from __future__ import annotations

import asyncio
import os
import random

import numpy as np

from flashml.monitoring.prediction_log import PredictionLog
from flashml.monitoring.prediction_log_records import LogConfig

ON = LogConfig(enabled=True, retention_s=3600, max_bytes=10**9)


def _x(i: float) -> dict[str, np.ndarray]:
    return {"x": np.array([[i, 2 * i]], dtype=np.float32)}


def _y(i: float) -> dict[str, np.ndarray]:
    return {"y": np.array([[i]], dtype=np.float32)}


def _log(tmp_path, **kwargs) -> PredictionLog:
    return PredictionLog(tmp_path / "predictions", 3600, 10**9, **kwargs)


def test_off_by_default_and_sampled_at_the_models_rate(tmp_path):
    async def run():
        log = _log(tmp_path)
        await log.start()
        log.offer("m", 1, _x(1), _y(1), None)  # never switched on: nothing
        log.set_config("m", LogConfig(enabled=True, sample_rate=0.25, retention_s=3600, max_bytes=10**9))
        random.seed(7)
        for i in range(2000):
            log.offer("m", 1, _x(i), _y(i), f"r{i}")
        log.set_config("m", LogConfig(enabled=False))
        log.offer("m", 1, _x(1), _y(1), None)  # switched off again
        kept = await log.read("m", 1, last=5000)
        await log.close()
        return kept

    kept = asyncio.run(run())
    assert 420 < len(kept) < 580  # 500 expected
    assert [p.request_id for p in kept] == sorted((p.request_id for p in kept), key=lambda r: int(r[1:]))


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path):
    log = _log(tmp_path, queue_entries=2)  # no writer started: nothing leaves the queue
    log.set_config("m", ON)
    for i in range(5):
        log.offer("m", 1, _x(i), _y(i), None)
    assert log.dropped["m"] == 3
    small = _log(tmp_path, queue_bytes=20)  # and by the bytes of the arrays it holds
    small.set_config("m", ON)
    small.offer("m", 1, _x(1), _y(1), None)  # 12 bytes
    small.offer("m", 1, _x(1), _y(1), None)
    assert small.dropped["m"] == 1


def test_read_first_last_since_and_after_a_restart(tmp_path):
    async def write():
        log = _log(tmp_path)
        await log.start()
        log.set_config("m", ON)
        for i in range(10):
            log.offer("m", 1 + i % 2, _x(i), _y(i), f"r{i}")
            await asyncio.sleep(0.002)
        await log.flush()
        assert log.written[("m", 1)] == 5 and log.written[("m", 2)] == 5
        await log.close()
        log.offer("m", 1, _x(99), _y(99), None)  # after close: dropped, never written
        assert log.dropped["m"] == 1

    async def read():
        log = _log(tmp_path)  # a new start of the server on the same folder
        await log.start()
        log.set_config("m", ON)
        every = await log.read("m", 1)
        first = await log.read("m", 1, first=2)
        last = await log.read("m", 1, last=2)
        since = await log.read("m", 1, since=every[3].at)
        log.offer("m", 1, _x(10), _y(10), "r10")
        newest = await log.read("m", 1, last=1)
        await log.close()
        return every, first, last, since, newest

    asyncio.run(write())
    every, first, last, since, newest = asyncio.run(read())
    assert [p.request_id for p in every] == ["r0", "r2", "r4", "r6", "r8"]
    assert [p.request_id for p in first] == ["r0", "r2"] and [p.request_id for p in last] == ["r6", "r8"]
    assert [p.request_id for p in since] == ["r6", "r8"]
    assert [p.request_id for p in newest] == ["r10"]
    got = every[2]
    assert got.version == 1 and got.inputs is not None
    np.testing.assert_array_equal(got.inputs["x"], _x(4)["x"])
    assert got.input_summary["x"]["mean"] == [4.0, 8.0] and got.outputs["y"].tolist() == [[4.0]]


def test_the_writer_keeps_each_model_within_its_cap(tmp_path):
    async def run():
        log = _log(tmp_path)
        await log.start()
        log.set_config("m", LogConfig(enabled=True, retention_s=3600, max_bytes=8 * 4096))
        for i in range(400):
            log.offer("m", 1, {"x": np.full((1, 16), i, np.float32)}, _y(i), None)
            if i % 50 == 0:
                await log.flush()
        await log.flush()
        lines, size, _ = log.store.totals("m")
        kept = await log.read("m", 1, first=1000)
        await log.close()
        return lines, size, kept

    lines, size, kept = asyncio.run(run())
    assert size <= 8 * 4096 and 0 < lines < 400 and len(kept) == lines
    assert kept[-1].outputs["y"].tolist() == [[399.0]]  # the newest stay, the oldest went


def test_close_writes_what_is_still_queued(tmp_path):
    async def run():
        log = _log(tmp_path)
        await log.start()
        log.set_config("m", ON)
        for i in range(3):  # the writer has not run yet: all three wait in the queue
            log.offer("m", 1, _x(i), _y(i), None)
        await log.close()
        again = _log(tmp_path)
        await again.start()
        kept = await again.read("m", 1)
        await again.close()
        return kept

    assert [p.outputs["y"].tolist() for p in asyncio.run(run())] == [[[0.0]], [[1.0]], [[2.0]]]


def test_a_segment_whose_mtime_lags_its_newest_line_is_still_read_after_a_restart(tmp_path):
    """The kernel stamps mtimes with a coarse clock: a line stamped a few ms before its write may be newer than the
    file's mtime. Found at start-up, such a segment must not be skipped by a read since that line."""

    async def write() -> float:
        log = _log(tmp_path)
        await log.start()
        log.set_config("m", ON)
        for i in range(3):
            log.offer("m", 1, _x(i), _y(i), f"r{i}")
        await log.flush()
        newest = (await log.read("m", 1))[-1].at
        await log.close()
        return newest

    async def read_since(at: float) -> list[str]:
        log = _log(tmp_path)  # a new start of the server on the same folder
        await log.start()
        log.set_config("m", ON)
        found = await log.read("m", 1, since=at)
        await log.close()
        return [p.request_id for p in found]

    newest = asyncio.run(write())
    (segment,) = (tmp_path / "predictions").rglob("*.jsonl")
    os.utime(segment, (newest - 0.005, newest - 0.005))  # what a coarse clock can give: just before the line
    assert asyncio.run(read_since(newest)) == ["r2"]
