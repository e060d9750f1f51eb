"""Auto-tune: which batch sizes it measures, and what it picks for a latency budget."""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest

from flashml.runtime.autotune import (
    batchable,
    choose,
    compare_split,
    dummy_inputs,
    measure,
    parallel_throughput,
    performance_card,
    split_candidate,
)
from flashml.runtime.batching import BatchingConfig
from flashml.runtime.batching.hints import BatchingHints
from flashml.signature import Signature, TensorSpec

SIG = Signature([TensorSpec("x", "FP32", [-1, 3]), TensorSpec("t", "BYTES", [-1])], [TensorSpec("y", "FP32", [-1])])


def _points(*latencies_ms: float) -> list[dict[str, float]]:
    return [{"batch_size": 2**i, "latency_ms": ms, "throughput": 2**i / ms * 1000}
            for i, ms in enumerate(latencies_ms)]


def test_batchable_needs_every_first_dimension_dynamic():
    assert batchable(SIG)
    assert not batchable(Signature([TensorSpec("x", "FP32", [1, 3])], []))
    assert not batchable(Signature([TensorSpec("x", "FP32", [-1, 3]), TensorSpec("s", "FP32", [])], []))


def test_dummy_inputs_fill_the_batch_axis_and_other_dynamic_dims():
    feeds = dummy_inputs(Signature([TensorSpec("x", "FP32", [-1, -1, 3]), TensorSpec("t", "BYTES", [-1])], []), 4)
    assert feeds["x"].shape == (4, 1, 3) and feeds["x"].dtype == np.float32
    assert feeds["t"].shape == (4,) and feeds["t"].dtype == object


def test_choose_takes_the_best_throughput_inside_half_the_budget():
    # Throughput peaks at batch 4 (1.2 ms); batch 16 takes 30 ms, past half of a 50 ms budget.
    picked = choose(_points(1.0, 1.0, 1.2, 4.0, 30.0), latency_budget_ms=50)
    assert picked["max_batch_size"] == 4
    assert choose(_points(1.0, 1.0, 1.2, 4.0, 30.0), latency_budget_ms=10)["max_batch_size"] <= 8


def test_choose_takes_the_largest_batch_within_five_percent_of_the_best():
    # Flat throughput (cost grows with the batch): batching cannot hurt under load, the budget still holds.
    assert choose(_points(1.0, 2.0, 4.0, 8.0), latency_budget_ms=100)["max_batch_size"] == 8
    assert choose(_points(1.0, 2.0, 4.0, 8.0), latency_budget_ms=10)["max_batch_size"] == 4


def test_choose_waits_only_where_batching_pays_and_runs_are_long():
    gpu_like = choose(_points(4.0, 4.1, 4.2, 4.5, 5.0), latency_budget_ms=100)
    assert gpu_like["max_batch_size"] == 16 and 0 < gpu_like["max_queue_delay_us"] <= 2000
    fast = choose(_points(0.02, 0.021, 0.022, 0.03), latency_budget_ms=100)  # sub-millisecond runs: no delay
    assert fast["max_batch_size"] == 8 and fast["max_queue_delay_us"] == 0
    cpu_cnn = choose(_points(9.0, 17.0, 33.0), latency_budget_ms=100)  # no gain from batching: no delay
    assert cpu_cnn["max_queue_delay_us"] == 0


def test_one_point_means_no_batching():
    assert choose(_points(3.0), latency_budget_ms=50) == {"max_batch_size": 0, "max_queue_delay_us": 0}


class FakeClock:
    """Time that moves only when the fake model runs: measurements without timing noise."""

    def __init__(self, cost_s):
        self.now = 0.0
        self.cost_s = cost_s

    def __call__(self) -> float:
        return self.now

    def execute(self, inputs, outputs):
        self.now += self.cost_s(len(inputs["x"]))
        return {"y": np.zeros(len(inputs["x"]), np.float32)}


def test_measure_stops_on_a_plateau():
    clock = FakeClock(lambda b: 0.001 * b)  # cost proportional to the batch: throughput never improves
    points = measure(clock.execute, SIG, latency_budget_ms=1000, clock=clock)
    assert [p["batch_size"] for p in points] == [1, 2, 4]
    assert points[0]["latency_ms"] == 1.0 and points[0]["throughput"] == 1000.0


def test_measure_goes_on_while_batching_pays():
    clock = FakeClock(lambda b: 0.001 + 0.00001 * b)
    points = measure(clock.execute, SIG, latency_budget_ms=1000, max_batch=64, clock=clock)
    assert [p["batch_size"] for p in points] == [1, 2, 4, 8, 16, 32, 64]


def test_measure_stops_past_the_budget():
    clock = FakeClock(lambda b: 0.004 if b >= 4 else 0.0001)
    points = measure(clock.execute, SIG, latency_budget_ms=2, clock=clock)
    assert [p["batch_size"] for p in points] == [1, 2, 4]


def test_a_model_that_cannot_batch_is_measured_at_one():
    clock = FakeClock(lambda b: 0.001)
    fixed = Signature([TensorSpec("x", "FP32", [1, 3])], [TensorSpec("y", "FP32", [1])])
    assert [p["batch_size"] for p in measure(clock.execute, fixed, 100, clock=clock)] == [1]


def test_batch_one_is_measured_again_so_a_busy_moment_does_not_buy_a_queue_delay():
    # The machine is busy while batch 1 is first measured (twice as slow): batching seems to double
    # throughput, which would set a queue delay that every lone request pays.
    clock = FakeClock(lambda b: (0.014 if clock.now < 0.2 else 0.007) if b == 1 else 0.013)
    points = measure(clock.execute, SIG, latency_budget_ms=100, max_batch=2, clock=clock)
    assert points[0]["latency_ms"] == 7.0
    assert choose(points, latency_budget_ms=100)["max_queue_delay_us"] == 0


def test_every_size_is_measured_again_so_a_busy_moment_does_not_cost_throughput():
    # The machine is busy while batch 4 is first measured (133 rows/s instead of 210): auto-tune would
    # settle for batch 2 (200 rows/s) and leave throughput behind under load.
    costs = {1: 0.006, 2: 0.010, 4: 0.019, 8: 0.060}
    clock = FakeClock(lambda b: 0.030 if b == 4 and clock.now < 0.6 else costs[b])
    points = measure(clock.execute, SIG, latency_budget_ms=100, max_batch=8, clock=clock)
    assert [p["batch_size"] for p in points] == [1, 2, 4, 8]
    assert points[2]["latency_ms"] == 19.0
    assert choose(points, latency_budget_ms=100)["max_batch_size"] == 4


def _sleeper(seconds: float, lock: threading.Lock | None = None):
    """A fake model that takes ``seconds`` per run; with a lock, its runs cannot overlap (one set of cores)."""
    def execute(inputs, outputs):
        with lock or contextlib.nullcontext():
            time.sleep(seconds)
        return {"y": np.zeros(len(inputs["x"]), np.float32)}
    return execute


def test_split_instances_are_kept_where_they_serve_about_as_much_or_more():
    # Two instances whose runs overlap serve about twice one instance's rows: split.
    found = compare_split(_sleeper(0.004), [_sleeper(0.004), _sleeper(0.004)], SIG, batch_size=4)
    assert found["instance_count"] == 2 and found["batch_size"] == 4
    assert found["throughput"]["2"] > found["throughput"]["1"] > 0


def test_split_instances_that_serve_clearly_less_are_not_kept():
    # Each split instance takes three times as long and they cannot overlap: a third of one instance's rows.
    lock = threading.Lock()
    found = compare_split(_sleeper(0.002), [_sleeper(0.006, lock), _sleeper(0.006, lock)], SIG, batch_size=2)
    assert found["instance_count"] == 1
    assert found["throughput"]["2"] < found["throughput"]["1"]


def test_a_failing_model_fails_the_comparison_instead_of_hanging():
    def broken(inputs, outputs):
        raise RuntimeError("no such kernel")
    with pytest.raises(RuntimeError, match="no such kernel"):
        parallel_throughput([_sleeper(0.001), broken], dummy_inputs(SIG, 1), ["y"], seconds=0.05)


def test_split_is_compared_only_where_the_chosen_batch_keeps_the_cores_busy():
    long_runs = {"points": _points(2.0, 3.9, 7.5), "chosen": {"max_batch_size": 4, "max_queue_delay_us": 0}}
    assert split_candidate(long_runs) == 4
    overhead_bound = {"points": _points(0.05, 0.06, 0.08), "chosen": {"max_batch_size": 4, "max_queue_delay_us": 0}}
    assert split_candidate(overhead_bound) == 0  # serving overhead, not the cores, limits it
    unbatched = {"points": _points(3.0), "chosen": {"max_batch_size": 0, "max_queue_delay_us": 0}}
    assert split_candidate(unbatched) == 1


def test_a_busy_spell_after_batch_one_was_measured_does_not_turn_batching_off():
    # The machine turns 1.6 times slower 0.1 s in, just after batch 1's first figure, for 1.5 s: the whole sweep
    # and the first measurements again. Batch 1 then looked the fastest per row, and auto-tune chose
    # max_batch_size 1 (as in one benchmark run, for the CNN). Rounds spread over a longer time end outside
    # the spell and give each size its own speed.
    costs = {1: 0.006, 2: 0.010, 4: 0.019, 8: 0.060}
    clock = FakeClock(lambda b: costs[b] * (1.6 if 0.1 <= clock.now < 1.6 else 1.0))
    points = measure(clock.execute, SIG, latency_budget_ms=100, max_batch=8, clock=clock)
    assert [p["latency_ms"] for p in points] == [6.0, 10.0, 19.0, 60.0]
    assert choose(points, latency_budget_ms=100)["max_batch_size"] == 4


def test_on_a_gpu_auto_tune_serves_from_two_instances_where_batches_take_a_while(tmp_path):
    """While one instance's batch runs on the GPU, the other gathers and copies the next. The CI machine has no
    GPU: the version runs on the CPU and is marked as CUDA's (what the pool records where CUDA runs it)."""
    import asyncio

    from flashml.registry import serving
    from flashml.runtime.batching import BatchingConfig
    from flashml.runtime.devices import CPU, CUDA
    from flashml.runtime.pool import ModelPool
    from flashml.settings import Settings
    from tests.helpers import onnx_models

    path = onnx_models.conv_model(tmp_path / "conv.onnx")  # about a millisecond an image on two cores
    sig = Signature([TensorSpec("x", "FP32", [-1, 3, 64, 64])], [TensorSpec("y", "FP32", [-1, 32])])

    async def tune(on_gpu: bool, manifest: dict):
        pool = ModelPool("cpu")
        loaded = await pool.load("conv", 1, path, sig, BatchingConfig())
        if on_gpu:
            loaded.providers, loaded.device = [CUDA, CPU], "cuda:0"
        config, card = await serving.autotune(loaded, serving.join(None, BatchingConfig()),
                                              BatchingHints.from_table(manifest),
                                              Settings(latency_budget_ms=50), pool)
        await pool.close()
        return config, card

    config, card = asyncio.run(tune(True, {}))
    batch = card["chosen"]["max_batch_size"]
    run_ms = next(p["latency_ms"] for p in card["points"] if p["batch_size"] == batch)
    assert run_ms >= 1.0 and config["instance_count"] == serving.GPU_INSTANCES == 2
    config, _ = asyncio.run(tune(True, {"instance_count": 1}))  # what the manifest sets stays
    assert config["instance_count"] == 1


def test_the_sandbox_runs_every_batch_auto_tune_or_the_manifest_may_run_here():
    from flashml.registry import serving
    from flashml.settings import Settings

    def hints(table):
        return BatchingHints.from_table(table)

    tuned = Settings(latency_budget_ms=50)
    assert serving.batches_to_prove(hints({}), tuned) == ([1, 2, 4, 8, 16, 32, 64, 128, 256], 100.0)
    assert serving.batches_to_prove(hints({}), Settings(autotune=False)) == ([1, 2, 4, 8, 16, 32], 0.0)
    # A manifest's sizes are run whatever they are (the GPU warm-ups run them), with no budget to stop at.
    assert serving.batches_to_prove(hints({"max_batch_size": 24, "batch_buckets": [1, 6, 24]}), tuned) == (
        [1, 2, 4, 6, 8, 16, 24], 0.0)
    assert serving.batches_to_prove(hints({"preferred_batch_sizes": [4, 12]}), tuned) == ([1, 2, 4, 8, 12], 0.0)
    assert serving.batches_to_prove(hints({"max_batch_size": 0}), tuned) == ([1], 0.0)


def test_batching_is_brought_down_to_the_largest_batch_the_sandbox_ran():
    from flashml.registry import serving

    config = serving.join(None, BatchingConfig(max_batch_size=64, preferred_batch_sizes=(8, 64),
                                               batch_buckets=(1, 8, 64)))
    capped = serving.within_proof(config, 32)
    assert capped["max_batch_size"] == 32 and capped["preferred_batch_sizes"] == [8]
    assert capped["batch_buckets"] == [1, 8, 32]
    serving.split(capped)  # still a valid config
    off = serving.within_proof(config, 1)
    assert off["max_batch_size"] == 0 and off["batch_buckets"] == [] and off["preferred_batch_sizes"] == []
    serving.split(off)
    assert serving.within_proof(config, 64) is config


def test_auto_tune_measures_no_batch_past_the_one_it_is_given():
    card = performance_card(_sleeper(0.001), SIG, 1000, "cpu", max_batch=8)  # batching pays all the way
    assert [p["batch_size"] for p in card["points"]] == [1, 2, 4, 8]
