"""Models and their numbered versions."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.changes import Change, write
from flashml.db.engine import inserted_id
from flashml.db.fit import fit
from flashml.db.schema import models, versions

VERSION_STATES = ("validating", "ready", "failed", "archived")
VALIDATING_ON = "validating_on"  # a validating version's report: the node doing it
# A failed version's reasons quote what the upload held (member names, tensor names, parser messages): stored
# and echoed on every read, so each is bounded here, where every writer passes.
MAX_ERRORS = 10
MAX_ERROR_CHARS = 2000
MAX_DETAIL_CHARS = 300
MAX_DETAIL_ITEMS = 20


def _clip(value: Any, limit: int, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "..."
    if depth >= 3 and isinstance(value, dict | list | tuple):
        return "..."
    if isinstance(value, dict):
        return {_clip(str(k), 100): _clip(v, limit, depth + 1) for k, v in list(value.items())[:MAX_DETAIL_ITEMS]}
    if isinstance(value, list | tuple):
        return [_clip(v, limit, depth + 1) for v in value[:MAX_DETAIL_ITEMS]]
    return value


def bounded_errors(errors: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """A version's errors cut to a size fit to store and show: a few KB whatever the upload held."""
    if errors is None:
        return None
    out = []
    for item in errors[:MAX_ERRORS]:
        err = {k: _clip(v, MAX_DETAIL_CHARS) for k, v in item.items() if k not in ("error", "details")}
        err["error"] = _clip(str(item.get("error", "")), MAX_ERROR_CHARS)
        if "details" in item:
            err["details"] = _clip(item["details"], MAX_DETAIL_CHARS)
        out.append(err)
    return out


async def create_version(engine: AsyncEngine, model_name: str, *, created_by: str, source_name: str,
                         size_bytes: int, node: str | None = None) -> dict[str, Any]:
    """Create the model when new and the next version number in state ``validating`` (on ``node``: its report
    names the node validating it until the result replaces it, so a node that starts fails only its own)."""
    named = fit(versions, {"created_by": created_by, "source_name": source_name})  # an actor, a file name: unbounded
    for _ in range(5):  # two uploads racing for the same number: the unique constraint decides, retry
        now = time.time()
        try:
            async with engine.begin() as conn:
                model_id = (await conn.execute(select(models.c.id).where(models.c.name == model_name))).scalar()
                if model_id is None:
                    res = await conn.execute(insert(models).values(name=model_name, created_by=named["created_by"],
                                                                   created_at=now))
                    model_id = inserted_id(res)
                number = (await conn.execute(select(func.coalesce(func.max(versions.c.version), 0))
                                             .where(versions.c.model_id == model_id))).scalar_one() + 1
                res = await conn.execute(insert(versions).values(
                    model_id=model_id, version=number, state="validating", created_by=named["created_by"],
                    created_at=now, updated_at=now, source_name=named["source_name"], size_bytes=size_bytes,
                    report={VALIDATING_ON: node} if node else None))
                vid = inserted_id(res)
        except IntegrityError:
            continue
        version = await get_version_by_id(engine, vid)
        if version is None:  # committed just above; nothing deletes a version while it is validating
            raise RuntimeError(f"version {vid} vanished right after it was inserted")
        return version
    raise RuntimeError("could not allocate a version number")


def _version_query():
    return select(versions, models.c.name.label("model")).join(models, models.c.id == versions.c.model_id)


async def get_version_by_id(engine: AsyncEngine, vid: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(_version_query().where(versions.c.id == vid))).mappings().first()
    return dict(row) if row else None


async def get_version(engine: AsyncEngine, model_name: str, number: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(_version_query().where(models.c.name == model_name,
                                                         versions.c.version == number))).mappings().first()
    return dict(row) if row else None


async def list_versions(engine: AsyncEngine, model_name: str | None = None,
                        state: str | None = None) -> list[dict[str, Any]]:
    q = _version_query()
    if model_name is not None:
        q = q.where(models.c.name == model_name)
    if state is not None:
        q = q.where(versions.c.state == state)
    async with engine.connect() as conn:
        rows = (await conn.execute(q.order_by(models.c.name, versions.c.version))).mappings().all()
    return [dict(r) for r in rows]


async def get_model(engine: AsyncEngine, name: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(models).where(models.c.name == name))).mappings().first()
    return dict(row) if row else None


async def list_models(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(models).order_by(models.c.name))).mappings().all()
    return [dict(r) for r in rows]


async def update_version(engine: AsyncEngine, vid: int, *, announce: Change | None = None, **values: Any) -> None:
    """Set columns of version ``vid``; ``announce`` is the change feed's row for it, written in the same
    transaction (changes.write)."""
    values["updated_at"] = time.time()
    if "errors" in values:
        values["errors"] = bounded_errors(values["errors"])
    async with engine.begin() as conn:
        await conn.execute(update(versions).where(versions.c.id == vid).values(**values))
        await write(conn, announce)


async def delete_version(engine: AsyncEngine, vid: int, *, announce: Change | None = None) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(versions).where(versions.c.id == vid))
        await write(conn, announce)


async def delete_model(engine: AsyncEngine, name: str, *, announce: Change | None = None) -> None:
    async with engine.begin() as conn:
        model_id = (await conn.execute(select(models.c.id).where(models.c.name == name))).scalar()
        if model_id is not None:
            await conn.execute(delete(versions).where(versions.c.model_id == model_id))
            await conn.execute(delete(models).where(models.c.id == model_id))
            await write(conn, announce)
