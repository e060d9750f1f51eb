"""Management API for aliases: viewers list them, maintainers and admins point them at versions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post, put

from flashml.api.openapi_bodies import AliasPutOperation, read_json_object
from flashml.auth.principal import Principal
from flashml.composition import Services


class AliasesController(Controller):
    path = "/api/v1/models/{model:str}/aliases"
    tags = ["Models"]

    @get("/", summary="List a model's aliases")
    async def list_aliases(self, model: str, viewer: Principal, services: Services) -> list[dict[str, Any]]:
        return await services.registry.aliases.list_aliases(model)

    @put("/{alias:str}", summary="Point an alias at a ready version, or split it between versions",
         operation_class=AliasPutOperation)
    async def set_alias(self, model: str, alias: str, request: Request, maintainer: Principal,
                        services: Services) -> dict[str, Any]:
        body = await read_json_object(request)
        return await services.registry.aliases.set_alias(model, alias, body, actor=maintainer.actor)

    @delete("/{alias:str}", summary="Delete an alias", status_code=204)
    async def delete_alias(self, model: str, alias: str, maintainer: Principal, services: Services) -> None:
        await services.registry.aliases.delete_alias(model, alias, actor=maintainer.actor)

    @post("/{alias:str}/rollback", summary="Point an alias back at its previous target", status_code=200)
    async def rollback_alias(self, model: str, alias: str, maintainer: Principal, services: Services
                             ) -> dict[str, Any]:
        return await services.registry.aliases.rollback(model, alias, actor=maintainer.actor)

    @get("/{alias:str}/shadow", summary="What an alias's shadow version answered, next to the served one")
    async def alias_shadow(self, model: str, alias: str, viewer: Principal, services: Services) -> dict[str, Any]:
        return await services.shadow.alias_report(services.registry.aliases, model, alias)
