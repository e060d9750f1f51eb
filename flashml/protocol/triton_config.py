"""A loaded version as Triton's model configuration (``GET /v2/models/{m}/config``, the model_configuration
extension), so tools written for Triton (``tritonclient``'s ``get_model_config``, ``perf_analyzer``) learn the
inputs, the batch limit and the batching settings the way they would from Triton.

Triton's rule for shapes: with ``max_batch_size`` above 0 the batch axis is implied and ``dims`` leave it out;
with 0 ``dims`` are the whole shape. ``-1`` marks a dynamic dimension, as in the V2 metadata.
"""

from __future__ import annotations

from typing import Any

from flashml.runtime.batching import BatchingConfig
from flashml.signature import Signature, TensorSpec

PLATFORM = "onnxruntime_onnx"


def triton_type(v2: str) -> str:
    """Triton's config name of a V2 datatype: ``FP32`` is ``TYPE_FP32``; ``BYTES`` is ``TYPE_STRING``."""
    return "TYPE_STRING" if v2 == "BYTES" else f"TYPE_{v2}"


def model_config(name: str, signature: Signature, config: BatchingConfig, device: str) -> dict[str, Any]:
    batched = config.max_batch_size > 0
    out: dict[str, Any] = {
        "name": name,
        "platform": PLATFORM,
        "backend": "onnxruntime",
        "max_batch_size": config.max_batch_size,
        "input": [_tensor(t, batched) for t in signature.inputs],
        "output": [_tensor(t, batched) for t in signature.outputs],
        "instance_group": [_instances(config.instance_count, device)],
    }
    if batched:
        out["dynamic_batching"] = {
            "preferred_batch_size": list(config.preferred_batch_sizes),
            "max_queue_delay_microseconds": config.max_queue_delay_us,
            "default_queue_policy": {"timeout_action": "REJECT",
                                     "default_timeout_microseconds": config.default_timeout_us,
                                     "allow_timeout_override": True, "max_queue_size": config.max_queue_size},
        }
    return out


def _tensor(spec: TensorSpec, batched: bool) -> dict[str, Any]:
    dims = spec.shape[1:] if batched and spec.shape else spec.shape
    return {"name": spec.name, "data_type": triton_type(spec.datatype), "dims": list(dims)}


def _instances(count: int, device: str) -> dict[str, Any]:
    if device.startswith("cuda"):
        return {"count": count, "kind": "KIND_GPU", "gpus": [int(device.partition(":")[2] or 0)]}
    return {"count": count, "kind": "KIND_CPU"}
