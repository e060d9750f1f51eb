"""Management API for aliases: viewers list them, maintainers and admins point them at versions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, post, put

from flashml.inference.shadow import ShadowService
from flashml.registry.aliases import AliasService
from flashml.registry.records import AliasRecord
from flashml.registry.requests import AliasUpdate
from flashml.web.bodies import json_body
from flashml.web.deps import Authenticated, Injected, provide


class AliasesController(Controller):
    path = "/api/v1/models/{model:str}/aliases"
    tags = ["Models"]
    dependencies = provide("aliases", "shadow")

    @get("/", summary="List a model's aliases")
    async def list_aliases(self, model: str, viewer: Authenticated,
                           aliases: Injected[AliasService]) -> list[AliasRecord]:
        return await aliases.list_aliases(model)

    @put("/{alias:str}", summary="Point an alias at a ready version, or split it between versions",
         dependencies=json_body(AliasUpdate))
    async def set_alias(self, model: str, alias: str, payload: Injected[AliasUpdate], maintainer: Authenticated,
                        aliases: Injected[AliasService]) -> AliasRecord:
        return await aliases.set_alias(model, alias, payload, actor=maintainer.actor)

    @delete("/{alias:str}", summary="Delete an alias", status_code=204)
    async def delete_alias(self, model: str, alias: str, maintainer: Authenticated,
                           aliases: Injected[AliasService]) -> None:
        await aliases.delete_alias(model, alias, actor=maintainer.actor)

    @post("/{alias:str}/rollback", summary="Point an alias back at its previous target", status_code=200)
    async def rollback_alias(self, model: str, alias: str, maintainer: Authenticated, aliases: Injected[AliasService]
                             ) -> AliasRecord:
        return await aliases.rollback(model, alias, actor=maintainer.actor)

    @get("/{alias:str}/shadow", summary="What an alias's shadow version answered, next to the served one")
    async def alias_shadow(self, model: str, alias: str, viewer: Authenticated, shadow: Injected[ShadowService],
                           aliases: Injected[AliasService]) -> dict[str, Any]:
        return await shadow.alias_report(aliases, model, alias)
