"""Response cache keys and bounds, without a server."""

from __future__ import annotations

import numpy as np

from flashml.registry.response_cache import ResponseCache, request_key


def test_the_key_covers_version_values_shapes_dtypes_names_and_outputs():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    base = request_key(1, {"x": x}, ["y"])
    assert request_key(1, {"x": x.copy()}, ["y"]) == base
    assert request_key(1, {"x": np.asfortranarray(x)}, ["y"]) == base  # the same values, another layout
    for other in (request_key(2, {"x": x}, ["y"]), request_key(1, {"x": x.reshape(3, 2)}, ["y"]),
                  request_key(1, {"x": x.astype(np.float64)}, ["y"]), request_key(1, {"z": x}, ["y"]),
                  request_key(1, {"x": x}, ["y", "z"]), request_key(1, {"x": x + 1}, ["y"])):
        assert other != base
    words = np.array([b"ab", b"c"], dtype=object)
    assert request_key(1, {"s": words}, []) == request_key(1, {"s": np.array([b"ab", b"c"], dtype=object)}, [])
    assert request_key(1, {"s": words}, []) != request_key(1, {"s": np.array([b"a", b"bc"], dtype=object)}, [])


def test_bounded_by_entries_and_bytes_least_recently_used_first():
    cache = ResponseCache(max_entries=2, max_bytes=1024)
    one = {"y": np.zeros(4, np.float32)}
    cache.put(b"a", one)
    cache.put(b"b", one)
    assert cache.get(b"a") is not None  # a is now the most recently used
    cache.put(b"c", one)
    assert cache.get(b"b") is None and cache.get(b"a") is not None and cache.get(b"c") is not None
    cache.put(b"big", {"y": np.zeros(100, np.float32)})  # 400 bytes: more than a quarter of the budget
    assert cache.get(b"big") is None
    assert cache.stats() == {"entries": 2, "bytes": 32, "hits": 3, "misses": 2, "hit_rate": 0.6}
    batch = np.arange(8, dtype=np.float32).reshape(2, 4)
    cache.put(b"row", {"y": batch[1]})  # a slice of a batch is copied, not kept with its batch
    assert cache.get(b"row")["y"].base is None
