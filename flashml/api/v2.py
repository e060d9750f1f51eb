"""The KServe V2 / Open Inference Protocol REST endpoints (what tritonclient.http speaks)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post

from flashml import __version__
from flashml.api.openapi_bodies import V2InferOperation
from flashml.api.v2_infer import ROUTING_HEADER, TIMEOUT_HEADER, answer_infer
from flashml.auth.keys import KeyService
from flashml.inference.service import InferenceService
from flashml.protocol.triton_config import model_config
from flashml.web.deps import Authenticated, Injected, provide

EXTENSIONS = ["binary_tensor_data", "model_configuration", "statistics"]


class V2HealthController(Controller):
    path = "/v2"
    tags = ["V2 inference"]
    dependencies = provide("inference")

    @get("/health/live", summary="Liveness")
    async def live(self) -> dict[str, bool]:
        return {"live": True}

    @get("/health/ready", summary="Readiness: start-up has finished (ready versions loaded, jobs resumed)")
    async def ready(self) -> dict[str, bool]:
        # The server answers no request before its lifespan has built every service (flashml.composition).
        return {"ready": True}

    @get("/models/stats", summary="Statistics of every loaded version this key may use (Triton's statistics)")
    async def all_stats(self, principal: Authenticated, inference: Injected[InferenceService]) -> dict[str, Any]:
        return await inference.statistics(principal, None, None)

    @get("/", summary="Server metadata")
    async def server_metadata(self) -> dict[str, Any]:
        return {"name": "flashml", "version": __version__, "extensions": EXTENSIONS}


class V2ModelController(Controller):
    path = "/v2/models/{model:str}"
    tags = ["V2 inference"]
    dependencies = provide("inference", "keys")

    @get(["/", "/versions/{version:str}"], summary="Model metadata")
    async def model_metadata(self, model: str, request: Request, principal: Authenticated,
                             inference: Injected[InferenceService], version: str | None = None) -> Response:
        loaded = await inference.resolve(principal, model, version,
                                                  routing_key=request.headers.get(ROUTING_HEADER) or None)
        return Response(inference.metadata(loaded), headers=_answered_by(loaded.version))

    @get(["/config", "/versions/{version:str}/config"],
         summary="Model configuration, as Triton gives it (max_batch_size, inputs, dynamic_batching)")
    async def model_config(self, model: str, request: Request, principal: Authenticated,
                           inference: Injected[InferenceService], version: str | None = None) -> Response:
        loaded = await inference.resolve(principal, model, version,
                                                  routing_key=request.headers.get(ROUTING_HEADER) or None)
        return Response(model_config(loaded.model, loaded.signature, loaded.config, loaded.device),
                        headers=_answered_by(loaded.version))

    @get(["/stats", "/versions/{version:str}/stats"],
         summary="Counts and cumulative times since load, as Triton's statistics extension gives them")
    async def model_stats(self, model: str, principal: Authenticated, inference: Injected[InferenceService],
                          version: str | None = None) -> dict[str, Any]:
        return await inference.statistics(principal, model, version)

    @get(["/ready", "/versions/{version:str}/ready"], summary="Model readiness")
    async def model_ready(self, model: str, request: Request, principal: Authenticated,
                          inference: Injected[InferenceService], version: str | None = None) -> Response:
        loaded = await inference.resolve(principal, model, version,
                                                  routing_key=request.headers.get(ROUTING_HEADER) or None)
        return Response({"name": model, "version": str(loaded.version), "ready": True},
                        headers=_answered_by(loaded.version))

    @post(["/infer", "/versions/{version:str}/infer"], summary="Inference", operation_class=V2InferOperation,
          status_code=200)
    async def infer(self, model: str, request: Request, keys: Injected[KeyService],
                    inference: Injected[InferenceService], version: str | None = None) -> Response:
        # `flashml serve` answers this route in flashml.server (RSGI); this handler makes the same call.
        content, headers = await answer_infer(keys, inference, model, version, request.headers.get("authorization"),
                                              request.headers.get("inference-header-content-length"),
                                              request.headers.get(TIMEOUT_HEADER), request.headers.get(ROUTING_HEADER),
                                              await request.body())
        return Response(content=content, media_type=headers.pop("content-type"), headers=headers)


def _answered_by(version: int) -> dict[str, str]:
    """The header that names the version behind an answer (also when the caller named an alias)."""
    return {"FlashML-Model-Version": str(version)}

