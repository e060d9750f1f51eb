"""Batches chained in an instance's lane: a full batch of online requests waits behind the running one and
starts in the same worker thread the moment it ends (flashml.runtime.batching.lane)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from flashml.runtime.batching import Batcher, BatchingConfig, RequestTimeoutError
from flashml.runtime.batching.lane import Lane
from flashml.runtime.runner import ModelRuntimeError
from tests.helpers.batching import Gated, answers, submitter, until, x


def serve(test, **settings):
    """Run ``test(batcher, model, submit)`` (``submitter``'s submit)."""
    async def main():
        model = Gated()
        batcher = Batcher(model, BatchingConfig(**settings), name="m")
        try:
            return await test(batcher, model, submitter(batcher))
        finally:
            model.open(100)
            await batcher.close()
    return asyncio.run(main())


def test_full_batches_waiting_are_chained_behind_the_running_one():
    async def test(batcher, model, submit):
        blocker = await submit(999)
        await until(lambda: model.started == 1)
        tasks = [await submit(i) for i in range(1, 7)]
        model.open(4)
        assert await answers([blocker, *tasks]) == [1998, 2, 4, 6, 8, 10, 12]
        assert model.batches == [[999], [1, 2], [3, 4], [5, 6]]
        # [1, 2] was cut once the blocker ended; [3, 4] and [5, 6] each while the batch before them ran, and
        # started in that batch's worker thread without going back through the event loop.
        assert batcher.stats()["chained_batches"] == 2
        assert model.threads[1] == model.threads[2] == model.threads[3]
    serve(test, max_batch_size=2)


def test_a_batch_that_could_still_grow_is_not_chained():
    async def test(batcher, model, submit):
        blocker = await submit(999)
        await until(lambda: model.started == 1)
        tasks = [await submit(i) for i in (1, 2, 3)]
        model.open(1)
        await until(lambda: model.started == 2)  # [1, 2, 3] runs; nothing else waits
        late = await submit(4)  # one row: the batch behind could take three more, so it is not cut yet
        assert batcher.stats()["queued"] == 1
        model.open(2)
        assert await answers([blocker, *tasks, late]) == [1998, 2, 4, 6, 8]
        assert model.batches == [[999], [1, 2, 3], [4]] and batcher.stats()["chained_batches"] == 0
    serve(test, max_batch_size=4)


def test_background_requests_are_not_chained_ahead_of_an_online_request_to_come():
    async def test(batcher, model, submit):
        blocker = await submit(999)
        await until(lambda: model.started == 1)
        jobs = [await submit(i, priority=1) for i in (10, 11, 12, 13)]
        model.open(1)
        await until(lambda: model.started == 2)  # the job batch [10, 11] runs; [12, 13] stays queued
        online = await submit(20)
        model.open(3)
        assert await answers([blocker, *jobs, online]) == [1998, 20, 22, 24, 26, 40]
        # [12, 13] was not cut while [10, 11] ran, so the online request went next (filled up with a job row).
        assert model.batches == [[999], [10, 11], [20, 12], [13]]
    serve(test, max_batch_size=2)


def test_a_chained_request_whose_deadline_passes_while_it_waits_is_not_run():
    async def test(batcher, model, submit):
        blocker = await submit(999)
        await until(lambda: model.started == 1)
        first = await submit(1)
        second = await submit(2, timeout_us=30_000)
        model.open(1)
        await until(lambda: model.started == 2)  # [1] runs and [2] waits in the lane behind it
        assert batcher.stats()["chained_batches"] == 1 and batcher.stats()["queued"] == 0
        await asyncio.sleep(0.1)  # past [2]'s deadline
        model.open(1)
        with pytest.raises(RequestTimeoutError) as err:
            await second
        assert err.value.status == 504 and "not run" in err.value.message
        assert await answers([blocker, first]) == [1998, 2]
        assert model.batches == [[999], [1]] and batcher.stats()["timed_out"] == 1
    serve(test, max_batch_size=1)


def test_a_failing_chained_batch_fails_only_its_requests():
    async def test(batcher, model, submit):
        blocker = await submit(999)
        await until(lambda: model.started == 1)
        tasks = [await submit(tag) for tag in (1, -2, 3)]
        model.open(4)
        assert await answers([blocker, *tasks]) == [1998, 2, "ModelRuntimeError", 6]
        assert batcher.stats()["chained_batches"] == 2 and batcher.stats()["failed"] == 1
    serve(test, max_batch_size=1)


def test_a_lane_runs_one_function_at_a_time_in_order_and_reports_each():
    async def main():
        lane = Lane(asyncio.get_running_loop())
        gate, running, seen = threading.Event(), [], []

        def job(i: int) -> int:
            running.append(i)
            assert len(running) == 1, "two functions of one lane ran at once"
            if i == 0:
                assert gate.wait(10)
            seen.append((i, threading.get_ident()))
            running.remove(i)
            if i == 2:
                raise ValueError("two")
            return i * 10

        futures = [lane.submit(job, i) for i in range(4)]
        assert lane.busy
        gate.set()
        results = await asyncio.gather(*futures, return_exceptions=True)
        lane.close()
        return results, seen, lane.busy

    results, seen, busy = asyncio.run(main())
    assert results[:2] == [0, 10] and isinstance(results[2], ValueError) and results[3] == 30
    assert [i for i, _ in seen] == [0, 1, 2, 3]
    assert len({thread for _, thread in seen}) == 1  # drained by the one worker thread, back to back
    assert not busy


def test_a_batch_that_cannot_reach_a_worker_thread_fails_instead_of_hanging():
    async def main():
        pool = ThreadPoolExecutor(1)
        pool.shutdown()  # as when the interpreter exits while a request is still queued
        batcher = Batcher(Gated(), BatchingConfig(max_batch_size=2), name="m", executor=pool)
        try:
            with pytest.raises(ModelRuntimeError):
                await asyncio.wait_for(batcher.run(x(1), ["y"]), 5)
            assert batcher.stats()["failed"] == 1 and batcher.stats()["in_flight"] == 0
        finally:
            await batcher.close()
    asyncio.run(main())
