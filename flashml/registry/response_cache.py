"""Response cache, per model and off by default: identical inputs to the same version answered from memory.

The key is a SHA-256 of the version number, every input's name, dtype, shape and bytes, and the names of the
outputs asked for (how they are encoded is not part of it: the cache keeps arrays and each answer is encoded
for its own request). Each model's cache is a least-recently-used map bounded by its ``max_entries`` and by
the setting ``response_cache_max_bytes``; its hits and misses are counted.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np
from msgspec import UNSET, UnsetType
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import audit, changes
from flashml.db.schema import models
from flashml.errors import BadRequestError, ModelNotFoundError
from flashml.registry.records import ResponseCacheView
from flashml.registry.requests import ModelChange

DEFAULT_ENTRIES = 1024


def request_key(version: int, inputs: dict[str, np.ndarray], output_names: list[str]) -> bytes:
    h = hashlib.sha256(b"v%d\0" % version)
    for name in sorted(inputs):
        array = inputs[name]
        h.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        if array.dtype == object:  # BYTES: each element with its length, never the object pointers
            for item in array.ravel():
                data = item if isinstance(item, bytes) else str(item).encode()
                h.update(len(data).to_bytes(8, "big"))
                h.update(data)
        else:
            h.update(np.ascontiguousarray(array).data)
    h.update(b"\0outputs\0" + "\0".join(output_names).encode())
    return h.digest()


class ResponseCache:
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.bytes = 0
        self._entries: OrderedDict[bytes, tuple[dict[str, np.ndarray], int]] = OrderedDict()

    def get(self, key: bytes) -> dict[str, np.ndarray] | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found[0]

    def put(self, key: bytes, outputs: dict[str, np.ndarray]) -> None:
        size = sum(a.nbytes for a in outputs.values())
        if size > self.max_bytes // 4 or key in self._entries:  # one answer never takes most of the cache
            return
        # An output may be a slice of its batch's array: keep a copy, not the whole batch alive.
        self._entries[key] = ({n: a.copy() if a.base is not None else a for n, a in outputs.items()}, size)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def stats(self) -> dict[str, Any]:
        asked = self.hits + self.misses
        return {"entries": len(self._entries), "bytes": self.bytes, "hits": self.hits, "misses": self.misses,
                "hit_rate": round(self.hits / asked, 4) if asked else None}


def cache_config(change: ModelChange, limit: int) -> dict[str, Any]:
    """PATCH /api/v1/models/{m}: {"response_cache": {"enabled": true, "max_entries": 1000}} as the stored config."""
    value = change.response_cache
    if isinstance(value, UnsetType):  # the PATCH changed something else: nothing to store for the cache
        raise BadRequestError('Send "response_cache": {"enabled": true} or false.', code="bad_response_cache")
    entries = DEFAULT_ENTRIES if value.max_entries is UNSET else value.max_entries
    if entries > limit:
        raise BadRequestError(f'"max_entries" is a whole number from 1 to {limit} (setting '
                              f"response_cache_max_entries), not {entries!r}.", code="bad_response_cache")
    return {"enabled": value.enabled, "max_entries": entries}


class ResponseCacheService:
    def __init__(self, engine: AsyncEngine, max_bytes: int, max_entries: int, *, node: str = "") -> None:
        self.engine = engine
        self.node = node  # names this node's changes in the change feed (flashml.cluster)
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.caches: dict[str, ResponseCache] = {}  # model -> its cache, only while enabled (read per request)
        self.configs: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(models.c.name, models.c.response_cache))).all()
        for name, config in rows:
            if config:
                self._apply(name, config)

    def _apply(self, model: str, config: dict[str, Any]) -> None:
        self.configs[model] = config
        if config.get("enabled"):
            current = self.caches.get(model)
            if current is None or current.max_entries != config["max_entries"]:
                self.caches[model] = ResponseCache(config["max_entries"], self.max_bytes)
        else:
            self.caches.pop(model, None)

    async def configure(self, model: str, change: ModelChange, *, actor: str) -> ResponseCacheView:
        config = cache_config(change, self.max_entries)
        async with self.engine.begin() as conn:
            res = await conn.execute(update(models).where(models.c.name == model).values(response_cache=config))
            if res.rowcount > 0:
                await changes.write(conn, changes.Change(changes.RESPONSE_CACHE, self.node, model=model))
        if res.rowcount == 0:
            raise ModelNotFoundError(model)
        self._apply(model, config)
        await audit.record(self.engine, actor, "model.response_cache", model, config)
        return self.view(model)

    async def apply(self, model: str) -> None:
        """Follow a model's stored settings (changed on another node; flashml.cluster)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(models.c.response_cache).where(models.c.name == model))).first()
        if row is None:
            self.forget(model)
        elif row[0]:
            self._apply(model, row[0])
        elif model in self.configs:
            self._apply(model, {**self.configs[model], "enabled": False})

    def view(self, model: str) -> ResponseCacheView:
        config = self.configs.get(model) or {"enabled": False, "max_entries": DEFAULT_ENTRIES}
        cache = self.caches.get(model)
        empty = {"entries": 0, "bytes": 0, "hits": 0, "misses": 0, "hit_rate": None}
        return ResponseCacheView(**config, max_bytes=self.max_bytes, **(cache.stats() if cache else empty))

    def clear(self, model: str) -> None:
        """Forget a model's answers (a version was deleted: its number may come back for another file)."""
        cache = self.caches.get(model)
        if cache is not None:
            cache.clear()

    def forget(self, model: str) -> None:
        self.caches.pop(model, None)
        self.configs.pop(model, None)
