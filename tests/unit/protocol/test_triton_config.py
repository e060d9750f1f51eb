"""A version's serving settings as Triton's model configuration (what tritonclient.get_model_config reads)."""

from __future__ import annotations

from flashml.protocol.triton_config import model_config, triton_type
from flashml.runtime.batching import BatchingConfig
from flashml.signature import Signature, TensorSpec

SIG = Signature([TensorSpec("ids", "INT64", [-1, -1]), TensorSpec("text", "BYTES", [-1])],
                [TensorSpec("y", "FP32", [-1, 10])])


def test_batched_dims_leave_out_the_batch_axis_and_batching_is_described():
    cfg = BatchingConfig(max_batch_size=16, max_queue_delay_us=500, preferred_batch_sizes=(4, 8),
                         max_queue_size=64, default_timeout_us=2000, instance_count=2)
    out = model_config("m", SIG, cfg, "cpu")
    assert out["max_batch_size"] == 16 and out["platform"] == "onnxruntime_onnx"
    assert out["input"] == [{"name": "ids", "data_type": "TYPE_INT64", "dims": [-1]},
                            {"name": "text", "data_type": "TYPE_STRING", "dims": []}]
    assert out["output"] == [{"name": "y", "data_type": "TYPE_FP32", "dims": [10]}]
    assert out["dynamic_batching"]["preferred_batch_size"] == [4, 8]
    assert out["dynamic_batching"]["max_queue_delay_microseconds"] == 500
    policy = out["dynamic_batching"]["default_queue_policy"]
    assert policy["max_queue_size"] == 64 and policy["default_timeout_microseconds"] == 2000
    assert out["instance_group"] == [{"count": 2, "kind": "KIND_CPU"}]


def test_unbatched_dims_are_the_whole_shape_and_gpus_are_named():
    out = model_config("m", SIG, BatchingConfig(max_batch_size=0), "cuda:1")
    assert out["max_batch_size"] == 0 and "dynamic_batching" not in out
    assert out["input"][0]["dims"] == [-1, -1] and out["output"][0]["dims"] == [-1, 10]
    assert out["instance_group"] == [{"count": 1, "kind": "KIND_GPU", "gpus": [1]}]


def test_every_v2_datatype_has_a_triton_name():
    assert [triton_type(t) for t in ("BOOL", "UINT8", "FP16", "BF16", "BYTES")] == [
        "TYPE_BOOL", "TYPE_UINT8", "TYPE_FP16", "TYPE_BF16", "TYPE_STRING"]
