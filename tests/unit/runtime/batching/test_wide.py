"""CPU instances that split the cores, and the wide instance of all the cores beside them: a batch that finds
every instance idle and nobody else waiting runs there, and while it runs no other instance starts one."""

from __future__ import annotations

import asyncio
import threading

from flashml.runtime.batching import Batcher, BatchingConfig
from tests.helpers.batching import Gated, answers, submitter, until, x


def serve_split(test, *, with_wide: bool = True, **settings):
    """Run ``test(batcher, narrow, wide, submit)`` on two narrow instances and a wide one (all Gated; the wide one
    unused without ``with_wide``)."""
    async def main():
        narrow, wide = [Gated(), Gated()], Gated()
        batcher = Batcher(narrow, BatchingConfig(instance_count=2, **settings), name="m",
                          wide=wide if with_wide else None)
        try:
            return await test(batcher, narrow, wide, submitter(batcher))
        finally:
            for model in (*narrow, wide):
                model.open(100)
            await batcher.close()
    return asyncio.run(main())


def test_a_lone_request_runs_on_all_the_cores():
    async def test(batcher, narrow, wide, submit):
        for tag in (1, 2, 3):  # one at a time, each answered before the next comes
            task = await submit(tag)
            wide.open(1)
            assert await answers([task]) == [tag * 2]
        assert wide.batches == [[1], [2], [3]] and narrow[0].batches == narrow[1].batches == []
        assert batcher.stats()["wide_batches"] == 3
    serve_split(test, max_batch_size=4)


def test_requests_that_come_during_a_wide_run_wait_for_it_then_share_the_cores():
    async def test(batcher, narrow, wide, submit):
        first = await submit(1)
        await until(lambda: wide.started == 1)
        later = [await submit(tag) for tag in (2, 3, 4, 5)]
        await asyncio.sleep(0.05)
        # The cores are taken: neither split instance has started a batch while the wide one runs.
        assert narrow[0].started == narrow[1].started == 0 and batcher.stats()["queued"] == 4
        wide.open(1)
        await until(lambda: narrow[0].started + narrow[1].started == 2)  # both at once, on half the cores each
        for model in narrow:
            model.open(1)
        assert await answers([first, *later]) == [2, 4, 6, 8, 10]
        assert wide.batches == [[1]]
        assert sorted(narrow[0].batches + narrow[1].batches) == [[2, 3], [4, 5]]
        assert batcher.stats()["wide_batches"] == 1
    serve_split(test, max_batch_size=2)


def test_a_lone_request_while_a_split_instance_is_busy_does_not_take_all_the_cores():
    async def test(batcher, narrow, wide, submit):
        first = await submit(1)
        await until(lambda: wide.started == 1)
        second, third = await submit(2), await submit(3)
        wide.open(1)
        await until(lambda: narrow[0].started == narrow[1].started == 1)
        narrow[0].open(1)  # one split instance finishes; the other still runs
        await until(lambda: batcher.stats()["in_flight"] == 1)
        fourth = await submit(4)  # alone in the queue, but half the cores are busy: the idle split instance
        await until(lambda: narrow[0].started == 2)
        narrow[0].open(1)
        narrow[1].open(1)
        assert await answers([first, second, third, fourth]) == [2, 4, 6, 8]
        assert wide.batches == [[1]] and batcher.stats()["wide_batches"] == 1
        assert len(narrow[0].batches) == 2 and len(narrow[1].batches) == 1
    serve_split(test, max_batch_size=1)


def test_without_a_wide_instance_split_instances_serve_as_before():
    async def main():
        narrow = [Gated(), Gated()]
        batcher = Batcher(narrow, BatchingConfig(instance_count=2, max_batch_size=2), name="m")
        try:
            task = asyncio.create_task(batcher.run(x(7), ["y"]))
            await until(lambda: narrow[0].started + narrow[1].started == 1)
            for model in narrow:
                model.open(1)
            return await answers([task]), batcher.stats()["wide_batches"]
        finally:
            for model in narrow:
                model.open(100)
            await batcher.close()
    assert asyncio.run(main()) == ([14], 0)


def test_with_every_instance_busy_a_full_batch_is_chained_and_with_one_idle_it_is_not():
    async def test(batcher, narrow, wide, submit):
        first = await submit(1)
        await until(lambda: narrow[0].started + narrow[1].started == 1)
        second = await submit(2)
        await until(lambda: narrow[0].started == narrow[1].started == 1)  # both instances run
        third, fourth = await submit(3), await submit(4)
        narrow[0].open(1)  # one instance finishes, takes [3]; the other still runs: [4] is chained behind [3]
        await until(lambda: batcher.stats()["chained_batches"] == 1)
        assert batcher.stats()["queued"] == 0
        narrow[0].open(2)
        narrow[1].open(1)
        assert await answers([first, second, third, fourth]) == [2, 4, 6, 8]
        assert len(narrow[0].batches) == 3 and len(narrow[1].batches) == 1
    serve_split(test, with_wide=False, max_batch_size=1)


def test_each_instance_runs_in_a_thread_of_its_own_always_the_same_and_it_ends_with_the_batcher():
    """A session called from whichever pool thread was idle ran slower once a burst had left several idle
    (lane.py): every instance, the wide one too, keeps one thread, through lone requests and a burst."""
    async def main():
        narrow, wide = [Gated(), Gated()], Gated()
        batcher = Batcher(narrow, BatchingConfig(instance_count=2, max_batch_size=1), name="split", wide=wide)
        submit = submitter(batcher)
        try:
            for phase in range(2):  # lone requests, a burst on both split instances, lone requests again
                for tag in (1, 2, 3):
                    task = await submit(tag)
                    wide.open(1)
                    assert await answers([task]) == [tag * 2]
                if phase == 0:
                    # Queued together: none comes alone, so the split instances take them all.
                    tasks = [asyncio.create_task(batcher.run(x(tag), ["y"])) for tag in range(10, 16)]
                    for model in narrow:
                        model.open(3)
                    # Which instance takes how many is the machine's to decide: on a busy one a thread starts
                    # late and the other takes a fourth batch, then waits for a permit its twin holds. Once all
                    # six have started, one more permit each frees whichever waits.
                    await until(lambda: narrow[0].started + narrow[1].started == 6)
                    for model in narrow:
                        model.open(1)
                    assert await answers(tasks) == [tag * 2 for tag in range(10, 16)]
            assert len(wide.batches) == 6 and len(narrow[0].batches) + len(narrow[1].batches) == 6
            assert narrow[0].batches and narrow[1].batches, "the burst ran on one split instance only"
            threads = [set(model.threads) for model in (wide, *narrow)]
            assert [len(t) for t in threads] == [1, 1, 1], "an instance ran in more than one thread"
            assert len(set.union(*threads)) == 3, "two instances shared a thread"
            assert batcher.stats()["wide_batches"] == 6
        finally:
            for model in (*narrow, wide):
                model.open(100)
            await batcher.close()
        await until(lambda: not [t for t in threading.enumerate() if t.name.startswith("split-")])

    asyncio.run(main())
