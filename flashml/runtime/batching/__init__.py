"""Triton-style dynamic batching: fair queueing of requests and running them in batches."""

from flashml.runtime.batching.batcher import Batcher
from flashml.runtime.batching.config import BatchingConfig, PadSpec, request_length
from flashml.runtime.batching.merge import merge, merge_key, rows, split
from flashml.runtime.batching.queue import Pending, QueueFullError, RequestQueue, RequestTimeoutError

__all__ = ["Batcher", "BatchingConfig", "PadSpec", "Pending", "QueueFullError", "RequestQueue",
           "RequestTimeoutError", "merge", "merge_key", "request_length", "rows", "split"]
