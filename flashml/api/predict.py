"""``POST /v1/models/{m}[/versions/{v}]/predict``: images and texts in, labels, boxes and vectors out."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.datastructures import UploadFile

from flashml.api.v2_infer import ROUTING_HEADER
from flashml.inference.predict import PredictService
from flashml.tasks.requests import PredictItems, from_body, from_files
from flashml.web.deps import Authenticated, Injected, provide


async def read_items(request: Request) -> PredictItems:
    """The request's images or texts, whichever way they were sent."""
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        form = await request.form()
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        return from_files([await f.read() for f in files])
    return from_body(content_type, await request.body())


class PredictController(Controller):
    path = "/v1/models/{model:str}"
    tags = ["Task predict"]
    dependencies = provide("predict")

    @post(["/predict", "/versions/{version:str}/predict"], status_code=200,
          summary="Predict: images (multipart, image/* body or base64 JSON) or texts (JSON) of a task model")
    async def predict(self, model: str, request: Request, principal: Authenticated, predict: Injected[PredictService],
                      version: str | None = None) -> Response:
        items = await read_items(request)
        body, headers = await predict.predict(principal, model, version, items,
                                                       routing_key=request.headers.get(ROUTING_HEADER) or None)
        return Response(body, headers=headers)
