"""Memory-aware loading: each device has a budget; versions not used recently make room, and load again
when a request needs them.

After every load, the versions on that device are counted (``LoadedModel.memory_bytes``: RSS growth while
its sessions were made, at least its files' size); while they hold more than the budget, the least recently
used one that is not pinned (and is not the one just loaded) is unloaded, after its in-flight requests finish.
It stays ``ready``: the first request for it loads it again and waits at most ``load_timeout_s`` (504 after,
while the load goes on); requests arriving meanwhile wait for the same load. Pinned versions stay loaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from flashml.errors import GatewayTimeoutError
from flashml.registry.records import DeviceMemory, MemoryView
from flashml.runtime.memory_budget import budget_for, parse_budget
from flashml.runtime.pool import LoadedModel, ModelPool

log = logging.getLogger("flashml.memory")
Key = tuple[str, int]


class MemoryService:
    def __init__(self, pool: ModelPool, budget: str, load_timeout_s: float,
                 load: Callable[[str, int], Awaitable[LoadedModel]]) -> None:
        self.pool = pool
        self.budgets = parse_budget(budget)
        self.load_timeout_s = load_timeout_s
        self._load = load  # loads a ready version from its database row (the registry's)
        self.pinned: set[Key] = set()
        self.unloaded: set[Key] = set()  # ready versions unloaded to stay within a budget: they load on demand
        self._loading: dict[Key, asyncio.Task] = {}

    def budget(self, device: str) -> int | None:
        return budget_for(self.budgets, device)

    async def after_load(self, loaded: LoadedModel) -> None:
        """Make room on the version's device: unload least recently used versions beyond the budget."""
        self.unloaded.discard((loaded.model, loaded.version))
        budget = self.budget(loaded.device)
        if budget is None:
            return
        here = [v for v in self.pool.loaded() if v.device == loaded.device]
        used = sum(v.memory_bytes for v in here)
        for victim in sorted(here, key=lambda v: v.last_used or v.loaded_at):
            if used <= budget:
                break
            key = (victim.model, victim.version)
            if victim is loaded or key in self.pinned or self.pool.get(*key) is not victim:
                continue
            self.unloaded.add(key)
            used -= victim.memory_bytes
            log.info("unloading %s v%d (%d bytes, last used %s) to stay within the %d-byte budget of %s",
                     victim.model, victim.version, victim.memory_bytes, victim.last_used or "never", budget,
                     loaded.device)
            await self.pool.unload(*key)
        if used > budget:
            log.warning("%s holds %d bytes, over its budget of %d: what is left is pinned or just loaded",
                        loaded.device, used, budget)

    async def load_on_demand(self, model: str, number: int) -> LoadedModel:
        """Load an unloaded ready version for a request, waiting at most ``load_timeout_s`` (504 after)."""
        key = (model, number)
        task = self._loading.get(key)
        if task is None:
            task = self._loading[key] = asyncio.get_running_loop().create_task(self._load_warm(model, number))
            task.add_done_callback(lambda t: (self._loading.pop(key, None), t.cancelled() or t.exception()))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.load_timeout_s)
        except TimeoutError:
            raise GatewayTimeoutError(
                f"{model} v{number} was unloaded to stay within the memory budget and is loading again; it was "
                f"not ready within {self.load_timeout_s:g} s (setting load_timeout_s). Try again in a moment.",
                code="load_timeout") from None

    async def _load_warm(self, model: str, number: int) -> LoadedModel:
        loaded = self.pool.get(model, number) or await self._load(model, number)
        await loaded.warm_up()
        return loaded

    def forget(self, model: str, number: int | None = None, *, pinned: bool = False) -> None:
        """A version (or every version of a model) was archived (nothing to load again) or deleted (nor pin)."""
        for key in [k for k in self.unloaded | self.pinned if k[0] == model and number in (None, k[1])]:
            self.unloaded.discard(key)
            if pinned:
                self.pinned.discard(key)

    def view(self) -> MemoryView:
        """Per device: its budget and what its loaded versions hold."""
        devices: dict[str, dict[str, Any]] = {}
        for v in self.pool.loaded():
            d = devices.setdefault(v.device, {"device": v.device, "budget_bytes": self.budget(v.device),
                                              "used_bytes": 0, "loaded": 0})
            d["used_bytes"] += v.memory_bytes
            d["loaded"] += 1
        if self.pool.device not in devices:
            devices[self.pool.device] = {"device": self.pool.device, "budget_bytes": self.budget(self.pool.device),
                                         "used_bytes": 0, "loaded": 0}
        return MemoryView(devices=[DeviceMemory(**d) for d in sorted(devices.values(), key=lambda d: d["device"])],
                          unloaded=len(self.unloaded))
