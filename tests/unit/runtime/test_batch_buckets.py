"""Fixed batch shapes (``batch_buckets``): a session per size, batches padded to the smallest size that holds them.

On a GPU, ONNX Runtime's CUDA convolutions plan again whenever a session's input shape changes (cuDNN 9's
frontend), which the first H200 run measured as milliseconds of CPU per batch; a session that always sees one
shape plans once. Auto-tune picks the sizes on a GPU for a model with convolutions.
"""

from __future__ import annotations

import asyncio

import numpy as np
import onnxruntime as ort
import pytest

from flashml.errors import BadRequestError
from flashml.registry import serving
from flashml.runtime.autotune import batch_buckets, plans_per_shape
from flashml.runtime.batching import BatchingConfig
from flashml.runtime.batching.hints import BatchingHints
from flashml.runtime.devices import CPU, CUDA
from flashml.runtime.executor import BucketedExecutor
from flashml.runtime.pool import ModelPool
from flashml.settings import Settings
from flashml.signature import Signature, TensorSpec
from tests.helpers import onnx_models

CONV = Signature([TensorSpec("x", "FP32", [-1, 3, 16, 16])], [TensorSpec("y", "FP32", [-1, 8])])


def test_buckets_are_sizes_up_to_max_batch_size_and_the_largest_is_it():
    assert BatchingConfig(max_batch_size=64, batch_buckets=[64, 1, 16, 16]).batch_buckets == (1, 16, 64)
    assert BatchingConfig(max_batch_size=64).to_dict()["batch_buckets"] == []
    for bad in ([1, 16], [0, 64], [1, 128], ["a"], "1,64", list(range(1, 10)) + [64]):
        with pytest.raises(BadRequestError) as err:
            BatchingConfig(max_batch_size=64, batch_buckets=bad)
        assert err.value.code == "bad_batching_config" and err.value.details == {"field": "batch_buckets"}


class Recorder:
    """An execution instance that answers each row's sum and records the shapes it was given."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, inputs, output_names):
        x = inputs["x"]
        self.shapes.append(x.shape)
        return {"y": x.reshape(len(x), -1).sum(axis=1, keepdims=True), "scale": np.float32(2.0)}


def test_a_batch_runs_padded_on_the_smallest_size_that_holds_it():
    sessions = {1: Recorder(), 4: Recorder(), 8: Recorder()}
    executor = BucketedExecutor(sessions)
    for rows in (1, 3, 4, 2, 8, 5, 1):
        x = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2) + 1
        out = executor({"x": x}, ["y", "scale"])
        np.testing.assert_array_equal(out["y"], x.sum(axis=1, keepdims=True))  # its own rows, no padding
        assert out["scale"] == 2.0  # an output without the batch axis is left whole
    assert {size: set(r.shapes) for size, r in sessions.items()} == {1: {(1, 2)}, 4: {(4, 2)}, 8: {(8, 2)}}
    assert executor.padded_rows == (4 - 3) + (4 - 2) + (8 - 5)


def test_a_version_with_buckets_serves_through_the_batcher_with_a_session_per_size(tmp_path):
    path = onnx_models.conv_model(tmp_path / "conv.onnx", size=16, channels=8)
    requests = [np.random.default_rng(i).standard_normal([1 + i % 3, 3, 16, 16]).astype(np.float32)
                for i in range(12)]

    async def serve():
        pool = ModelPool("cpu")
        loaded = await pool.load("conv", 1, path, CONV, BatchingConfig(
            max_batch_size=8, max_queue_delay_us=2000, batch_buckets=[1, 4, 8], instance_count=2))
        answers = await asyncio.gather(*(loaded.run({"x": x}, ["y"]) for x in requests))
        await pool.close()
        return loaded, answers

    loaded, answers = asyncio.run(serve())
    assert all(isinstance(e, BucketedExecutor) and e.sizes == [1, 4, 8] for e in loaded.executors)
    assert len({id(s.session) for e in loaded.executors for s in e.executors.values()}) == 6  # 2 instances x 3
    reference = ort.InferenceSession(str(path), providers=[CPU])
    for x, answer in zip(requests, answers, strict=True):
        np.testing.assert_allclose(answer["y"], reference.run(["y"], {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_the_sizes_are_one_row_the_first_that_serves_ninety_percent_and_max_batch_size():
    points = [{"batch_size": b, "throughput": t} for b, t in
              [(1, 450), (2, 840), (4, 1560), (8, 2920), (16, 3740), (32, 3737), (64, 3960), (128, 3950)]]
    assert batch_buckets(points, 64) == [1, 16, 64]
    assert batch_buckets(points, 8) == [1, 8]
    assert batch_buckets(points, 1) == [] and batch_buckets(points, 0) == []


def test_only_a_model_with_convolutions_wants_fixed_shapes(tmp_path):
    assert plans_per_shape(onnx_models.conv_model(tmp_path / "conv.onnx"))
    assert not plans_per_shape(onnx_models.add_model(tmp_path / "add.onnx"))


def test_on_a_gpu_auto_tune_gives_a_convolutional_model_fixed_shapes(tmp_path):
    """The CI machine has no GPU: the version runs on the CPU and is marked as CUDA's (what the pool records
    where CUDA runs it); the choice is what is tested here, tests/unit/runtime/test_gpu.py serves it on a real GPU."""
    conv = onnx_models.conv_model(tmp_path / "conv.onnx", size=32, channels=16)
    add = onnx_models.add_model(tmp_path / "add.onnx")
    conv_sig = Signature([TensorSpec("x", "FP32", [-1, 3, 32, 32])], [TensorSpec("y", "FP32", [-1, 16])])
    add_sig = Signature([TensorSpec("a", "FP32", [-1, 4]), TensorSpec("b", "FP32", [-1, 4])],
                        [TensorSpec("sum", "FP32", [-1, 4])])

    async def tune(path, sig, on_gpu: bool, manifest: dict | None = None):
        pool = ModelPool("cpu")
        loaded = await pool.load("m", 1, path, sig, BatchingConfig())
        if on_gpu:
            loaded.providers, loaded.device = [CUDA, CPU], "cuda:0"
        config, card = await serving.autotune(loaded, serving.join(None, BatchingConfig()),
                                              BatchingHints.from_table(manifest or {}),
                                              Settings(latency_budget_ms=50), pool)
        await pool.close()
        return config, card

    config, card = asyncio.run(tune(conv, conv_sig, True))
    max_batch = card["chosen"]["max_batch_size"]
    assert config["batch_buckets"] == batch_buckets(card["points"], max_batch)
    assert config["batch_buckets"][-1] == max_batch
    assert config["preferred_batch_sizes"] == [b for b in config["batch_buckets"] if b > 1]
    assert asyncio.run(tune(conv, conv_sig, False))[0]["batch_buckets"] == []  # on the CPU: no need
    assert asyncio.run(tune(add, add_sig, True))[0]["batch_buckets"] == []  # no convolutions: no need
    kept, _ = asyncio.run(tune(conv, conv_sig, True, {"batch_buckets": []}))
    assert kept["batch_buckets"] == []  # what the manifest sets stays
