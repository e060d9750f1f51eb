"""Batcher: batching, fairness, limits, timeouts, failures and live changes, with fake blocking runtimes."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from flashml.errors import TensorError, UnavailableError
from flashml.runtime.batching import Batcher, BatchingConfig, PadSpec, QueueFullError, RequestTimeoutError
from flashml.runtime.runner import ModelRuntimeError


class Execute:
    """Records each batch it runs (the tags in x, column 0) and doubles x."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.shapes: list[dict[str, tuple[int, ...]]] = []
        self.inputs: list[dict[str, np.ndarray]] = []

    def __call__(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        self.shapes.append({k: v.shape for k, v in inputs.items()})
        self.inputs.append({k: v.copy() for k, v in inputs.items()})
        first = next(iter(inputs.values()))
        self.batches.append([int(t) for t in first.reshape(first.shape[0], -1)[:, 0]] if first.ndim else [])
        return {name: first * 2 for name in output_names}

    @property
    def tags(self) -> list[int]:
        return [t for batch in self.batches for t in batch]


class SlowExecute(Execute):
    """Blocks every batch until ``release`` is set, so the queue can be filled deterministically."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        self.started.set()
        assert self.release.wait(10)
        return super().__call__(inputs, output_names)


class ErrorExecute(Execute):
    """Fails any batch holding a negative tag."""

    def __call__(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        if (inputs["x"] < 0).any():
            raise ModelRuntimeError("boom: negative input")
        return super().__call__(inputs, output_names)


def x(tag: int, n: int = 1, width: int = 2) -> dict[str, np.ndarray]:
    return {"x": np.full((n, width), tag, dtype=np.float32)}


def run_async(test):
    """Run ``test(batcher, execute)`` in a fresh loop with a batcher built from the given settings."""
    def runner(execute: Execute, **settings):
        async def main():
            batcher = Batcher(execute, BatchingConfig(**settings), name="m")
            try:
                return await test(batcher, execute)
            finally:
                if isinstance(execute, SlowExecute):
                    execute.release.set()
                await batcher.close()
        return asyncio.run(main())
    return runner


async def until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.001)


async def block(batcher: Batcher, slow: SlowExecute, tag: int = 999) -> asyncio.Task:
    """Start one request that holds the only instance, and wait until it runs."""
    task = asyncio.create_task(batcher.run(x(tag), ["y"]))
    await asyncio.to_thread(slow.started.wait, 5)
    return task


async def queue(batcher: Batcher, *requests: tuple) -> list[asyncio.Task]:
    """Submit requests (inputs, kwargs) in order and wait until all are queued."""
    before = batcher.stats()["queued"]
    tasks = []
    for inputs, kwargs in requests:
        tasks.append(asyncio.create_task(batcher.run(inputs, ["y"], **kwargs)))
        await asyncio.sleep(0)  # submit in this order
    await until(lambda: batcher.stats()["queued"] == before + len(requests))
    return tasks


def test_concurrent_requests_share_one_batch_and_get_their_rows():
    async def test(batcher, ex):
        reqs = [x(1, 1), x(2, 2), x(3, 3)]
        outs = await asyncio.gather(*(batcher.run(r, ["y"]) for r in reqs))
        for req, out in zip(reqs, outs, strict=True):
            np.testing.assert_array_equal(out["y"], req["x"] * 2)
        assert ex.batches == [[1, 2, 2, 3, 3, 3]]
        stats = batcher.stats()
        assert stats["batches"] == 1 and stats["rows"] == 6 and stats["histogram"] == {6: 1}
    run_async(test)(Execute(), max_batch_size=8)


def test_delay_gathers_a_late_request():
    async def test(batcher, ex):
        first = asyncio.create_task(batcher.run(x(1), ["y"]))
        await asyncio.sleep(0.02)
        assert not first.done()  # still waiting for company
        await batcher.run(x(2), ["y"])
        await first
        assert ex.batches == [[1, 2]]
    run_async(test)(Execute(), max_batch_size=8, max_queue_delay_us=2_000_000)


def test_delay_ends_early_when_batch_is_full():
    async def test(batcher, ex):
        await asyncio.wait_for(asyncio.gather(*(batcher.run(x(i), ["y"]) for i in range(4))), 5)
        assert ex.batches == [[0, 1, 2, 3]]
    run_async(test)(Execute(), max_batch_size=4, max_queue_delay_us=30_000_000)


def test_no_delay_runs_alone_when_idle():
    async def test(batcher, ex):
        await batcher.run(x(1), ["y"])
        await batcher.run(x(2), ["y"])
        assert ex.batches == [[1], [2]]
    run_async(test)(Execute(), max_batch_size=8)


def test_max_batch_size_is_respected():
    async def test(batcher, ex):
        outs = await asyncio.gather(*(batcher.run(x(i), ["y"]) for i in range(10)))
        assert [int(o["y"][0, 0]) for o in outs] == [2 * i for i in range(10)]
        assert all(len(b) <= 4 for b in ex.batches) and sorted(ex.tags) == list(range(10))
        rows_too_many = await asyncio.gather(batcher.run(x(5, 5), ["y"]), return_exceptions=True)
        assert isinstance(rows_too_many[0], TensorError) and rows_too_many[0].code == "batch_too_large"
        assert "max_batch_size" in rows_too_many[0].message
    run_async(test)(Execute(), max_batch_size=4)


def test_preferred_sizes_cut_batches():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        tasks = await queue(batcher, *[(x(i), {}) for i in range(7)])
        ex.release.set()
        await asyncio.gather(blocker, *tasks)
        assert [len(b) for b in ex.batches] == [1, 4, 2, 1]
    run_async(test)(SlowExecute(), max_batch_size=8, preferred_batch_sizes=(2, 4))


def test_max_batch_size_zero_runs_each_request_alone_as_given():
    async def test(batcher, ex):
        reqs = [x(1, 3), x(2, 1, width=5), {"x": np.float32(4) * np.ones((), np.float32)}]
        outs = await asyncio.gather(*(batcher.run(r, ["y"]) for r in reqs))
        assert [s["x"] for s in ex.shapes] == [(3, 2), (1, 5), ()]
        np.testing.assert_array_equal(outs[2]["y"], 8)
    run_async(test)(Execute(), max_batch_size=0)


def test_other_dims_or_output_names_do_not_merge():
    async def test(batcher, ex):
        # Separate keys: within one key a batch stops at the first request that cannot join (FIFO, as Triton).
        await asyncio.gather(batcher.run(x(1, width=3), ["y"], key="a"), batcher.run(x(2, width=4), ["y"], key="b"),
                             batcher.run(x(3, width=3), ["y"], key="c"),
                             batcher.run(x(4, width=3), ["y", "z"], key="d"))
        assert sorted(ex.batches) == [[1, 3], [2], [4]]
    run_async(test)(Execute(), max_batch_size=8)


def test_padded_inputs_batch_and_outputs_come_back_at_own_length():
    async def test(batcher, ex):
        short, long = {"x": np.full((1, 2), 5, np.int64)}, {"x": np.full((1, 4), 6, np.int64)}
        outs = await asyncio.gather(batcher.run(short, ["y"]), batcher.run(long, ["y"]))
        assert ex.shapes == [{"x": (2, 4)}]
        np.testing.assert_array_equal(ex.inputs[0]["x"][0], [5, 5, -1, -1])
        np.testing.assert_array_equal(outs[0]["y"], [[10, 10]])
        np.testing.assert_array_equal(outs[1]["y"], [[12, 12, 12, 12]])
    run_async(test)(Execute(), max_batch_size=8, padded_inputs={"x": PadSpec(1, -1)}, padded_outputs={"y": 1})


def test_queue_full_is_503_with_retry_after():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        tasks = await queue(batcher, (x(1), {}), (x(2), {}))
        with pytest.raises(QueueFullError) as err:
            await batcher.run(x(3), ["y"])
        assert err.value.status == 503 and err.value.code == "queue_full"
        assert int(err.value.headers["Retry-After"]) >= 1
        ex.release.set()
        await asyncio.gather(blocker, *tasks)
        assert batcher.stats()["rejected"] == 1
    run_async(test)(SlowExecute(), max_batch_size=1, max_queue_size=2)


def test_timeout_answers_504_while_busy_and_never_runs():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        with pytest.raises(RequestTimeoutError) as err:
            await asyncio.wait_for(batcher.run(x(7), ["y"], timeout_us=20_000), 5)  # instance still blocked
        assert err.value.status == 504 and err.value.code == "request_timeout"
        assert "timeout" in err.value.message and "not run" in err.value.message
        default = asyncio.create_task(batcher.run(x(8), ["y"]))  # default_timeout_us applies
        with pytest.raises(RequestTimeoutError):
            await asyncio.wait_for(default, 5)
        ex.release.set()
        await blocker
        await batcher.run(x(9), ["y"], timeout_us=0)  # 0 = no timeout
        assert ex.tags == [999, 9] and batcher.stats()["timed_out"] == 2
    run_async(test)(SlowExecute(), max_batch_size=4, default_timeout_us=30_000)


def test_priority_zero_goes_before_one():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        tasks = await queue(batcher, (x(10), {"priority": 1}), (x(11), {"priority": 1}), (x(20), {}))
        ex.release.set()
        await asyncio.gather(blocker, *tasks)
        assert ex.tags == [999, 20, 10, 11]
    run_async(test)(SlowExecute(), max_batch_size=1)


def test_flooding_key_does_not_starve_another_key():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        flood = await queue(batcher, *[(x(i), {"key": "heavy"}) for i in range(50)])
        light = await queue(batcher, (x(100), {"key": "light"}))
        ex.release.set()
        await asyncio.gather(blocker, *flood, *light)
        assert ex.tags.index(100) <= 2  # blocker, at most one heavy turn, then light
    run_async(test)(SlowExecute(), max_batch_size=1)


def test_weights_give_turns_per_round():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        tasks = await queue(batcher, *[(x(i), {"key": "a", "weight": 3}) for i in range(10)],
                            *[(x(100 + i), {"key": "b"}) for i in range(10)])
        ex.release.set()
        await asyncio.gather(blocker, *tasks)
        assert ex.tags[1:9] == [0, 1, 2, 100, 3, 4, 5, 101]
    run_async(test)(SlowExecute(), max_batch_size=1)


def test_fair_order_inside_one_batch():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        tasks = await queue(batcher, *[(x(i), {"key": "heavy"}) for i in range(8)], (x(100), {"key": "light"}))
        ex.release.set()
        await asyncio.gather(blocker, *tasks)
        assert ex.batches[1] == [0, 100, 1, 2]
    run_async(test)(SlowExecute(), max_batch_size=4)


def test_failing_batch_fails_only_its_requests():
    async def test(batcher, ex):
        results = await asyncio.gather(batcher.run(x(-1), ["y"]), batcher.run(x(2), ["y"]),
                                       batcher.run(x(3, width=3), ["y"]), return_exceptions=True)
        assert isinstance(results[0], ModelRuntimeError) and "boom" in str(results[0])
        assert isinstance(results[1], ModelRuntimeError)  # same batch as the bad one
        np.testing.assert_array_equal(results[2]["y"], x(3, width=3)["x"] * 2)  # other merge key
        out = await batcher.run(x(4), ["y"])  # the worker went on
        assert out["y"][0, 0] == 8 and batcher.stats()["failed"] == 2
    run_async(test)(ErrorExecute(), max_batch_size=4)


def test_output_without_batch_axis_fails_only_that_batch():
    def scalar_execute(inputs, names):
        return {"y": np.float32(inputs["x"].shape[0]) * np.ones((), np.float32)}

    async def test(batcher, ex):
        results = await asyncio.gather(batcher.run(x(1), ["y"]), batcher.run(x(2), ["y"]), return_exceptions=True)
        assert all(isinstance(r, ModelRuntimeError) and "axis 0" in str(r) for r in results)
        assert (await batcher.run(x(3), ["y"]))["y"] == 1  # alone, it is passed through
    run_async(test)(scalar_execute, max_batch_size=4)


def test_bad_shape_rejected_alone_at_submit():
    async def test(batcher, ex):
        bad = {"x": np.zeros((2, 2), np.float32), "mask": np.zeros((3, 2), np.float32)}
        results = await asyncio.gather(batcher.run(x(1), ["y"]), batcher.run(bad, ["y"]), batcher.run(x(2), ["y"]),
                                       return_exceptions=True)
        assert isinstance(results[1], TensorError) and results[1].code == "batch_mismatch"
        assert "x has 2" in results[1].message and "mask has 3" in results[1].message
        assert results[0]["y"][0, 0] == 2 and results[2]["y"][0, 0] == 4
        assert ex.batches == [[1, 2]]
    run_async(test)(Execute(), max_batch_size=4)


def test_cancelled_request_is_dropped_from_queue():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        (gone,) = await queue(batcher, (x(5), {}))
        gone.cancel()
        await until(lambda: batcher.stats()["queued"] == 0)
        ex.release.set()
        await blocker
        assert (await batcher.run(x(6), ["y"]))["y"][0, 0] == 12
        assert ex.tags == [999, 6] and batcher.stats()["cancelled"] == 1
    run_async(test)(SlowExecute(), max_batch_size=4)


def test_reconfigure_live_keeps_queue():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        tasks = await queue(batcher, *[(x(i), {}) for i in range(4)], (x(50, 3), {}))
        batcher.reconfigure(batcher.config.merged({"max_batch_size": 2, "instance_count": 2}))
        assert batcher.stats()["queued"] == 4  # the 3-row request no longer fits; the rest stay
        with pytest.raises(TensorError) as err:
            await tasks.pop()
        assert err.value.code == "batch_too_large"
        ex.release.set()
        await asyncio.gather(blocker, *tasks)
        assert sorted(len(b) for b in ex.batches) == [1, 2, 2]
        assert batcher.stats()["instances"] == 2
    run_async(test)(SlowExecute(), max_batch_size=4, max_queue_delay_us=1000)


def test_instances_run_batches_in_parallel():
    both = threading.Barrier(2, timeout=5)

    def make(i):
        def execute(inputs, names):
            both.wait()  # only returns when two batches run at the same time
            return {"y": inputs["x"] + i}
        return execute

    async def test(batcher, ex):
        a = asyncio.create_task(batcher.run(x(1), ["y"]))
        b = asyncio.create_task(batcher.run(x(1, width=3), ["y"]))
        outs = await asyncio.gather(a, b)
        assert sorted(int(o["y"][0, 0]) for o in outs) == [1, 2]
    run_async(test)([make(0), make(1)], max_batch_size=4, instance_count=2)


def test_close_fails_queued_and_running_batch_still_answers():
    async def test(batcher, ex):
        blocker = await block(batcher, ex)
        tasks = await queue(batcher, (x(1), {}), (x(2), {}))
        await batcher.close()
        for task in tasks:
            with pytest.raises(UnavailableError) as err:
                await task
            assert err.value.code == "model_unloaded"
        ex.release.set()
        assert (await blocker)["y"][0, 0] == 1998
        with pytest.raises(UnavailableError):
            await batcher.run(x(3), ["y"])
        assert ex.tags == [999]
    run_async(test)(SlowExecute(), max_batch_size=1)


def test_timings_count_answered_requests_their_wait_and_their_batch_runs():
    # One request holds the instance; three queue behind it and then share one batch of 6 rows; one fails.
    class SlowThenError(SlowExecute, ErrorExecute):
        pass

    async def test(batcher, ex):
        first = await block(batcher, ex)
        waiting = await queue(batcher, (x(1, 1), {}), (x(2, 2), {}), (x(3, 3), {}))
        ex.release.set()
        await asyncio.gather(first, *waiting)
        with pytest.raises(ModelRuntimeError):
            await batcher.run(x(-1), ["y"])
        return batcher.timings()

    t = run_async(test)(SlowThenError(), max_batch_size=8)
    assert t["answered"] == 4 and t["failed"] == 1 and t["batches"] == 3 and t["rows"] == 8
    # Runs that answered: the lone one and the batch of 6 (the failed run has no time to count).
    assert t["runs_by_size"].keys() == {1, 6} and t["runs_by_size"][1][0] == 1 and t["runs_by_size"][6][0] == 1
    run_1, run_6 = t["runs_by_size"][1][1], t["runs_by_size"][6][1]
    assert t["queued_s"] > 0 and t["answered_s"] >= t["queued_s"]
    # Each answered request is charged its whole batch's run, as Triton counts compute_infer.
    assert t["run_s"] == pytest.approx(run_1 + 3 * run_6)
