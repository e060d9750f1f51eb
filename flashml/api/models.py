"""Management API for models and versions: viewers read, maintainers and admins change."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from litestar import Controller, Request, Response, delete, get, patch, post
from msgspec import UnsetType

from flashml.api.openapi_bodies import UploadOperation
from flashml.errors import BadRequestError
from flashml.registry.records import ConfigView, ModelRecord, ModelSummary, ResponseCacheView, VersionRecord
from flashml.registry.requests import ConfigChange, ModelChange, PinChange
from flashml.registry.response_cache import ResponseCacheService
from flashml.registry.service import RegistryService
from flashml.web.bodies import json_body
from flashml.web.deps import Authenticated, Injected, provide
from flashml.web.params import RowId


def source_name(request: Request, filename: str | None) -> str:
    if filename:
        return filename
    disposition = request.headers.get("content-disposition", "")
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename" and value:
            return unquote(value.strip('"'))[:255]
    return "upload"


def version_response(record: VersionRecord, done: bool) -> Response[VersionRecord | dict[str, Any]]:
    """201 with a ready version, 202 (poll its Location) while it validates, 422 with the reason it failed."""
    location = f"/api/v1/models/{record.model}/versions/{record.version}"
    if not done:
        return Response(record, status_code=202, headers={"Location": location})
    if record.state == "failed":
        first = record.errors[0] if record.errors else {"code": "validation_failed", "error": "failed"}
        return Response({"error": first["error"], "code": first["code"],
                         "details": {"version": record.to_dict()}}, status_code=422, headers={"Location": location})
    return Response(record, status_code=201, headers={"Location": location})


class ModelsController(Controller):
    path = "/api/v1/models"
    tags = ["Models"]
    dependencies = provide("registry", "response_caches")

    @get("/", summary="List models")
    async def list_models(self, viewer: Authenticated, registry: Injected[RegistryService]) -> list[ModelSummary]:
        return await registry.list_models()

    @get("/{model:str}", summary="Get a model and its versions")
    async def get_model(self, model: str, viewer: Authenticated, registry: Injected[RegistryService]) -> ModelRecord:
        return await registry.get_model(model)

    @patch("/{model:str}", summary="Change a model's settings: its response cache",
           dependencies=json_body(ModelChange))
    async def patch_model(self, model: str, payload: Injected[ModelChange], maintainer: Authenticated,
                          response_caches: Injected[ResponseCacheService]) -> ResponseCacheView:
        if isinstance(payload.response_cache, UnsetType):
            raise BadRequestError('Send "response_cache".', code="bad_model_patch")
        return await response_caches.configure(model, payload, actor=maintainer.actor)

    @delete("/{model:str}", summary="Delete a model and all its versions", status_code=204)
    async def delete_model(self, model: str, maintainer: Authenticated, registry: Injected[RegistryService],
                           force: bool = False) -> None:
        await registry.delete_model(model, force=force, actor=maintainer.actor)

    @post("/{model:str}/versions", summary="Upload a new version", operation_class=UploadOperation,
          request_max_body_size=None, status_code=201)
    async def upload_version(self, model: str, request: Request, maintainer: Authenticated,
                             registry: Injected[RegistryService], filename: str | None = None) -> Response:
        """Stream an .onnx file or a bundle; 201 when validated, 202 (poll the version) when it takes long."""
        record, done = await registry.upload(
            model, request.stream(), source_name=source_name(request, filename), actor=maintainer.actor,
            content_length=request.content_length)
        return version_response(record, done)


    @get("/{model:str}/versions", summary="List a model's versions")
    async def list_versions(self, model: str, viewer: Authenticated,
                            registry: Injected[RegistryService]) -> list[VersionRecord]:
        return (await registry.get_model(model)).versions

    @get("/{model:str}/versions/{version:int}", summary="Get a version: state, signature, validation report")
    async def get_version(self, model: str, version: RowId, viewer: Authenticated,
                          registry: Injected[RegistryService]) -> VersionRecord:
        return await registry.get_version(model, version)

    @patch("/{model:str}/versions/{version:int}", summary="Pin a version (never unloaded for memory) or unpin it",
           dependencies=json_body(PinChange))
    async def patch_version(self, model: str, version: RowId, payload: Injected[PinChange], maintainer: Authenticated,
                            registry: Injected[RegistryService]) -> VersionRecord:
        return await registry.set_pinned(model, version, payload, actor=maintainer.actor)

    @delete("/{model:str}/versions/{version:int}", summary="Delete a version", status_code=204)
    async def delete_version(self, model: str, version: RowId, maintainer: Authenticated,
                             registry: Injected[RegistryService], force: bool = False) -> None:
        await registry.delete_version(model, version, force=force, actor=maintainer.actor)

    @post("/{model:str}/versions/{version:int}/archive", summary="Archive a version (stop serving it)",
          status_code=200)
    async def archive_version(self, model: str, version: RowId, maintainer: Authenticated,
                              registry: Injected[RegistryService]) -> VersionRecord:
        return await registry.set_archived(model, version, True, actor=maintainer.actor)

    @post("/{model:str}/versions/{version:int}/restore", summary="Serve an archived version again",
          status_code=200)
    async def restore_version(self, model: str, version: RowId, maintainer: Authenticated,
                              registry: Injected[RegistryService]) -> VersionRecord:
        return await registry.set_archived(model, version, False, actor=maintainer.actor)

    @get("/{model:str}/versions/{version:int}/config",
         summary="A version's serving config (device, instances, batching), performance card and live stats")
    async def get_config(self, model: str, version: RowId, viewer: Authenticated,
                         registry: Injected[RegistryService]) -> ConfigView:
        return await registry.get_config(model, version)

    @patch("/{model:str}/versions/{version:int}/config", summary="Change a version's serving config live",
           dependencies=json_body(ConfigChange))
    async def patch_config(self, model: str, version: RowId, payload: Injected[ConfigChange], maintainer: Authenticated,
                           registry: Injected[RegistryService]) -> ConfigView:
        return await registry.patch_config(model, version, payload, actor=maintainer.actor)
