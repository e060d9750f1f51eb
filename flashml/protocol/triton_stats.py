"""Loaded versions' counters as Triton's statistics extension (``GET /v2/models[/{m}[/versions/{v}]]/stats``),
what ``tritonclient``'s ``get_inference_statistics`` and Triton's tools read.

Counts and cumulative nanoseconds since the version was loaded. As in Triton, ``compute_infer`` charges each
request its whole batch's run, and ``batch_stats`` counts runs per batch size. FlashML times merge, run and split
together: they are all in ``compute_infer``, and ``compute_input`` and ``compute_output`` stay at zero.
Answers from a model's response cache never reach the batcher, so they are not counted here (``cache_hit``
and ``cache_miss`` stay at zero); the cache counts its own hits and misses (``GET /api/v1/models/{m}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flashml.runtime.pool import LoadedModel

_NONE = {"count": 0, "ns": 0}


def model_stats(loaded: LoadedModel) -> dict[str, Any]:
    t = loaded.batcher.timings()
    answered = t["answered"]
    return {
        "name": loaded.model,
        "version": str(loaded.version),
        "last_inference": int(loaded.last_used * 1000),  # milliseconds since the epoch; 0: none yet
        "inference_count": t["rows"],
        "execution_count": t["batches"],
        "inference_stats": {
            "success": _stat(answered, t["answered_s"]),
            "fail": {"count": t["failed"], "ns": 0},
            "queue": _stat(answered, t["queued_s"]),
            "compute_input": _NONE,
            "compute_infer": _stat(answered, t["run_s"]),
            "compute_output": _NONE,
            "cache_hit": _NONE,
            "cache_miss": _NONE,
        },
        "batch_stats": [{"batch_size": rows, "compute_input": {"count": n, "ns": 0},
                         "compute_infer": _stat(n, seconds), "compute_output": {"count": n, "ns": 0}}
                        for rows, (n, seconds) in t["runs_by_size"].items()],
    }


def _stat(count: int, seconds: float) -> dict[str, int]:
    return {"count": count, "ns": int(seconds * 1e9)}
