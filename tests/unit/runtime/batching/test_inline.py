"""Cheap batches run on the event loop, everything else in worker threads (setting inline_run_us)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from flashml.runtime.batching import Batcher, BatchingConfig
from flashml.runtime.batching.inline import MEASURED_FIRST, WALL_FACTOR, InlinePolicy
from flashml.runtime.runner import ModelRuntimeError

LIMIT = 500e-6


def test_only_cheap_measured_runs_go_inline():
    policy = InlinePolicy(LIMIT)
    for _ in range(MEASURED_FIRST - 1):
        policy.record(2, 50e-6, 60e-6, inline=False)
        assert not policy.inline(2)  # not measured enough yet
    policy.record(2, 50e-6, 60e-6, inline=False)
    assert policy.inline(2) and policy.inline(1)
    assert not policy.inline(40)  # twenty times the usual rows: expected past the limit
    assert not InlinePolicy(0).inline(1)  # 0: never


def test_runs_that_wait_rather_than_compute_stay_in_worker_threads():
    policy = InlinePolicy(LIMIT)  # a GPU run, or a sleeping test double: little CPU, long wall time
    for _ in range(MEASURED_FIRST * 2):
        policy.record(1, 10e-6, WALL_FACTOR * LIMIT * 2, inline=False)
    assert not policy.inline(1)


def test_an_inline_run_slower_than_promised_sends_the_next_runs_back_to_measuring():
    policy = InlinePolicy(LIMIT)
    for _ in range(MEASURED_FIRST):
        policy.record(1, 50e-6, 60e-6, inline=False)
    assert policy.inline(1)
    policy.record(1, 50e-6, WALL_FACTOR * LIMIT * 3, inline=True)
    assert policy.inline_runs == 1 and not policy.inline(1)


class Threads:
    """A tiny model that records which thread ran each batch; ``sleep_s`` makes it wait instead."""

    def __init__(self, sleep_s: float = 0.0, fail_on: int | None = None) -> None:
        self.threads: list[int] = []
        self.sleep_s = sleep_s
        self.fail_on = fail_on

    def __call__(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        self.threads.append(threading.get_ident())
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.fail_on is not None and (inputs["x"] == self.fail_on).any():
            raise ModelRuntimeError("boom")
        return {name: inputs["x"] * 2 for name in output_names}


def _serve(execute: Threads, requests: int, inline_run_s: float = LIMIT, tag=lambda i: i):
    async def main():
        batcher = Batcher(execute, BatchingConfig(max_batch_size=4), name="m", inline_run_s=inline_run_s)
        answers = []
        try:
            for i in range(requests):  # one at a time: every request is its own batch
                try:
                    out = await batcher.run({"x": np.full((1, 2), tag(i), np.float32)}, ["y"])
                    answers.append(float(out["y"][0, 0]))
                except ModelRuntimeError as exc:
                    answers.append(str(exc))
            return threading.get_ident(), batcher.stats(), answers
        finally:
            await batcher.close()

    return asyncio.run(main())


def test_a_cheap_model_runs_on_the_loop_once_measured():
    execute = Threads()
    loop_thread, stats, answers = _serve(execute, MEASURED_FIRST + 5)
    assert answers == [2.0 * i for i in range(MEASURED_FIRST + 5)]
    on_loop = [t == loop_thread for t in execute.threads]
    assert on_loop == [False] * MEASURED_FIRST + [True] * 5
    assert stats["inline_batches"] == 5 and stats["batches"] == MEASURED_FIRST + 5


def test_without_the_setting_every_batch_runs_in_a_worker_thread():
    execute = Threads()
    loop_thread, stats, _ = _serve(execute, MEASURED_FIRST + 5, inline_run_s=0)
    assert loop_thread not in execute.threads and stats["inline_batches"] == 0


def test_a_model_that_waits_never_blocks_the_loop():
    execute = Threads(sleep_s=0.005)  # 5 ms of waiting, almost no CPU: ten times the limit in wall time
    loop_thread, stats, _ = _serve(execute, MEASURED_FIRST + 5)
    assert loop_thread not in execute.threads and stats["inline_batches"] == 0


def test_a_failing_inline_batch_fails_only_its_request():
    execute = Threads(fail_on=MEASURED_FIRST + 1)
    loop_thread, stats, answers = _serve(execute, MEASURED_FIRST + 3)
    assert answers[MEASURED_FIRST + 1] == "boom"
    assert answers[MEASURED_FIRST + 2] == 2.0 * (MEASURED_FIRST + 2)  # the next one is answered
    assert execute.threads[MEASURED_FIRST + 1] == loop_thread and stats["failed"] == 1
