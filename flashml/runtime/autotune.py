"""Measure a loaded model at batch sizes 1, 2, 4, ... and pick batching settings for a latency budget.

The measurements are the version's performance card: the API returns it and the console plots it.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from flashml.runtime.runner import Execute
from flashml.runtime.samples import sample_inputs
from flashml.signature import Signature

Clock = Callable[[], float]

MAX_MEASURED_BATCH = 256
SECONDS_PER_SIZE = 0.15
TOTAL_SECONDS = 4.0
ROUNDS = 3  # after the sweep, every size again in this many short rounds, alternating direction
RUNS_PER_ROUND = 3
MAX_DELAY_US = 1000  # a lone client never waits more than this for company
BATCHING_GAIN_FOR_DELAY = 1.5  # throughput at the chosen batch over batch 1 that makes waiting worth it
SPLIT_MIN_RUN_MS = 1.0  # a batch cheaper than this is bound by serving overhead, not by the cores: no split
# Split instances are kept unless, measured here, they serve this much less than one instance of all the cores.
# Measured alone they come out about level; in a server they gain, because its other threads (HTTP, the event
# loop, clients on the same machine) take cores from the model, and one instance's threads then wait at every
# operator for the one that lost its core: the benchmark CNN at 32 clients, 2 cores, served 13% more.
SPLIT_KEEP = 0.95
SPLIT_SECONDS = 0.3  # each side of the comparison, measured twice


def batchable(signature: Signature) -> bool:
    """Batching needs every input's first dimension to be dynamic (the batch axis), and every output to have a
    row per input row (the upload's warm-up checks: ``Signature.unbatched``)."""
    return (not signature.unbatched and bool(signature.inputs)
            and all(t.shape and t.shape[0] == -1 for t in signature.inputs))


def dummy_inputs(signature: Signature, batch: int) -> dict[str, np.ndarray]:
    """Inputs of ``batch`` rows at the sizes the upload's warm-up ran at (flashml.runtime.samples)."""
    return sample_inputs(signature, batch)


def _measure(execute: Execute, inputs: dict[str, np.ndarray], outputs: list[str], clock: Clock) -> float:
    """Median seconds of one run, after one unmeasured run (first runs at a new shape allocate)."""
    execute(inputs, outputs)
    times: list[float] = []
    start = clock()
    while len(times) < 3 or (len(times) < 50 and clock() - start < SECONDS_PER_SIZE):
        t0 = clock()
        execute(inputs, outputs)
        times.append(clock() - t0)
    return statistics.median(times)


def measure(execute: Execute, signature: Signature, latency_budget_ms: float,
            max_batch: int = MAX_MEASURED_BATCH, clock: Clock = time.perf_counter) -> list[dict[str, float]]:
    """Latency and throughput per batch size; stops past the budget, on a plateau, or out of time."""
    outputs = [t.name for t in signature.outputs]
    sizes = [1]
    if batchable(signature):
        while sizes[-1] * 2 <= max_batch:
            sizes.append(sizes[-1] * 2)
    points: list[dict[str, float]] = []
    started = clock()
    for b in sizes:
        seconds = _measure(execute, dummy_inputs(signature, b), outputs, clock)
        points.append(_point(b, seconds))
        if seconds * 1000 > latency_budget_ms or clock() - started > TOTAL_SECONDS:
            break
        if len(points) >= 3 and all(points[-i]["throughput"] < 1.05 * points[-i - 1]["throughput"]
                                    for i in (1, 2)):
            break  # two doublings without 5% more throughput: bigger batches only add latency
    if len(points) >= 2:
        # Every size again, in short rounds that each take every size in turn (largest first, then smallest
        # first, ...), keeping each size's fastest figure: a machine may be busy for seconds, and whichever
        # sizes that hits in one sweep would look worse than they are. A slow batch 1 makes batching look like
        # it pays (choose() would then make every lone request wait for company); a slow larger batch makes
        # auto-tune settle for a size that leaves throughput behind. A round is short, so a busy spell slows
        # every size of a round alike, and the rounds outside it give each size its figure.
        feeds = [dummy_inputs(signature, int(p["batch_size"])) for p in points]
        for r in range(ROUNDS):
            order = reversed(range(len(points))) if r % 2 == 0 else range(len(points))
            for i in order:
                again = _point(int(points[i]["batch_size"]), _brief(execute, feeds[i], outputs, clock))
                if again["latency_ms"] < points[i]["latency_ms"]:
                    points[i] = again
    return points


def _brief(execute: Execute, inputs: dict[str, np.ndarray], outputs: list[str], clock: Clock) -> float:
    """Median seconds of ``RUNS_PER_ROUND`` runs of an input measured before (no warm-up run)."""
    times = []
    for _ in range(RUNS_PER_ROUND):
        t0 = clock()
        execute(inputs, outputs)
        times.append(clock() - t0)
    return statistics.median(times)


def _point(batch_size: int, seconds: float) -> dict[str, float]:
    return {"batch_size": batch_size, "latency_ms": round(seconds * 1000, 4),
            "throughput": round(batch_size / seconds, 1)}


def choose(points: list[dict[str, float]], latency_budget_ms: float) -> dict[str, int]:
    """The batch size with the best throughput inside half the budget, and a delay that fits the rest.

    A busy instance batches on its own (requests queue while it runs), so waiting on purpose only pays
    where batching multiplies throughput and one run is long enough that a wait of a fraction of it
    matters: a GPU, not a CPU. The event loop cannot wait less than a millisecond, so a model faster than
    that gets no delay at all.
    """
    if len(points) < 2:
        return {"max_batch_size": 0, "max_queue_delay_us": 0}
    fitting = [p for p in points if p["latency_ms"] <= latency_budget_ms / 2] or points[:1]
    best = max(fitting, key=lambda p: p["throughput"])
    # Take the largest size within 5% of the best: measurements are noisy, and under load a bigger batch
    # never loses throughput while its latency is still inside the budget.
    best = max((p for p in fitting if p["throughput"] >= 0.95 * best["throughput"]), key=lambda p: p["batch_size"])
    single = points[0]
    delay = 0
    if best["throughput"] >= BATCHING_GAIN_FOR_DELAY * single["throughput"] and single["latency_ms"] >= 1.0:
        slack_us = (latency_budget_ms / 2 - best["latency_ms"]) * 1000
        delay = int(max(0.0, min(slack_us, single["latency_ms"] * 500, MAX_DELAY_US)))
    return {"max_batch_size": int(best["batch_size"]), "max_queue_delay_us": delay}


def parallel_throughput(executes: Sequence[Execute], inputs: dict[str, np.ndarray], outputs: list[str],
                        seconds: float = SPLIT_SECONDS) -> float:
    """Rows per second of ``executes`` all running the same batch at once, each in its own thread (after one
    unmeasured run each)."""
    rows = len(next(iter(inputs.values()))) if inputs else 1
    done = [0] * len(executes)
    errors: list[BaseException] = []
    start = threading.Barrier(len(executes) + 1)

    def work(i: int) -> None:
        try:
            executes[i](inputs, outputs)
            start.wait()
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                executes[i](inputs, outputs)
                done[i] += rows
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=work, args=(i,), name=f"autotune-{i}") for i in range(len(executes))]
    for t in threads:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    began = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(done) / (time.perf_counter() - began)


def compare_split(single: Execute, split: Sequence[Execute], signature: Signature, batch_size: int) -> dict[str, Any]:
    """Throughput at ``batch_size`` of one instance of all the cores against ``split`` instances sharing them,
    each measured twice, alternating (this machine may be busy for part of it), keeping each side's best; and
    the instance count to serve with: the split one, unless it served under ``SPLIT_KEEP`` of one instance."""
    inputs, outputs = dummy_inputs(signature, batch_size), [t.name for t in signature.outputs]
    one = many = 0.0
    for _ in range(2):
        one = max(one, parallel_throughput([single], inputs, outputs))
        many = max(many, parallel_throughput(split, inputs, outputs))
    return {"batch_size": batch_size,
            "throughput": {"1": round(one, 1), str(len(split)): round(many, 1)},
            "instance_count": len(split) if many >= SPLIT_KEEP * one else 1}


def split_candidate(card: dict[str, Any]) -> int:
    """The batch size to compare split instances at: the chosen one, when its run is long enough for the cores
    to be what limits it; 0 for none."""
    chosen = card["chosen"].get("max_batch_size") or 1
    point = next((p for p in card["points"] if p["batch_size"] == chosen), None)
    return chosen if point is not None and point["latency_ms"] >= SPLIT_MIN_RUN_MS else 0


def performance_card(execute: Execute, signature: Signature, latency_budget_ms: float, device: str,
                     max_batch: int = MAX_MEASURED_BATCH) -> dict[str, Any]:
    """Measure (at most ``max_batch`` rows: what the upload's sandbox ran) and choose; blocking (run it in a
    worker thread)."""
    points = measure(execute, signature, latency_budget_ms, max_batch)
    return {"device": device, "measured_at": time.time(), "latency_budget_ms": latency_budget_ms,
            "points": points, "chosen": choose(points, latency_budget_ms)}


BUCKET_SHARE = 0.9  # the middle fixed batch size: the smallest measured to serve this share of the best throughput
CONVOLUTIONS = frozenset({"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "FusedConv", "NhwcConv"})


def batch_buckets(points: list[dict[str, float]], max_batch: int) -> list[int]:
    """Fixed batch sizes for a GPU whose convolutions plan anew at every new shape: one row (a lone request waits
    for no padding), the smallest size that serves ``BUCKET_SHARE`` of the best throughput (moderate load), and
    ``max_batch`` (a backlog). Empty where batching is off."""
    if max_batch <= 1:
        return []
    measured = [p for p in points if p["batch_size"] <= max_batch]
    best = max((p["throughput"] for p in measured), default=0.0)
    middle = min((int(p["batch_size"]) for p in measured if p["throughput"] >= BUCKET_SHARE * best),
                 default=max_batch)
    return sorted({1, middle, max_batch})


def plans_per_shape(model_path) -> bool:
    """Whether the model has convolutions, which ONNX Runtime's CUDA provider plans again whenever the input shape
    changes (cuDNN 9's frontend): such a model wants fixed batch shapes on a GPU."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return any(node.op_type in CONVOLUTIONS for node in model.graph.node)
