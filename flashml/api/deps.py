"""Dependencies the handlers ask for by name: ``services`` and ``principal``."""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from flashml.auth.principal import Principal
from flashml.services.container import Services


def provide_services(state: State) -> Services:
    return state.services


async def provide_principal(request: Request, state: State) -> Principal:
    return await state.services.keys.authenticate(request.headers.get("authorization"))


async def provide_admin(request: Request, state: State) -> Principal:
    principal = await state.services.keys.authenticate(request.headers.get("authorization"))
    state.services.keys.require_admin(principal)
    return principal


DEPENDENCIES = {
    "services": Provide(provide_services, sync_to_thread=False),
    "principal": Provide(provide_principal),
    "admin": Provide(provide_admin),
}
