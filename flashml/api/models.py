"""Management API for models and versions: viewers read, maintainers and admins change."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from litestar import Controller, Request, Response, delete, get, patch, post
from msgspec import UnsetType

from flashml.api.error_handlers import with_request_id
from flashml.api.openapi_bodies import UploadOperation
from flashml.errors import BadRequestError
from flashml.monitoring.drift_records import DriftConfigView
from flashml.monitoring.drift_service import DriftService
from flashml.monitoring.prediction_log_settings import PredictionLogSettings
from flashml.registry.records import (
    ConfigView,
    ModelRecord,
    ModelSummary,
    PredictionLogView,
    ResponseCacheView,
    VersionRecord,
)
from flashml.registry.requests import ConfigChange, ModelChange, PinChange
from flashml.registry.response_cache import ResponseCacheService, cache_config
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
        return Response(with_request_id({"error": first["error"], "code": first["code"],
                                         "details": {"version": record.to_dict()}}),
                        status_code=422, headers={"Location": location})
    return Response(record, status_code=201, headers={"Location": location})


class ModelsController(Controller):
    path = "/api/v1/models"
    tags = ["Models"]
    dependencies = provide("registry", "response_caches", "prediction_log_settings", "drift")

    @get("/", summary="List models")
    async def list_models(self, viewer: Authenticated, registry: Injected[RegistryService]) -> list[ModelSummary]:
        return await registry.list_models()

    @get("/{model:str}", summary="Get a model and its versions")
    async def get_model(self, model: str, viewer: Authenticated, registry: Injected[RegistryService],
                        prediction_log_settings: Injected[PredictionLogSettings]) -> ModelRecord:
        record = await registry.get_model(model)
        record.prediction_log = await prediction_log_settings.view(model)
        return record

    @patch("/{model:str}", summary="Change a model's settings: its response cache, prediction log or drift monitoring",
           dependencies=json_body(ModelChange))
    async def patch_model(self, model: str, payload: Injected[ModelChange], maintainer: Authenticated,
                          response_caches: Injected[ResponseCacheService],
                          prediction_log_settings: Injected[PredictionLogSettings], drift: Injected[DriftService]
                          ) -> ResponseCacheView | PredictionLogView | DriftConfigView:
        """Send one setting or more; a setting's fields left out keep their values. Every setting sent is checked
        before any is changed. The answer is the response cache when the body sends one (as it always was), else
        the prediction log, else drift monitoring; GET shows them all (drift: GET .../drift)."""
        cache, log_change, drift_change = payload.response_cache, payload.prediction_log, payload.drift
        if all(isinstance(c, UnsetType) for c in (cache, log_change, drift_change)):
            raise BadRequestError('Send "response_cache", "prediction_log" or "drift".', code="bad_model_patch")
        if not isinstance(cache, UnsetType):
            cache_config(payload, response_caches.max_entries)
        log_config = None if isinstance(log_change, UnsetType) else prediction_log_settings.check(log_change, model)
        drift_config = None if isinstance(drift_change, UnsetType) else await drift.check_change(drift_change, model)
        log_view = drift_view = None
        if log_config is not None:
            log_view = await prediction_log_settings.configure(model, log_config, actor=maintainer.actor)
        if drift_config is not None:
            drift_view = await drift.configure(model, drift_config, actor=maintainer.actor)
        if log_view is not None and isinstance(cache, UnsetType):
            return log_view
        if drift_view is not None and isinstance(cache, UnsetType):
            return drift_view
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
