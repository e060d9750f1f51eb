"""The KServe V2 / Open Inference Protocol REST endpoints (what tritonclient.http speaks)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post

from flashml import __version__
from flashml.api.openapi_bodies import V2InferOperation
from flashml.auth.principal import Principal
from flashml.errors import BadRequestError, UnavailableError
from flashml.protocol.v2_response import HEADER_LENGTH
from flashml.services.container import Services

EXTENSIONS = ["binary_tensor_data"]
TIMEOUT_HEADER = "flashml-timeout-ms"  # or Triton's `timeout` request parameter (microseconds)
ROUTING_HEADER = "flashml-routing-key"  # sticks a caller to one side of an alias's split (default: the key id)


class V2HealthController(Controller):
    path = "/v2"
    tags = ["V2 inference"]

    @get("/health/live", summary="Liveness")
    async def live(self) -> dict[str, bool]:
        return {"live": True}

    @get("/health/ready", summary="Readiness: the database answers and start-up has finished")
    async def ready(self, services: Services) -> dict[str, bool]:
        if services.registry is None:
            raise UnavailableError("The server is starting.", code="not_ready")
        return {"ready": True}

    @get("/", summary="Server metadata")
    async def server_metadata(self) -> dict[str, Any]:
        return {"name": "flashml", "version": __version__, "extensions": EXTENSIONS}


class V2ModelController(Controller):
    path = "/v2/models/{model:str}"
    tags = ["V2 inference"]

    @get(["/", "/versions/{version:str}"], summary="Model metadata")
    async def model_metadata(self, model: str, request: Request, principal: Principal, services: Services,
                             version: str | None = None) -> Response:
        loaded = await services.inference.resolve(principal, model, version,
                                                  routing_key=request.headers.get(ROUTING_HEADER) or None)
        return Response(services.inference.metadata(loaded), headers=_answered_by(loaded.version))

    @get(["/ready", "/versions/{version:str}/ready"], summary="Model readiness")
    async def model_ready(self, model: str, request: Request, principal: Principal, services: Services,
                          version: str | None = None) -> Response:
        loaded = await services.inference.resolve(principal, model, version,
                                                  routing_key=request.headers.get(ROUTING_HEADER) or None)
        return Response({"name": model, "version": str(loaded.version), "ready": True},
                        headers=_answered_by(loaded.version))

    @post(["/infer", "/versions/{version:str}/infer"], summary="Inference", operation_class=V2InferOperation,
          status_code=200)
    async def infer(self, model: str, request: Request, principal: Principal, services: Services,
                    version: str | None = None) -> Response:
        header_length = _header_length(request.headers.get("inference-header-content-length"))
        body = await request.body()
        timeout_us = _timeout_us(request.headers.get(TIMEOUT_HEADER))
        content, headers = await services.inference.infer(principal, model, version, body, header_length,
                                                          timeout_us=timeout_us,
                                                          routing_key=request.headers.get(ROUTING_HEADER) or None)
        media = "application/octet-stream" if HEADER_LENGTH in headers else "application/json"
        return Response(content=content, media_type=media, headers=headers)


def _answered_by(version: int) -> dict[str, str]:
    """The header that names the version behind an answer (also when the caller named an alias)."""
    return {"FlashML-Model-Version": str(version)}


def _header_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise BadRequestError("Inference-Header-Content-Length must be a non-negative integer.",
                              code="malformed_request")
    return n


def _timeout_us(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        ms = float(value)
    except ValueError:
        ms = -1.0
    if not ms >= 0:
        raise BadRequestError("FlashML-Timeout-Ms must be a non-negative number of milliseconds.",
                              code="malformed_request")
    return int(ms * 1000) or None
