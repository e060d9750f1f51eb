"""Aliases: a model's named pointers at versions (``production``, ``staging``, ...), shared by API, CLI, console.

An alias points at one version, or splits traffic between versions by weight (a canary or an A/B test).
Inference resolves them from an in-memory map (``routes``) loaded at start-up and updated on every change,
so a request never queries the database for them. A split is sticky: the same routing key (an API key's id,
or the ``FlashML-Routing-Key`` header) always lands on the same version while the weights stay the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from msgspec import UNSET
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import aliases as db
from flashml.db import audit, changes
from flashml.db import models as models_db
from flashml.errors import (
    AliasNotFoundError,
    BadRequestError,
    ConflictError,
    FlashMLError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from flashml.records import parse_body
from flashml.registry.alias_rules import Guard, Shadow, parse_guard, parse_shadow
from flashml.registry.records import AliasRecord, ServingInfo
from flashml.registry.requests import AliasUpdate

log = logging.getLogger("flashml.aliases")
SERVED = "production"  # the alias a call without a version goes to, when set
ALIAS_NAME = re.compile(r"^(?![0-9]+$)[a-z0-9][a-z0-9_-]{0,63}$")
NUMBER = re.compile(r"^[0-9]+$")


def check_alias_name(name: str) -> None:
    if not ALIAS_NAME.match(name or ""):
        raise BadRequestError(f"{name!r} is not an alias name: use 1 to 64 lowercase letters, digits, - or _, "
                              "starting with a letter or digit, and not only digits (numbers name versions).",
                              code="bad_alias_name")


def bucket_of(routing_key: str) -> int:
    """0 to 99 from a SHA-256 of the routing key: the same key always gets the same bucket."""
    return int.from_bytes(hashlib.sha256(routing_key.encode()).digest()[:8], "big") % 100


@dataclass(frozen=True)
class Route:
    """Where an alias sends requests: (version, weight) pairs by version; the weights sum to 100."""

    weights: tuple[tuple[int, int], ...]
    guard: Guard | None = None
    shadow: Shadow | None = None

    @classmethod
    def from_versions(cls, versions: dict[str, int], guard: Guard | None = None,
                      shadow: Shadow | None = None) -> Route:
        return cls(tuple(sorted((int(v), int(w)) for v, w in versions.items())), guard, shadow)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Route:
        return cls.from_versions(row["versions"], Guard(**row["guard"]) if row.get("guard") else None,
                                 Shadow(**row["shadow"]) if row.get("shadow") else None)

    @property
    def numbers(self) -> list[int]:
        return [n for n, _ in self.weights]

    @property
    def stable(self) -> int:
        """The version with the most weight (the lowest number on a tie): where a tripped guard goes back to."""
        return max(self.weights, key=lambda nw: (nw[1], -nw[0]))[0]

    def versions(self) -> dict[str, int]:
        return {str(n): w for n, w in self.weights}

    def to_body(self) -> dict[str, Any]:
        """The PUT body that sets this route again (what rollback sends)."""
        body: dict[str, Any] = {"versions": self.versions()}
        if self.guard:
            body["guard"] = self.guard.to_dict()
        if self.shadow:
            body["shadow"] = self.shadow.to_dict()
        return body

    def pick(self, routing_key: str) -> int:
        if len(self.weights) == 1:
            return self.weights[0][0]
        bucket = bucket_of(routing_key)
        for number, weight in self.weights:
            if bucket < weight:
                return number
            bucket -= weight
        return self.weights[-1][0]


class Serving(NamedTuple):
    """What answers a call that names no version: the ``production`` alias's route when it is set, else the newest
    ready version (as a route of one). Inference picks from it; pages and reports show ``info()``. A named tuple:
    inference makes one per call without a version, so it must cost next to nothing."""

    route: Route
    alias: str | None  # SERVED when the alias decides; None when the newest ready version does

    def pick(self, routing_key: str) -> int:
        return self.route.pick(routing_key)

    def info(self) -> ServingInfo:
        numbers = self.route.numbers
        return ServingInfo(version=numbers[0] if len(numbers) == 1 else None, versions=self.route.versions(),
                           alias=self.alias)


@lru_cache(maxsize=4096)
def _newest_ready(number: int) -> Serving:
    """The newest ready version as what serves: the same few objects every call, not new ones per request."""
    return Serving(Route(((number, 100),)), None)


def parse_route(update: AliasUpdate) -> Route:
    """The whole body of PUT .../aliases/{alias}: versions, and an optional guard and shadow."""
    versions = parse_target(update)
    guard = parse_guard(update.guard, versions) if update.guard is not None else None
    shadow = parse_shadow(update.shadow, versions) if update.shadow is not None else None
    return Route.from_versions(versions, guard, shadow)


def parse_target(update: AliasUpdate) -> dict[str, int]:
    """Where PUT .../aliases/{alias} points, as {"<version>": weight}: one version, or a split summing to 100."""
    if (update.version is UNSET) == (update.versions is UNSET):
        raise BadRequestError('Send {"version": 3}, or a split {"versions": {"3": 95, "4": 5}} (with an optional '
                              '"guard" and "shadow").', code="bad_alias_body")
    if not isinstance(update.versions, dict):
        return {str(update.version): 100}
    if not update.versions:
        raise BadRequestError('"versions" must be an object of version numbers and weights, e.g. '
                              '{"3": 95, "4": 5}.', code="bad_alias_body")
    if any(int(key) < 1 for key in update.versions):
        raise BadRequestError("Version numbers start at 1.", code="bad_alias_body")
    if sum(update.versions.values()) != 100:
        raise BadRequestError(f"The weights must sum to 100 (percent of requests); these sum to "
                              f"{sum(update.versions.values())}.", code="bad_alias_weights")
    return {str(int(key)): weight for key, weight in update.versions.items()}


def parse_target_text(text: str) -> dict[str, Any]:
    """What a person types (CLI, console) as a PUT body: `3` -> {"version": 3}; `3=95, 4=5` -> a split."""
    text = text.strip()
    if "=" not in text:
        if not NUMBER.match(text):
            raise BadRequestError(f"{text!r} is not a version number (or a split like 3=95, 4=5).",
                                  code="bad_alias_body")
        return {"version": int(text)}
    split: dict[str, int] = {}
    for part in text.split(","):
        number, _, weight = (p.strip() for p in part.partition("="))
        if not (NUMBER.match(number) and NUMBER.match(weight)):
            raise BadRequestError(f"{part.strip()!r} is not VERSION=WEIGHT, e.g. 3=95.", code="bad_alias_body")
        split[str(int(number))] = int(weight)
    return {"versions": split}


def parse_guard_text(text: str) -> dict[str, Any]:
    """What a person types as a guard: `max_error_rate=0.05, max_p99_ms=200` -> the "guard" object."""
    out: dict[str, Any] = {}
    for part in text.split(","):
        name, _, value = (p.strip() for p in part.partition("="))
        try:
            out[name] = int(value) if NUMBER.match(value) else float(value)
        except ValueError:
            raise BadRequestError(f"{part.strip()!r} is not NAME=NUMBER, e.g. max_error_rate=0.05.",
                                  code="bad_alias_guard") from None
    return out


def parse_shadow_text(text: str) -> dict[str, Any]:
    """`5=20` -> {"version": 5, "percent": 20}."""
    number, _, percent = (p.strip() for p in text.partition("="))
    try:
        return {"version": int(number), "percent": float(percent)}
    except ValueError:
        raise BadRequestError(f"{text.strip()!r} is not VERSION=PERCENT, e.g. 5=20.", code="bad_alias_shadow") from None


def guard_text(guard: Guard | dict[str, Any]) -> str:
    """A canary guard's thresholds in words: ``error rate above 5% or p99 above 200 ms over 60 s``."""
    values = guard.to_dict() if isinstance(guard, Guard) else guard
    crossed = []
    if values.get("max_error_rate") is not None:
        crossed.append(f"error rate above {round(values['max_error_rate'] * 100, 4):g}%")
    if values.get("max_p99_ms") is not None:
        crossed.append(f"p99 above {round(values['max_p99_ms'], 3):g} ms")
    # drift is judged on the version's logged predictions, not on the window of requests
    drift = f"a drift score above {round(values['max_drift'], 4):g}" if values.get("max_drift") is not None else ""
    if not crossed:
        return drift
    measured = f"{' or '.join(crossed)} over {round(values.get('window_s', 60.0), 3):g} s"
    return f"{measured}, or {drift}" if drift else measured


def alias_record(model: str, name: str, row: dict[str, Any]) -> AliasRecord:
    route = Route.from_row(row)
    return AliasRecord(model=model, alias=name, version=route.numbers[0] if len(route.numbers) == 1 else None,
                       versions=route.versions(), guard=row.get("guard"), shadow=row.get("shadow"),
                       previous=row.get("previous"), updated_by=row["updated_by"], updated_at=row["updated_at"])


Prepare = Callable[[str, list[int]], Awaitable[None]]


class AliasService:
    def __init__(self, engine: AsyncEngine, *, node: str = "") -> None:
        self.engine = engine
        self.node = node  # names this node's changes in the change feed (flashml.cluster)
        self.routes: dict[str, dict[str, Route]] = {}  # model -> alias -> route, read by every inference call
        # Alias changes and version deletes/archives take turns, so no alias ever points at a gone version.
        self.lock = asyncio.Lock()
        # Loads and warms versions before an alias sends them traffic (set by the registry; None: nothing to do).
        self.prepare: Prepare | None = None
        # Told (model, alias, route) the moment a changed route takes traffic, before any request uses it.
        self.listeners: list[Callable[[str, str, Route], None]] = []

    async def load(self) -> None:
        """Fill the in-memory map from the database (at start-up)."""
        routes: dict[str, dict[str, Route]] = {}
        for row in await db.list_aliases(self.engine):
            routes.setdefault(row["model"], {})[row["name"]] = Route.from_row(row)
        self.routes = routes

    # ---- resolution (in memory, per request) ----

    def route(self, model: str, name: str) -> Route | None:
        return self.routes.get(model, {}).get(name)

    def serving(self, model: str, newest_ready: int | None) -> Serving | None:
        """What answers ``model``'s calls without a version: the one resolution inference and every page use.
        ``newest_ready``: the registry's newest ready version, the answer when no production alias is set."""
        route = self.route(model, SERVED)
        if route is not None:
            return Serving(route, SERVED)
        return None if newest_ready is None else _newest_ready(newest_ready)

    def pointing_at(self, model: str, number: int) -> list[str]:
        """The aliases of ``model`` that send some traffic to version ``number`` (or shadow it)."""
        return sorted(name for name, route in self.routes.get(model, {}).items()
                      if number in route.numbers or (route.shadow and route.shadow.version == number))

    def refuse_if_aliased(self, model: str, number: int, action: str) -> None:
        names = self.pointing_at(model, number)
        if names:
            listed = ", ".join(names)
            raise ConflictError(f"{model} v{number} is what the alias{'es' if len(names) > 1 else ''} {listed} "
                                f"point{'' if len(names) > 1 else 's'} at; move or delete "
                                f"{'them' if len(names) > 1 else 'it'} before you {action} this version.",
                                code="version_aliased", details={"aliases": names})

    def forget_model(self, model: str) -> None:
        self.routes.pop(model, None)

    # ---- management ----

    async def _require_model(self, model: str) -> None:
        if await models_db.get_model(self.engine, model) is None:
            raise ModelNotFoundError(model)

    async def list_aliases(self, model: str) -> list[AliasRecord]:
        await self._require_model(model)
        return [alias_record(model, r["name"], r) for r in await db.list_aliases(self.engine, model)]

    async def get_alias(self, model: str, name: str) -> AliasRecord:
        check_alias_name(name)
        for alias in await self.list_aliases(model):
            if alias.alias == name:
                return alias
        raise AliasNotFoundError(model, name)

    async def set_alias(self, model: str, name: str, update: AliasUpdate, *, actor: str) -> AliasRecord:
        """Point ``name`` at a ready version (or split it between ready versions); creates or moves it.

        The versions it will send traffic to are loaded and warmed first: the switch itself is one dict write.
        """
        check_alias_name(name)
        route = parse_route(update)
        async with self.lock:
            return await self._apply(model, name, route, actor=actor, action="model.alias_set")

    async def rollback(self, model: str, name: str, *, actor: str) -> AliasRecord:
        """Point the alias back at its previous target (and remember the current one: a second call undoes it)."""
        check_alias_name(name)
        async with self.lock:
            await self._require_model(model)
            rows = {r["name"]: r for r in await db.list_aliases(self.engine, model)}
            if name not in rows:
                raise AliasNotFoundError(model, name)
            previous = rows[name].get("previous")
            if not previous:
                raise ConflictError(f"The alias {name!r} of {model} has not been changed since it was made: there "
                                    "is nothing to roll back to.", code="no_previous_target")
            route = parse_route(parse_body(previous, AliasUpdate))
            return await self._apply(model, name, route, actor=actor, action="model.alias_rollback")

    async def guard_rollback(self, model: str, name: str, seen: Route, detail: dict[str, Any]) -> bool:
        """Send every request of a guarded split back to its stable version (the canary crossed a threshold).

        ``seen``: the route the numbers were measured on; a route changed meanwhile is left alone (False).
        """
        async with self.lock:
            if self.route(model, name) is not seen:
                return False
            back = Route.from_versions({str(seen.stable): 100}, shadow=seen.shadow)
            await self._apply(model, name, back, actor="flashml/guard", action="model.alias_auto_rollback",
                              detail=detail)
            return True

    async def _apply(self, model: str, name: str, route: Route, *, actor: str, action: str,
                     detail: dict[str, Any] | None = None) -> AliasRecord:
        """Check, load and warm, write, then switch the in-memory route (call with the lock held)."""
        await self._require_model(model)
        numbers = route.numbers + ([route.shadow.version] if route.shadow else [])
        for number in numbers:
            row = await models_db.get_version(self.engine, model, number)
            if row is None:
                raise VersionNotFoundError(model, number)
            if row["state"] != "ready":
                raise ConflictError(f"{model} v{number} is {row['state']}; an alias can only point at a ready "
                                    "version.", code="version_not_ready")
        if self.prepare is not None:
            await self.prepare(model, numbers)
        before = self.route(model, name)
        previous = before.to_body() if before else None
        versions = route.versions()
        saved = await db.put_alias(self.engine, model, name, versions, actor=actor,
                                   guard=route.guard.to_dict() if route.guard else None,
                                   shadow=route.shadow.to_dict() if route.shadow else None, previous=previous,
                                   announce=changes.Change(changes.ALIAS, self.node, model=model, name=name))
        if saved is None:
            raise ModelNotFoundError(model)
        self._switch(model, name, route)
        record = {"versions": versions, "previous": previous and previous["versions"]}
        for extra in ("guard", "shadow"):
            if saved[extra]:
                record[extra] = saved[extra]
        await audit.record(self.engine, actor, action, f"{model}/{name}", {**record, **(detail or {})})
        return alias_record(model, name, saved)

    async def delete_alias(self, model: str, name: str, *, actor: str) -> None:
        check_alias_name(name)
        async with self.lock:
            await self._require_model(model)
            if not await db.delete_alias(self.engine, model, name,
                                         announce=changes.Change(changes.ALIAS, self.node, model=model, name=name)):
                raise AliasNotFoundError(model, name)
            before = self.routes.get(model, {}).pop(name, None)
            previous = before.versions() if before else None
            await audit.record(self.engine, actor, "model.alias_delete", f"{model}/{name}", {"previous": previous})

    def _switch(self, model: str, name: str, route: Route) -> None:
        """The one write that moves traffic, then the listeners (the canary guard, shadow traffic)."""
        self.routes.setdefault(model, {})[name] = route
        for listener in self.listeners:
            listener(model, name, route)

    # ---- changes another node made (flashml.cluster reads them from the change feed) ----

    async def apply_alias(self, model: str, name: str) -> None:
        """Follow one alias's row: its versions loaded and warmed here first, then the route switched (or dropped
        when the alias was deleted). The same route again changes nothing (the guard keeps its window)."""
        async with self.lock:
            await self._follow(model, name, {r["name"]: r for r in await db.list_aliases(self.engine, model)})

    async def apply_model(self, model: str) -> None:
        """Follow every alias of ``model`` (a model made again after a deletion)."""
        async with self.lock:
            rows = {r["name"]: r for r in await db.list_aliases(self.engine, model)}
            for name in sorted(set(rows) | set(self.routes.get(model, {}))):
                await self._follow(model, name, rows)

    async def _follow(self, model: str, name: str, rows: dict[str, dict[str, Any]]) -> None:
        row = rows.get(name)
        if row is None:
            self.routes.get(model, {}).pop(name, None)
            return
        route = Route.from_row(row)
        if route == self.route(model, name):
            return
        if self.prepare is not None:
            try:
                await self.prepare(model, route.numbers + ([route.shadow.version] if route.shadow else []))
            except FlashMLError as exc:  # the other nodes serve it already: this one loads on demand or later
                log.warning("%s/%s moved to versions this node could not load yet: %s", model, name, exc.message)
        self._switch(model, name, route)
