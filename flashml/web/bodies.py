"""JSON request bodies as typed ``Body`` records (``flashml.records``): a handler declares the one it takes,

    @put("/{alias:str}", dependencies=json_body(AliasUpdate))
    async def set_alias(self, ..., payload: Injected[AliasUpdate]) -> AliasRecord:

and gets it decoded strictly, or the request is answered 400 with the body's own error code. Litestar's own
``data`` parameter would convert loosely (``"1"`` becomes 1), which the API has never accepted. The OpenAPI
document shows the body's schema, generated from the record (``flashml.api.openapi_errors``).
"""

from __future__ import annotations

from litestar import Request
from litestar.di import Provide

from flashml.records import Body, parse_body

BODY_DEPENDENCY = "payload"  # Litestar keeps `body` for the raw bytes and `data` for its own decoding


def json_body(kind: type[Body]) -> dict[str, Provide]:
    """A handler's ``dependencies``: its JSON body as a ``kind``, named ``payload``."""

    async def provide_body(request: Request) -> Body:
        return parse_body(await request.body(), kind)

    provide_body.__name__ = f"provide_{kind.__name__}"
    provide_body.body_kind = kind  # type: ignore[attr-defined]  # read by the OpenAPI document
    return {BODY_DEPENDENCY: Provide(provide_body)}


def body_kind(provider: Provide) -> type[Body] | None:
    """The record a ``json_body`` dependency decodes, else None."""
    return getattr(provider.dependency, "body_kind", None)
