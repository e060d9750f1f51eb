"""Dependencies the handlers ask for by name.

Every app has ``principal`` (an API key, for inference), ``caller`` (an API key of any role or a console
session), and ``viewer``, ``maintainer`` and ``admin`` (a key or a console session with at least that role).
Each controller declares the services it uses, ``dependencies = provide("registry", "aliases")``, and its
handlers take them as ``registry: Injected[RegistryService]``: one of the fields of the composition
root's ``Services`` (``flashml.composition``), built once at start-up.

A console session (cookie) must carry its CSRF token on every request that changes something. When both
are sent, the ``Authorization`` header wins over the cookie.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TypeAlias, TypeVar

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from flashml.auth.csrf import check_csrf
from flashml.auth.principal import Principal, require_role
from flashml.auth.sign_ins import SESSION_COOKIE
from flashml.composition import Services
from flashml.errors import UnauthorizedError
from flashml.telemetry.request_context import note_caller

SERVICE_NAMES = frozenset(f.name for f in fields(Services))

# Handler parameters filled by name: ``registry: Injected[RegistryService]``, ``viewer: Authenticated``.
T = TypeVar("T")
Injected: TypeAlias = NamedDependency[T]
Authenticated: TypeAlias = NamedDependency[Principal]


def _provider(name: str) -> Provide:
    def provide_service(state: State) -> object:
        return getattr(state.services, name)

    provide_service.__name__ = f"provide_{name}"
    # No use_cache: Litestar would keep the first value on this Provide, which controllers share as a class
    # attribute, so a second app in the same process (the in-process tests) would get the first app's services.
    return Provide(provide_service, sync_to_thread=False)


def provide(*names: str) -> dict[str, Provide]:
    """A controller's ``dependencies``: the named services of the composition root."""
    unknown = set(names) - SERVICE_NAMES
    if unknown:
        raise ValueError(f"no service named {sorted(unknown)}; Services has {sorted(SERVICE_NAMES)}")
    return {name: _provider(name) for name in names}


async def provide_principal(request: Request, state: State) -> Principal:
    principal = await state.services.keys.authenticate(request.headers.get("authorization"))
    note_caller(principal.name)  # for the access log's line
    return principal


async def authenticate_caller(request: Request, state: State) -> Principal:
    """The API key of the Authorization header, else the console session of the cookie, else 401."""
    authorization = request.headers.get("authorization")
    token = request.cookies.get(SESSION_COOKIE)
    if authorization or not token:
        principal = await state.services.keys.authenticate(authorization)
    else:
        session = await state.services.sign_ins.resolve(token)
        if session is None:
            raise UnauthorizedError("Your console session has ended; sign in again at /login.",
                                    code="session_expired")
        await check_csrf(request, session.csrf_token)
        principal = session.principal()
    note_caller(principal.name)  # for the access log's line: the key's or the console user's name
    return principal


def _with_role(role: str):
    async def provide(request: Request, state: State) -> Principal:
        principal = await authenticate_caller(request, state)
        require_role(principal, role)
        return principal

    provide.__name__ = f"provide_{role}"
    return provide


DEPENDENCIES = {
    "principal": Provide(provide_principal),
    "caller": Provide(authenticate_caller),
    "admin": Provide(_with_role("admin")),
    "maintainer": Provide(_with_role("maintainer")),
    "viewer": Provide(_with_role("viewer")),
}
