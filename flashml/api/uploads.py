"""Direct uploads: ask for an upload URL, send the bytes there, then complete (see services/direct_uploads)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post, put

from flashml.api.models import version_response
from flashml.auth.principal import Principal
from flashml.registry.direct_uploads import DirectUploadService
from flashml.registry.records import UploadRecord, UploadTicket
from flashml.registry.requests import UploadStart
from flashml.web.bodies import json_body
from flashml.web.deps import Authenticated, Injected, provide


def _user(principal: Principal) -> str:
    return principal.name if principal.is_session else principal.created_by


class UploadsController(Controller):
    path = "/api/v1/uploads"
    tags = ["Uploads"]
    dependencies = provide("uploads")

    @post("/", summary="Start a direct upload: an id and a URL to PUT the file to", status_code=201,
          dependencies=json_body(UploadStart))
    async def create_upload(self, payload: Injected[UploadStart], maintainer: Authenticated,
                            uploads: Injected[DirectUploadService]) -> UploadTicket:
        """The URL is presigned (S3) or FlashML's own."""
        return await uploads.create(payload, actor=maintainer.actor, user=_user(maintainer))

    @put("/{upload_id:str}/data", summary="The file's bytes, for uploads kept on local disk (token in the URL)",
         request_max_body_size=None, status_code=200)
    async def put_data(self, upload_id: str, request: Request, uploads: Injected[DirectUploadService], token: str = "",
                       part: int | None = None) -> dict[str, Any]:
        return await uploads.receive(upload_id, token, request.stream(), request.content_length, part)

    @post("/{upload_id:str}/complete", summary="Check the bytes, then validate and publish them as a version",
          status_code=201)
    async def complete_upload(self, upload_id: str, maintainer: Authenticated,
                              uploads: Injected[DirectUploadService]) -> Response:
        record, done = await uploads.complete(upload_id, user=_user(maintainer),
                                                       is_admin=maintainer.is_admin)
        return version_response(record, done)

    @get("/{upload_id:str}", summary="A direct upload's state")
    async def get_upload(self, upload_id: str, maintainer: Authenticated,
                         uploads: Injected[DirectUploadService]) -> UploadRecord:
        return await uploads.get(upload_id, user=_user(maintainer), is_admin=maintainer.is_admin)
